"""Web API methods chat.* and pins.add: decode arguments, apply `messages` rules, shape responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator import messages
from emulator.errors import SlackError
from emulator.messages import Content
from emulator.web_args import Args, Call

__all__ = ["HANDLERS", "content_of"]


def content_of(args: Args) -> Content:
    metadata = args.get_json("metadata", error="invalid_metadata_format")
    if metadata is not None and not isinstance(metadata, dict):
        raise SlackError("invalid_metadata_format")
    attachments = args.get_json("attachments", error="invalid_attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise SlackError("invalid_attachments")
    return Content(
        text=args.get_str("text"),
        blocks=args.get_json("blocks", error="invalid_blocks_format"),
        attachments=attachments,
        username=args.get_str("username"),
        icon_url=args.get_str("icon_url"),
        icon_emoji=args.get_str("icon_emoji"),
        metadata=metadata,
        thread_ts=args.get_str("thread_ts") or None,
    )


def post_message(call: Call) -> dict[str, Any]:
    channel, message = messages.post(
        call.ws, call.actor, call.args.get_str("channel"), content_of(call.args)
    )
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message.ts,
        "message": message.to_json(channel.id, metadata=True),
    }


def update(call: Call) -> dict[str, Any]:
    channel, message = messages.update(
        call.ws,
        call.actor,
        call.args.get_str("channel"),
        call.args.get_str("ts"),
        content_of(call.args),
    )
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": message.to_json(channel.id, metadata=True),
    }


def delete(call: Call) -> dict[str, Any]:
    ts = call.args.get_str("ts")
    channel = messages.delete(call.ws, call.actor, call.args.get_str("channel"), ts)
    return {"ok": True, "channel": channel.id, "ts": ts}


def post_ephemeral(call: Call) -> dict[str, Any]:
    note = messages.ephemeral(
        call.ws,
        call.actor,
        call.args.get_str("channel"),
        call.args.get_str("user"),
        content_of(call.args),
    )
    return {"ok": True, "message_ts": note.message.ts}


def pins_add(call: Call) -> dict[str, Any]:
    messages.pin(call.ws, call.actor, call.args.get_str("channel"), call.args.get_str("timestamp"))
    return {"ok": True}


HANDLERS: dict[str, Callable[[Call], dict[str, Any]]] = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.delete": delete,
    "chat.postEphemeral": post_ephemeral,
    "pins.add": pins_add,
}
