"""Raw Slack payloads -> the domain's typed facts, or a typed refusal. Pure; never raises.

Owns `InboundRequest`, the one shape every inbound transport is normalised into (a Socket Mode
envelope, an RTM event, an Events API HTTP request), and `decode`, which turns one into:

- `Decoded(facts)`: `OfferAnswered` (block_actions `offer_accept` / `offer_ignore`, the value
  is the offer id), `EndTakeoverRequested` (`/end-takeover`, or block_actions `takeover_end`),
  `RoomMessagePosted` (a person's message in a channel; `message_id` is `<channel>:<ts>` so
  redeliveries de-duplicate), `PresenceChanged` (RTM `presence_change`, one or a batch);
- `Ignored(reason, notice)`: valid Slack traffic that is not for the domain: the app's own
  messages and other bots', message subtypes (joins, edits, deletions), direct messages, unknown
  actions or commands (`notice` then says what to tell the user);
- `Rejected(reason, detail)`: garbage: not the shape Slack sends.

Whether a channel is one of our rooms, and whether the user may end its takeover, needs Slack
calls: `transport.slack_inbound` checks that after decoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from actors.ports import (
    EndTakeoverRequested,
    OfferAnswered,
    PresenceChanged,
    RoomMessagePosted,
    SlackFact,
)
from transport.slack_blocks import ACTION_ACCEPT, ACTION_END, ACTION_IGNORE
from transport.slack_text import escape_mrkdwn, mrkdwn_to_plain

__all__ = [
    "END_COMMAND",
    "DecodeContext",
    "DecodeResult",
    "Decoded",
    "Ignored",
    "InboundKind",
    "InboundRequest",
    "Notice",
    "Rejected",
    "decode",
]

END_COMMAND = "/end-takeover"
InboundKind = Literal["events_api", "interactive", "slash_commands", "rtm"]
# tuples, not sets: a payload value may be unhashable (a list), and `in` must not raise
_RELAYED_SUBTYPES = (None, "thread_broadcast", "file_share")
_ROOM_CHANNEL_TYPES = ("group", "channel", "mpim", None)


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """One inbound delivery, whatever carried it.

    `kind` is the Socket Mode envelope type (Events API and HTTP requests map onto the same
    three), or "rtm" for an RTM event; `payload` is the parsed JSON object (for slash commands
    the form fields); `delivery_id` the envelope id when there is one.
    """

    kind: InboundKind
    payload: Mapping[str, Any]
    source: Literal["socket", "rtm", "http"] = "socket"
    delivery_id: str = ""
    retry_attempt: int = 0


@dataclass(frozen=True, slots=True)
class DecodeContext:
    """Who the app is: its messages are never relayed."""

    bot_user_id: str
    bot_id: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something to tell one user, privately, in a channel."""

    channel_id: str
    user_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """Facts for the domain; `event_id` (Events API) de-duplicates redeliveries."""

    facts: tuple[SlackFact, ...]
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str
    notice: Notice | None = None
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str = ""


