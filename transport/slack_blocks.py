"""Block Kit views and message bodies the app posts in Slack. Pure.

Owns what every Slack message of the app looks like, built with `slack_sdk.models.blocks`:
- the offer DM (`offer_post`): customer name, last message, a short transcript excerpt, the
  deadline as Slack's `<!date^EPOCH^{time_secs}|fallback>` token, Accept (`offer_accept`) and
  Ignore (`offer_ignore`) buttons whose value is the offer id; and its resolved forms
  (`offer_resolved_post`: accepted, ignored, missed, withdrawn) and the too-late notice;
- the room header with the End Takeover button (`takeover_end`), pinned first;
- transcript lines as posts in the speaker's name (`username` / `icon_url` or `icon_emoji`),
  customer text escaped for mrkdwn and cut within Slack's limits (`transcript_posts`,
  `line_posts`). Long histories keep the latest runs as speaker posts and fold older ones into
  a few digest posts, so opening a room costs a bounded number of chat.postMessage calls.

`Post` is a message body ready for chat.postMessage / chat.update (`post.params()`).
The text helpers (escaping, splitting, channel names) live in `transport.slack_text`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from actors.ports import OfferOutcome, OfferView, TranscriptLine
from transport.slack_text import clip, escape_mrkdwn, split_escaped

__all__ = [
    "ACTION_ACCEPT",
    "ACTION_END",
    "ACTION_IGNORE",
    "MAX_POST_CHARS",
    "MAX_SPEAKER_POSTS",
    "OFFER_EVENT",
    "ROOM_EVENT",
    "Post",
    "date_token",
    "line_posts",
    "merged_post",
    "note_post",
    "offer_post",
    "offer_resolved_post",
    "room_header_post",
    "too_late_text",
    "transcript_posts",
]

ACTION_ACCEPT = "offer_accept"
ACTION_IGNORE = "offer_ignore"
ACTION_END = "takeover_end"
OFFER_EVENT = "takeover_offer"
ROOM_EVENT = "takeover_room"

MAX_POST_CHARS = 3_500
"""Text per message: under the 4,000 characters Slack recommends (it truncates at 40,000)."""
MAX_SPEAKER_POSTS = 30
"""Runs of one speaker posted under their own name; older runs are folded into digests."""
_EXCERPT_LINE_CHARS = 280
_SECTION_CHARS = 2_900  # a section's text holds 3,000
_HEADER_CHARS = 150
_USERNAME_CHARS = 80
_ICON_EMOJI = {"customer": ":bust_in_silhouette:", "bot": ":robot_face:", "agent": ":headphones:"}
_ROLE = {"customer": "customer", "bot": "bot", "agent": "agent"}


@dataclass(frozen=True, slots=True)
class Post:
    """One message body; `blocks` empty means a plain mrkdwn text message."""

    text: str
    blocks: tuple[dict[str, Any], ...] = ()
    username: str | None = None
    icon_url: str | None = None
    icon_emoji: str | None = None
    metadata: Mapping[str, Any] | None = None

    def params(self, *, update: bool = False) -> dict[str, Any]:
        """Arguments of chat.postMessage (`update`: of chat.update); the caller adds the
        channel (and ts). Links in posts are never unfurled."""
        out: dict[str, Any] = {"text": self.text}
        if not update:
            out |= {"unfurl_links": False, "unfurl_media": False}
        if self.blocks:
            out["blocks"] = list(self.blocks)
        if self.username:
            out["username"] = self.username
        if self.icon_url:
            out["icon_url"] = self.icon_url
        elif self.icon_emoji:
            out["icon_emoji"] = self.icon_emoji
        if self.metadata is not None:
            out["metadata"] = {
                "event_type": self.metadata["event_type"],
                "event_payload": dict(self.metadata["event_payload"]),
            }
        return out


def _dicts(blocks: Sequence[Block]) -> tuple[dict[str, Any], ...]:
    return tuple(block.to_dict() for block in blocks)


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def date_token(epoch: float, fmt: str = "{time_secs}") -> str:
    """Slack's date token: rendered in each reader's own time zone, UTC text as the fallback."""
    return f"<!date^{int(epoch)}^{fmt}|{_utc(epoch)}>"


def _plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=clip(text, limit) or " ", emoji=False)


def _excerpt(lines: Sequence[TranscriptLine]) -> str:
    rows = []
    for line in lines:
        name = escape_mrkdwn(clip(line.author_name or line.author_id, 80))
        rows.append(f"*{name}*: {escape_mrkdwn(clip(line.text, _EXCERPT_LINE_CHARS))}")
    text = "\n".join(rows)
    while len(text) > _SECTION_CHARS and len(rows) > 1:
        rows.pop(0)  # keep the most recent lines
        text = "\n".join(rows)
    return clip(text, _SECTION_CHARS)


# --- the offer DM --------------------------------------------------------------------------


def offer_post(offer: OfferView) -> Post:
    """The offer DM with Accept and Ignore; its metadata names the offer (for lookups)."""
    name = offer.customer_name or offer.customer_id
    last = offer.last_message or "(no message yet)"
    quoted = "\n".join(
        "> " + row for row in escape_mrkdwn(clip(last, _EXCERPT_LINE_CHARS)).splitlines()
    )
    blocks: list[Block] = [
        HeaderBlock(text=_plain(f"New chat: {name}", _HEADER_CHARS)),
        SectionBlock(
            text=MarkdownTextObject(text=clip(f"*Last message*\n{quoted or '> '}", _SECTION_CHARS))
        ),
    ]
    if offer.excerpt:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=f"*Recent*\n{_excerpt(offer.excerpt)}"))
        )
    blocks += [
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Answer by {date_token(offer.expires_at)} or it goes to someone else."
                )
            ]
        ),
        ActionsBlock(
            block_id="offer_actions",
            elements=[
                ButtonElement(
                    text="Accept", action_id=ACTION_ACCEPT, value=offer.offer_id, style="primary"
                ),
                ButtonElement(text="Ignore", action_id=ACTION_IGNORE, value=offer.offer_id),
            ],
        ),
    ]
    fallback = f"New chat from {escape_mrkdwn(clip(name, 80))}: {escape_mrkdwn(clip(last, 200))}"
    return Post(
        text=fallback,
        blocks=_dicts(blocks),
        metadata={"event_type": OFFER_EVENT, "event_payload": {"offer_id": offer.offer_id}},
    )


def _outcome_text(outcome: OfferOutcome, room: str | None) -> str:
    match outcome:
        case "accepted":
            if room is None:
                return ":white_check_mark: Accepted, but the customer left before the room opened."
            return f":white_check_mark: Accepted — go to {room}"
        case "ignored":
            return ":fast_forward: Ignored — offered to someone else."
        case "missed":
            return ":hourglass: Missed — the offer expired before an answer."
        case "withdrawn":
            return ":leftwards_arrow_with_hook: Withdrawn — the chat no longer needs you."


def offer_resolved_post(
    offer: OfferView | None, outcome: OfferOutcome, room: str | None = None
) -> Post:
    """The offer DM after its one outcome: no buttons left. `room` is mrkdwn (`<#C1>`)."""
    status = _outcome_text(outcome, room)
    blocks: list[Block] = []
    if offer is not None:
        name = offer.customer_name or offer.customer_id
        blocks.append(HeaderBlock(text=_plain(f"Chat: {name}", _HEADER_CHARS)))
        if offer.last_message:
            blocks.append(
                SectionBlock(
                    text=MarkdownTextObject(
                        text="> " + escape_mrkdwn(clip(offer.last_message, _EXCERPT_LINE_CHARS))
                    )
                )
            )
    blocks.append(SectionBlock(text=MarkdownTextObject(text=status)))
    return Post(text=status, blocks=_dicts(blocks))


def too_late_text() -> str:
    return "This offer has already ended, so your click changed nothing."


# --- the room ------------------------------------------------------------------------------


def room_header_post(
    *, takeover_id: str, customer_id: str, customer_name: str, agent_id: str, lines: int
) -> Post:
    """The first message of a room, pinned: who the customer is, how to end, the End button."""
    name = escape_mrkdwn(clip(customer_name or customer_id, 80))
    cid = escape_mrkdwn(clip(customer_id, 120))
    history = f"Their whole history follows ({lines} message{'s' * (lines != 1)})." if lines else ""
    body = (
        f"<@{agent_id}> took over the chat with *{name}* (customer `{cid}`). "
        "Everything room members post here goes to the customer; the customer's messages "
        f"appear here. {history}\n"
        "End with `/end-takeover` or the button: the customer goes back to the bot and this "
        "room is archived."
    )
    blocks: list[Block] = [
        HeaderBlock(text=_plain(f"Takeover: {customer_name or customer_id}", _HEADER_CHARS)),
        SectionBlock(text=MarkdownTextObject(text=clip(body, _SECTION_CHARS))),
        ActionsBlock(
            block_id="takeover_actions",
            elements=[
                ButtonElement(
                    text="End takeover",
                    action_id=ACTION_END,
                    value=takeover_id,
                    style="danger",
                    confirm=ConfirmObject(
                        title="End the takeover?",
                        text="The customer goes back to the bot and this room is archived.",
                        confirm="End takeover",
                        deny="Keep chatting",
                    ),
                )
            ],
        ),
    ]
    return Post(
        text=f"Takeover: chat with {name}. End it with /end-takeover.",
        blocks=_dicts(blocks),
        metadata={
            "event_type": ROOM_EVENT,
            "event_payload": {"takeover_id": takeover_id, "customer_id": customer_id},
        },
    )


def note_post(text: str) -> Post:
    """A note of the app itself (our own text: not escaped)."""
    return Post(text=clip(text, MAX_POST_CHARS))


def _identity(
    line: TranscriptLine, avatars: Mapping[str, str]
) -> tuple[str, str | None, str | None]:
    name = line.author_name or line.author_id or line.speaker
    username = clip(f"{name} ({_ROLE[line.speaker]})", _USERNAME_CHARS)
    icon_url = avatars.get(line.author_id) if line.speaker == "agent" else None
    icon_url = icon_url or avatars.get(line.speaker)
    return username, icon_url, None if icon_url else _ICON_EMOJI[line.speaker]


def line_posts(line: TranscriptLine, avatars: Mapping[str, str] = {}) -> list[Post]:
    """One transcript line in its speaker's name; a long line becomes several posts.

    `avatars` maps agent ids to avatar URLs, and may give "customer" and "bot" icon URLs;
    speakers without one get an emoji icon.
    """
    return _run_posts([line], avatars)


def merged_post(run: Sequence[TranscriptLine], avatars: Mapping[str, str] = {}) -> Post | None:
    """Lines of one speaker as one post (a line each), or None when they need more than one."""
    posts = _run_posts(run, avatars)
    return posts[0] if len(posts) == 1 else None


def _run_posts(run: Sequence[TranscriptLine], avatars: Mapping[str, str]) -> list[Post]:
    username, icon_url, icon_emoji = _identity(run[0], avatars)
    text = "\n".join(escape_mrkdwn(line.text) for line in run) or " "
    return [
        Post(text=chunk, username=username, icon_url=icon_url, icon_emoji=icon_emoji)
        for chunk in split_escaped(text, MAX_POST_CHARS)
    ]


def _runs(lines: Sequence[TranscriptLine]) -> list[list[TranscriptLine]]:
    runs: list[list[TranscriptLine]] = []
    for line in lines:
        if runs and (runs[-1][0].speaker, runs[-1][0].author_id) == (line.speaker, line.author_id):
            runs[-1].append(line)
        else:
            runs.append([line])
    return runs


def _digest(lines: Sequence[TranscriptLine]) -> list[Post]:
    rows = []
    for line in lines:
        name = escape_mrkdwn(clip(line.author_name or line.author_id, 80))
        when = date_token(line.at, "{date_short} {time}")
        rows.append(f"{when} *{name}* ({_ROLE[line.speaker]}): {escape_mrkdwn(line.text)}")
    title = f"_Earlier conversation ({len(lines)} message{'s' * (len(lines) != 1)})_\n"
    return [Post(text=chunk) for chunk in split_escaped(title + "\n".join(rows), MAX_POST_CHARS)]


def transcript_posts(
    lines: Sequence[TranscriptLine],
    avatars: Mapping[str, str] = {},
    *,
    max_speaker_posts: int = MAX_SPEAKER_POSTS,
) -> list[Post]:
    """The whole transcript, in order: consecutive lines of one speaker share a post."""
    runs = _runs(lines)
    posts: list[Post] = []
    if len(runs) > max_speaker_posts:
        older = runs[: len(runs) - max_speaker_posts]
        runs = runs[len(older) :]
        posts += _digest([line for run in older for line in run])
    for run in runs:
        posts += _run_posts(run, avatars)
    return posts
