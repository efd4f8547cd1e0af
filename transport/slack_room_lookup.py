"""Finding what an earlier run of the daemon posted in Slack, for the commands sent again after a
restart (`OpenRoom(resume=True)`, `RelayToRoom(resent=True)`, `CloseRoom(resent=True)`).

Owns the deterministic post ids of a takeover's room posts (`header_post_id`,
`transcript_post_id`, `note_post_id`, and the parts of a relayed line, `part_post_id`),
`posted_ids` (the post ids a room holds, read once through ``conversations.history`` with
``include_all_metadata``), `find_room` (the unarchived room an interrupted opening left:
among the customer's private rooms, the one holding this takeover's posts, else one holding no
takeover post at all, i.e. created but never written to) and `people_messages` (what people
posted in a room since a moment, decoded exactly as live delivery decodes them).
"""

from __future__ import annotations

from typing import Any

from actors.ports import RoomMessagePosted
from transport.slack_decode import DecodeContext, Decoded, InboundRequest, decode
from transport.slack_text import room_base_name, room_name
from transport.slack_web import SlackWebClient
from transport.slack_web_post import post_ids_of

__all__ = [
    "MAX_PAGES",
    "find_room",
    "header_post_id",
    "note_post_id",
    "part_post_id",
    "people_messages",
    "posted_ids",
    "transcript_post_id",
]

MAX_PAGES = 50
_PAGE = 200


def header_post_id(takeover_id: str) -> str:
    return f"{takeover_id}-h"


def transcript_post_id(takeover_id: str, index: int) -> str:
    return f"{takeover_id}-t{index}"


def note_post_id(takeover_id: str) -> str:
    return f"{takeover_id}-note"


def part_post_id(post_id: str, index: int) -> str:
    """The id of part `index` of a line split over several posts (part 0 keeps the line's)."""
    return post_id if index == 0 else f"{post_id}.{index}"


async def _pages(web: SlackWebClient, method: str, key: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    cursor = ""
    for _ in range(MAX_PAGES):
        page = await web.call(method, limit=_PAGE, cursor=cursor or None, **params)
        found = page.get(key)
        items.extend(found if isinstance(found, list) else ())
        metadata = page.get("response_metadata")
        cursor = metadata.get("next_cursor", "") if isinstance(metadata, dict) else ""
        if not cursor:
            break
    return items


async def posted_ids(web: SlackWebClient, channel: str) -> set[str]:
    """Every post id carried by the messages of `channel`."""
    messages = await _pages(
        web, "conversations.history", "messages", channel=channel, include_all_metadata=True
    )
    return {pid for m in messages for pid in post_ids_of(m)}


async def find_room(
    web: SlackWebClient, prefix: str, customer_id: str, takeover_id: str
) -> tuple[dict[str, Any], set[str]] | None:
    """The customer's room this takeover's opening left, with its post ids; None if none."""
    base = room_base_name(prefix, customer_id)
    channels = await _pages(
        web, "conversations.list", "channels", types="private_channel", exclude_archived=True
    )
    ours = [
        c
        for c in channels
        if isinstance(c, dict)
        and isinstance(c.get("name"), str)
        and (c["name"] == base or _numbered(c["name"], base))
        and not c.get("is_archived")
    ]
    blank: tuple[dict[str, Any], set[str]] | None = None
    for channel in ours:
        ids = await posted_ids(web, channel["id"])
        if any(pid.startswith(f"{takeover_id}-") for pid in ids):
            return channel, ids
        if not ids and blank is None:
            blank = channel, ids
    return blank


async def people_messages(
    web: SlackWebClient, channel: str, oldest: float, identity: DecodeContext
) -> tuple[RoomMessagePosted, ...]:
    """The room's messages since `oldest` (epoch seconds) by people, not the app, oldest first:
    each decoded as the RTM `message` event it would have been, so ids match live delivery."""
    messages = await _pages(
        web,
        "conversations.history",
        "messages",
        channel=channel,
        oldest=f"{max(0.0, oldest):.6f}",
        inclusive=True,
    )
    facts: list[RoomMessagePosted] = []
    for message in sorted(
        (m for m in messages if isinstance(m, dict)), key=lambda m: float(m.get("ts") or 0)
    ):
        event = {**message, "type": "message", "channel": channel, "channel_type": "group"}
        result = decode(InboundRequest("rtm", event, source="rtm"), identity)
        if isinstance(result, Decoded):
            facts += [f for f in result.facts if isinstance(f, RoomMessagePosted)]
    return tuple(facts)


def _numbered(name: str, base: str) -> bool:
    """`name` is one of the next free names (`-2`, `-3`, ...) of `base`."""
    _, _, suffix = name.rpartition("-")
    return suffix.isdigit() and int(suffix) >= 2 and room_name(base, int(suffix)) == name