DecodeResult = Decoded | Ignored | Rejected


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _map(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def decode(request: InboundRequest, ctx: DecodeContext) -> DecodeResult:
    """Decode one inbound request; any payload at all gives a result, never an exception."""
    try:
        payload = _map(request.payload)
        if payload is None:
            return Rejected("not_an_object")
        match request.kind:
            case "events_api":
                return _events_api(payload, ctx)
            case "interactive":
                return _interactive(payload)
            case "slash_commands":
                return _command(payload)
            case "rtm":
                return _event(payload, ctx, "")
            case _:
                return Rejected("unknown_kind", repr(request.kind)[:80])
    except Exception as e:  # a decoder bug must not take the connection down
        return Rejected("decoder_error", f"{type(e).__name__}: {e}"[:200])


# --- events ----------------------------------------------------------------------------------


def _events_api(payload: Mapping[str, Any], ctx: DecodeContext) -> DecodeResult:
    kind = payload.get("type")
    if kind == "url_verification":
        return Ignored("url_verification")
    if kind == "app_rate_limited":
        return Ignored("app_rate_limited")
    if kind != "event_callback":
        return Rejected("unknown_envelope", repr(kind)[:80])
    event = _map(payload.get("event"))
    if event is None:
        return Rejected("no_event")
    event_id = payload.get("event_id")
    return _event(event, ctx, event_id if isinstance(event_id, str) else "")


def _event(event: Mapping[str, Any], ctx: DecodeContext, event_id: str) -> DecodeResult:
    kind = event.get("type")
    if kind == "message":
        return _message(event, ctx, event_id)
    if kind == "presence_change":
        return _presence(event)
    if kind in ("hello", "pong", "goodbye", "reconnect_url", "user_typing", "desktop_notification"):
        return Ignored(f"rtm_{kind}")
    if isinstance(kind, str) and kind:
        return Ignored(f"event_{kind[:40]}", event_id=event_id)
    return Rejected("event_without_type")


def _message(event: Mapping[str, Any], ctx: DecodeContext, event_id: str) -> DecodeResult:
    subtype = event.get("subtype")
    if subtype not in _RELAYED_SUBTYPES:
        return Ignored(f"subtype_{str(subtype)[:40]}", event_id=event_id)
    if event.get("hidden") is True:
        return Ignored("hidden", event_id=event_id)
    user = event.get("user")
    if event.get("bot_id") or event.get("bot_profile") or subtype == "bot_message":
        mine = (ctx.bot_id and event.get("bot_id") == ctx.bot_id) or user == ctx.bot_user_id
        return Ignored("own_message" if mine else "bot_message", event_id=event_id)
    if user == ctx.bot_user_id:
        return Ignored("own_message", event_id=event_id)
    channel, ts, user = _str(event.get("channel")), _str(event.get("ts")), _str(user)
    if channel is None or ts is None or user is None:
        return Rejected("message_without_channel_ts_or_user")
    if event.get("channel_type") not in _ROOM_CHANNEL_TYPES or channel.startswith("D"):
        return Ignored("direct_message", event_id=event_id)
    text = event.get("text")
    plain = mrkdwn_to_plain(text) if isinstance(text, str) else ""
    files = event.get("files")
    if isinstance(files, list):
        names = []
        for file in files:
            if isinstance(file, Mapping):
                name = file.get("name") or file.get("title")
                names.append(name if isinstance(name, str) and name else "file")
        plain = "\n".join([plain, *(f"[shared a file: {n}]" for n in names)]).strip()
    if not plain.strip():
        return Ignored("empty_message", event_id=event_id)
    fact = RoomMessagePosted(
        room_id=channel, user_id=user, text=plain, message_id=f"{channel}:{ts}"
    )
    return Decoded((fact,), event_id)


def _presence(event: Mapping[str, Any]) -> DecodeResult:
    presence = event.get("presence")
    if presence not in ("active", "away"):
        return Rejected("presence_unknown", repr(presence)[:40])
    users = event.get("users")
    ids = users if isinstance(users, list) else [event.get("user")]
    valid = [u for u in ids if isinstance(u, str) and u]
    if not valid:
        return Rejected("presence_without_user")
    return Decoded(tuple(PresenceChanged(u, presence == "active") for u in valid))


# --- interactions and commands ---------------------------------------------------------------


def _interactive(payload: Mapping[str, Any]) -> DecodeResult:
    kind = payload.get("type")
    if kind != "block_actions":
        if isinstance(kind, str) and kind:
            return Ignored(f"interactive_{kind[:40]}")
        return Rejected("interaction_without_type")
    user = _str((_map(payload.get("user")) or {}).get("id"))
    if user is None:
        return Rejected("interaction_without_user")
    container = _map(payload.get("container")) or {}
    channel = _str(container.get("channel_id")) or _str(
        (_map(payload.get("channel")) or {}).get("id")
    )
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        return Rejected("interaction_without_actions")
    facts: list[SlackFact] = []
    for action in actions:
        action = _map(action)
        if action is None:
            return Rejected("action_not_an_object")
        action_id = action.get("action_id")
        if action_id in (ACTION_ACCEPT, ACTION_IGNORE):
            offer_id = _str(action.get("value"))
            if offer_id is None:
                return Rejected("offer_action_without_value")
            facts.append(OfferAnswered(offer_id, user, action_id == ACTION_ACCEPT))
        elif action_id == ACTION_END:
            if channel is None:
                return Rejected("end_action_without_channel")
            facts.append(EndTakeoverRequested(channel, user))
    if not facts:
        return Ignored("unknown_action")
    return Decoded(tuple(facts))


def _command(payload: Mapping[str, Any]) -> DecodeResult:
    command = _str(payload.get("command"))
    user, channel = _str(payload.get("user_id")), _str(payload.get("channel_id"))
    if command is None or user is None or channel is None:
        return Rejected("command_without_command_user_or_channel")
    if command != END_COMMAND:
        shown = escape_mrkdwn(command[:40])
        notice = Notice(channel, user, f"`{shown}` is not a command of this app.")
        return Ignored("unknown_command", notice)
    return Decoded((EndTakeoverRequested(channel, user),))
