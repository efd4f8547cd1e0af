"""Web API methods conversations.*: decode arguments, apply `conversations` rules, shape responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator import conversations, messages
from emulator.errors import SlackError
from emulator.web_args import Call, page

__all__ = ["HANDLERS"]


def _channel(call: Call, channel_id: str) -> dict[str, Any]:
    return call.ws.channels[channel_id].to_json(call.actor.user.id)


def create(call: Call) -> dict[str, Any]:
    channel = conversations.create(
        call.ws, call.actor, call.args.get_str("name"), is_private=call.args.get_bool("is_private")
    )
    return {"ok": True, "channel": _channel(call, channel.id)}


def invite(call: Call) -> dict[str, Any]:
    channel = conversations.invite(
        call.ws, call.actor, call.args.get_str("channel"), call.args.get_ids("users")
    )
    return {"ok": True, "channel": _channel(call, channel.id)}


def archive(call: Call) -> dict[str, Any]:
    conversations.archive(call.ws, call.actor, call.args.get_str("channel"))
    return {"ok": True}


def unarchive(call: Call) -> dict[str, Any]:
    conversations.unarchive(call.ws, call.actor, call.args.get_str("channel"))
    return {"ok": True}


def join(call: Call) -> dict[str, Any]:
    channel, already = conversations.join(call.ws, call.actor, call.args.get_str("channel"))
    out: dict[str, Any] = {"ok": True, "channel": _channel(call, channel.id)}
    if already:
        out["warning"] = "already_in_channel"
        out["response_metadata"] = {"warnings": ["already_in_channel"]}
    return out


def rename(call: Call) -> dict[str, Any]:
    channel = conversations.rename(
        call.ws, call.actor, call.args.get_str("channel"), call.args.get_str("name")
    )
    return {"ok": True, "channel": _channel(call, channel.id)}


def set_topic(call: Call) -> dict[str, Any]:
    topic = call.args.get_str("topic") or ""
    channel = conversations.set_topic(call.ws, call.actor, call.args.get_str("channel"), topic)
    return {"ok": True, "channel": _channel(call, channel.id)}


def info(call: Call) -> dict[str, Any]:
    channel = call.ws.visible(call.actor.user, call.args.get_str("channel"))
    out = channel.to_json(call.actor.user.id)
    if call.args.get_bool("include_num_members") and not channel.is_im:
        out["num_members"] = len(channel.members)
    return {"ok": True, "channel": out}


def history(call: Call) -> dict[str, Any]:
    args = call.args
    result = messages.history(
        call.ws,
        call.actor,
        args.get_str("channel"),
        latest=args.get_str("latest") or None,
        oldest=args.get_str("oldest") or None,
        inclusive=args.get_bool("inclusive"),
        limit=args.get_int("limit", 100),
        cursor=args.get_str("cursor") or None,
        include_all_metadata=args.get_bool("include_all_metadata"),
    )
    out: dict[str, Any] = {
        "ok": True,
        "messages": result.messages,
        "has_more": result.has_more,
        "pin_count": result.pin_count,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
    }
    if result.has_more:
        out["response_metadata"] = {"next_cursor": result.next_cursor}
    return out


def members(call: Call) -> dict[str, Any]:
    channel = call.ws.visible(call.actor.user, call.args.get_str("channel"))
    limit = call.args.get_int("limit", 100, error="invalid_limit")
    if not 0 <= limit <= 1000:
        raise SlackError("invalid_limit")
    chunk, cursor = page(channel.members, limit, call.args.get_str("cursor") or None)
    return {"ok": True, "members": chunk, "response_metadata": {"next_cursor": cursor}}


def open_(call: Call) -> dict[str, Any]:
    channel, existed = conversations.open_conversation(
        call.ws, call.actor, call.args.get_str("channel"), call.args.get_ids("users")
    )
    body = _channel(call, channel.id) if call.args.get_bool("return_im") else {"id": channel.id}
    out: dict[str, Any] = {"ok": True, "channel": body}
    if existed:
        out["no_op"] = True
        out["already_open"] = True
    return out


_TYPES = {"public_channel", "private_channel", "mpim", "im"}


def list_(call: Call) -> dict[str, Any]:
    types = set(call.args.get_ids("types")) or {"public_channel"}
    if not types <= _TYPES:
        raise SlackError("invalid_types")
    viewer = call.actor.user.id
    exclude_archived = call.args.get_bool("exclude_archived")
    found = []
    for channel in call.ws.channels.values():
        kind = (
            "im"
            if channel.is_im
            else "mpim"
            if channel.is_mpim
            else "private_channel"
            if channel.is_private
            else "public_channel"
        )
        if kind not in types or (exclude_archived and channel.is_archived):
            continue
        if kind != "public_channel" and viewer not in channel.members:
            continue
        found.append(channel.to_json(viewer))
    chunk, cursor = page(
        found, call.args.get_int("limit", 100), call.args.get_str("cursor") or None
    )
    return {"ok": True, "channels": chunk, "response_metadata": {"next_cursor": cursor}}


HANDLERS: dict[str, Callable[[Call], dict[str, Any]]] = {
    "conversations.create": create,
    "conversations.invite": invite,
    "conversations.archive": archive,
    "conversations.unarchive": unarchive,
    "conversations.join": join,
    "conversations.rename": rename,
    "conversations.setTopic": set_topic,
    "conversations.info": info,
    "conversations.history": history,
    "conversations.members": members,
    "conversations.open": open_,
    "conversations.list": list_,
}
