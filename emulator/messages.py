"""Slack's rules for messages: post, update, delete, ephemeral, pin, history. Pure.

Each function takes the acting principal and decoded arguments, mutates the `Workspace` (appending
`MessagePosted`/`MessageChanged`/`MessageDeleted` facts) or raises `SlackError` with Slack's code.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import secrets
from dataclasses import dataclass
from typing import Any

from emulator.blocks import validate_blocks
from emulator.errors import SlackError
from emulator.workspace import (
    Channel,
    Ephemeral,
    Message,
    MessageChanged,
    MessageDeleted,
    MessagePosted,
    Principal,
    Workspace,
)

__all__ = ["Content", "History", "delete", "ephemeral", "history", "pin", "post", "update"]

MAX_TEXT = 40_000
_TS = re.compile(r"^\d{1,12}(\.\d{1,6})?$")


@dataclass(frozen=True, slots=True)
class Content:
    """What a chat.* call carries; None means "not given"."""

    text: str | None = None
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    username: str | None = None
    icon_url: str | None = None
    icon_emoji: str | None = None
    metadata: dict[str, Any] | None = None
    thread_ts: str | None = None


def _checked(content: Content, *, require: bool = True) -> list[Any] | None:
    if require and not content.text and not content.blocks and not content.attachments:
        raise SlackError("no_text")
    if content.text is not None and len(content.text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    if content.attachments is not None and len(content.attachments) > 100:
        raise SlackError("too_many_attachments")
    if content.metadata is not None:
        meta = content.metadata
        if not isinstance(meta.get("event_type"), str) or not isinstance(
            meta.get("event_payload"), dict
        ):
            raise SlackError("invalid_metadata_format")
    if content.blocks is None:
        return None
    blocks = copy.deepcopy(validate_blocks(content.blocks))
    for block in blocks:  # Slack fills in the ids a client leaves out
        block.setdefault("block_id", secrets.token_urlsafe(3))
        for element in block.get("elements") or []:
            if block.get("type") == "actions" and isinstance(element, dict):
                element.setdefault("action_id", secrets.token_urlsafe(3))
        if isinstance(block.get("accessory"), dict):
            block["accessory"].setdefault("action_id", secrets.token_urlsafe(3))
    return blocks


def _message(
    ws: Workspace, actor: Principal, content: Content, blocks: list[Any] | None
) -> Message:
    bot = actor.kind == "bot"
    return Message(
        ts=ws.new_ts(),
        user=actor.user.id,
        text=content.text or "",
        blocks=blocks,
        attachments=content.attachments,
        bot_id=actor.user.bot_id if bot else None,
        app_id=ws.app_id if bot else None,
        # chat:write.customize applies to bot tokens; a user always posts as themselves
        username=content.username if bot else None,
        icon_url=content.icon_url if bot else None,
        icon_emoji=content.icon_emoji if bot else None,
        metadata=content.metadata,
        thread_ts=content.thread_ts,
    )


def post(
    ws: Workspace,
    actor: Principal,
    channel_ref: str | None,
    content: Content,
    *,
    as_response: bool = False,
) -> tuple[Channel, Message]:
    """chat.postMessage; `as_response` (a response_url post) may reach channels the bot is not in."""
    if as_response:
        channel = ws.channels.get(channel_ref or "")
        if channel is None:
            raise SlackError("channel_not_found")
    else:
        channel = ws.find_channel(actor.user, channel_ref)
    if channel.is_archived:
        raise SlackError("is_archived")
    if not as_response and actor.user.id not in channel.members:
        raise SlackError("not_in_channel")
    blocks = _checked(content)
    if content.thread_ts is not None and content.thread_ts not in channel.by_ts:
        raise SlackError("thread_not_found")
    message = _message(ws, actor, content, blocks)
    channel.messages.append(message)
    channel.by_ts[message.ts] = message
    actor.user.last_activity = ws.now()
    ws.emit(MessagePosted(channel.id, message.to_json(channel.id, metadata=True)))
    return channel, message


def _own_message(
    ws: Workspace, actor: Principal, channel_id: str | None, ts: str | None
) -> tuple[Channel, Message]:
    channel = ws.visible(actor.user, channel_id)
    message = channel.by_ts.get(ts or "")
    if message is None:
        raise SlackError("message_not_found")
    if message.user != actor.user.id:
        raise SlackError("cant_update_message")
    if channel.is_archived:
        raise SlackError("is_archived")
    return channel, message


def update(
    ws: Workspace, actor: Principal, channel_id: str | None, ts: str | None, content: Content
) -> tuple[Channel, Message]:
    """chat.update: given fields replace the old ones; blocks/attachments not given are kept."""
    channel, message = _own_message(ws, actor, channel_id, ts)
    blocks = _checked(content, require=False)
    if content.text is None and content.blocks is None and content.attachments is None:
        raise SlackError("no_text")
    previous = message.to_json(channel.id, metadata=True)
    if content.text is not None:
        message.text = content.text
    if content.blocks is not None:
        message.blocks = blocks or None
    if content.attachments is not None:
        message.attachments = content.attachments or None
    if content.metadata is not None:
        message.metadata = content.metadata
    event_ts = ws.new_ts()
    message.edited = {"user": actor.user.id, "ts": event_ts}
    ws.emit(
        MessageChanged(channel.id, message.to_json(channel.id, metadata=True), previous, event_ts)
    )
    return channel, message


def delete(ws: Workspace, actor: Principal, channel_id: str | None, ts: str | None) -> Channel:
    try:
        channel, message = _own_message(ws, actor, channel_id, ts)
    except SlackError as e:
        raise SlackError("cant_delete_message") if e.code == "cant_update_message" else e from None
    channel.messages.remove(message)
    del channel.by_ts[message.ts]
    ws.emit(MessageDeleted(channel.id, message.to_json(channel.id, metadata=True), ws.new_ts()))
    return channel


def ephemeral(
    ws: Workspace, actor: Principal, channel_ref: str | None, user_id: str | None, content: Content
) -> Ephemeral:
    channel = ws.find_channel(actor.user, channel_ref)
    if channel.is_archived:
        raise SlackError("is_archived")
    blocks = _checked(content)
    if user_id not in channel.members:
        raise SlackError("user_not_in_channel")
    note = Ephemeral(channel.id, user_id, _message(ws, actor, content, blocks))
    ws.ephemerals.append(note)
    del ws.ephemerals[:-1000]  # Slack keeps them only in the open client
    ws.touch()
    return note


def pin(ws: Workspace, actor: Principal, channel_id: str | None, ts: str | None) -> Message:
    channel = ws.visible(actor.user, channel_id)
    if not ts:
        raise SlackError("no_item_specified")
    if not _TS.match(ts):
        raise SlackError("bad_timestamp")
    message = channel.by_ts.get(ts)
    if message is None:
        raise SlackError("message_not_found")
    if actor.user.id not in channel.members:
        raise SlackError("not_in_channel")
    if channel.is_archived:
        raise SlackError("is_archived")
    if message.pinned:
        raise SlackError("already_pinned")
    message.pinned = True
    ws.touch()
    return message


@dataclass(frozen=True, slots=True)
class History:
    messages: list[dict[str, Any]]
    has_more: bool
    next_cursor: str
    pin_count: int


def _cursor_ts(cursor: str) -> str:
    try:
        raw = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    if not raw.startswith("next_ts:") or not _TS.match(raw[8:]):
        raise SlackError("invalid_cursor")
    return raw[8:]


def history(
    ws: Workspace,
    actor: Principal,
    channel_id: str | None,
    *,
    latest: str | None = None,
    oldest: str | None = None,
    inclusive: bool = False,
    limit: int = 100,
    cursor: str | None = None,
    include_all_metadata: bool = False,
) -> History:
    """conversations.history: newest first, `latest` exclusive unless `inclusive`."""
    channel = ws.visible(actor.user, channel_id)
    if latest is not None and not _TS.match(latest):
        raise SlackError("invalid_ts_latest")
    if oldest is not None and not _TS.match(oldest):
        raise SlackError("invalid_ts_oldest")
    top = float(latest) if latest else float("inf")
    bottom = float(oldest) if oldest else 0.0
    if cursor:
        top, inclusive = float(_cursor_ts(cursor)), True
    limit = max(1, min(limit, 999))
    picked: list[Message] = []
    has_more = False
    for message in reversed(channel.messages):
        ts = float(message.ts)
        if (
            ts > top
            or (ts == top and not inclusive)
            or ts < bottom
            or (ts == bottom and not inclusive and oldest)
        ):
            continue
        if len(picked) == limit:
            has_more = True
            break
        picked.append(message)
    next_cursor = ""
    if has_more:
        next_ts = channel.messages[channel.messages.index(picked[-1]) - 1].ts
        next_cursor = base64.b64encode(f"next_ts:{next_ts}".encode()).decode()
    return History(
        messages=[m.to_json(channel.id, metadata=include_all_metadata) for m in picked],
        has_more=has_more,
        next_cursor=next_cursor,
        pin_count=sum(m.pinned for m in channel.messages),
    )
