"""Leads in Slack: the lead message, and posting it in the leads channel.

Owns `lead_post` (the Block Kit view of a `PostLead`: who, their email as a mailto link, the
question, the latest lines of the conversation, when it was left; every customer-typed text
escaped for mrkdwn so `<!channel>` pings nobody) and `Leads`, which executes `PostLead` for the
Slack actor as one chat.postMessage in `slack.leads_channel`:

- no leads channel set: nothing is posted, `lead_not_posted` is logged;
- the post goes through `post_reliably` with a post id derived from the lead id, so retries
  (and a lead sent again after a restart) never post it twice;
- a post that still fails is logged (`lead_post_failed`); the lead itself stays in the journal
  and in `GET /api/leads`.

The channel may be an id (`C0123...`, best) or a name (`leads` or `#leads`); after the first
post its id, as Slack answers it, is used from then on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from actors.ports import PostLead, TranscriptLine
from transport.slack_blocks import Post, date_token
from transport.slack_errors import SlackError
from transport.slack_rooms import post_reliably
from transport.slack_text import clip, escape_mrkdwn
from transport.slack_web import SlackWebClient
from transport.slack_web_post import PostIds

__all__ = ["LEAD_EVENT", "Leads", "lead_post"]

_log = structlog.get_logger("transport.slack_leads")

LEAD_EVENT = "takeover_lead"
_HEADER_CHARS = 150
_FIELD_CHARS = 1_900  # a section field holds 2,000
_SECTION_CHARS = 2_900  # a section's text holds 3,000
_LINE_CHARS = 400
_CONVERSATION_SECTIONS = 3
_ROLE = {"customer": "customer", "bot": "bot", "agent": "agent"}


def _customer_label(cmd: PostLead) -> str:
    return cmd.name or f"Customer {cmd.customer_id}"


def _quote(text: str, limit: int) -> str:
    escaped = escape_mrkdwn(clip(text, limit))
    return "\n".join("> " + row for row in escaped.splitlines()) or "> "


def _email(email: str) -> str:
    shown = escape_mrkdwn(clip(email, 254))
    if any(c in email for c in "<>|&") or email != email.strip():
        return shown  # not linkable safely: plain text
    return f"<mailto:{email}|{shown}>"


def _conversation(lines: Sequence[TranscriptLine]) -> list[str]:
    """The latest lines that fit in a few sections, oldest first; a note says what was left out."""
    rows = []
    for line in lines:
        name = escape_mrkdwn(clip(line.author_name or line.author_id, 80))
        text = escape_mrkdwn(clip(line.text, _LINE_CHARS))
        rows.append(f"*{name}* ({_ROLE.get(line.speaker, line.speaker)}): {text}")
    budget = _SECTION_CHARS * _CONVERSATION_SECTIONS
    kept: list[str] = []
    used = 0
    for row in reversed(rows):
        if used + len(row) + 1 > budget - 100:
            break
        kept.append(row)
        used += len(row) + 1
    kept.reverse()
    left_out = len(rows) - len(kept)
    if left_out:
        kept.insert(0, f"_{left_out} earlier line{'s' * (left_out != 1)} not shown_")
    sections: list[str] = []
    current = ""
    for row in kept:
        if current and len(current) + 1 + len(row) > _SECTION_CHARS:
            sections.append(current)
            current = ""
        current = f"{current}\n{row}" if current else clip(row, _SECTION_CHARS)
    if current:
        sections.append(current)
    return sections


def lead_post(cmd: PostLead) -> Post:
    """The lead as one message: header, contact fields, question, conversation, lead id."""
    label = _customer_label(cmd)
    fields = [
        MarkdownTextObject(text=f"*Email*\n{_email(cmd.email)}"),
        MarkdownTextObject(text=f"*Name*\n{escape_mrkdwn(clip(label, _FIELD_CHARS - 10))}"),
        MarkdownTextObject(text=f"*Customer*\n`{escape_mrkdwn(clip(cmd.customer_id, 120))}`"),
        MarkdownTextObject(text=f"*Left*\n{date_token(cmd.at, '{date_short_pretty} {time}')}"),
    ]
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(text=clip(f"New lead: {label}", _HEADER_CHARS), emoji=False)
        ),
        SectionBlock(fields=fields),
        SectionBlock(
            text=MarkdownTextObject(text=f"*Question*\n{_quote(cmd.question, _SECTION_CHARS - 20)}")
        ),
    ]
    sections = _conversation(cmd.transcript)
    for i, text in enumerate(sections):
        title = "*Conversation*\n" if i == 0 else ""
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=clip(title + text, _SECTION_CHARS + 20)))
        )
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Lead `{escape_mrkdwn(cmd.lead_id)}`: answer the customer by email."
                )
            ]
        )
    )
    fallback = (
        f"New lead from {escape_mrkdwn(clip(label, 80))} ({escape_mrkdwn(clip(cmd.email, 254))}): "
        f"{escape_mrkdwn(clip(cmd.question, 200))}"
    )
    return Post(
        text=fallback,
        blocks=tuple(block.to_dict() for block in blocks),
        metadata={"event_type": LEAD_EVENT, "event_payload": {"lead_id": cmd.lead_id}},
    )


class _LeadPostId(PostIds):
    """The post id of one lead: the same on every attempt and after a restart."""

    def __init__(self, lead_id: str) -> None:
        super().__init__()
        self._id = f"lead-{lead_id}"

    def next(self) -> str:
        return self._id


class Leads:
    """Executes `PostLead` in `channel` (empty: leads are not posted)."""

    def __init__(
        self,
        web: SlackWebClient,
        channel: str,
        *,
        pause_s: float = 2.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._web = web
        self._channel = channel.strip()
        self._pause_s = pause_s
        self._wall_clock = wall_clock
        self.posted = 0
        self.failed = 0

    async def post(self, cmd: PostLead) -> None:
        if not self._channel:
            _log.info("lead_not_posted", lead=cmd.lead_id, reason="no slack.leads_channel")
            return
        try:
            answer = await post_reliably(
                self._web,
                self._channel,
                lead_post(cmd),
                post_ids=_LeadPostId(cmd.lead_id),
                pause_s=self._pause_s,
                wall_clock=self._wall_clock,
            )
        except SlackError as e:
            self.failed += 1
            _log.error("lead_post_failed", lead=cmd.lead_id, channel=self._channel, error=str(e))
            return
        self.posted += 1
        channel_id = answer.get("channel")
        if isinstance(channel_id, str) and channel_id:
            self._channel = channel_id
        _log.info("lead_posted", lead=cmd.lead_id, channel=self._channel)
