"""The payloads Slack sends an app, built from workspace facts. Pure.

Owns the shapes of `event_callback` wrappers and their `message` events (plain, `message_changed`,
`message_deleted`), `block_actions` interaction payloads, slash-command form fields, and the RTM
`message` / `presence_change` events.
"""

from __future__ import annotations

import random
import secrets
from typing import Any, assert_never

from emulator.workspace import (
    Channel,
    Happening,
    Message,
    MessageChanged,
    MessageDeleted,
    MessagePosted,
    PresenceChanged,
    User,
    Workspace,
)

# Per-event identifiers are not secrets: a seeded PRNG is much cheaper than os.urandom per event.
_ids = random.Random(secrets.randbits(64))

__all__ = [
    "block_actions",
    "channel_name",
    "event_callback",
    "message_event",
    "presence_change",
    "slash_command",
    "trigger_id",
]


def channel_name(channel: Channel) -> str:
    """The `channel_name` Slack puts in interaction payloads and slash commands."""
    return "directmessage" if channel.is_im else channel.name


def trigger_id() -> str:
    return f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**13)}.{secrets.token_hex(16)}"


def _bot_profile(ws: Workspace) -> dict[str, Any]:
    return {
        "id": ws.bot.bot_id,
        "app_id": ws.app_id,
        "name": ws.app_name,
        "deleted": False,
        "team_id": ws.team_id,
        "icons": {"image_48": f"https://avatars.emulator.invalid/{ws.bot.id}_48.png"},
    }


def message_event(ws: Workspace, channel: Channel, happening: Happening) -> dict[str, Any] | None:
    """The `message` event (with `channel_type`) for a message fact; None for other facts."""
    match happening:
        case MessagePosted(message=message):
            event = {
                **message,
                "team": ws.team_id,
                "channel": channel.id,
                "event_ts": message["ts"],
            }
            if "bot_id" in message:
                event["bot_profile"] = _bot_profile(ws)
        case MessageChanged(message=message, previous=previous, event_ts=event_ts):
            event = {
                "type": "message",
                "subtype": "message_changed",
                "hidden": True,
                "message": message,
                "previous_message": previous,
                "channel": channel.id,
                "ts": event_ts,
                "event_ts": event_ts,
            }
        case MessageDeleted(previous=previous, event_ts=event_ts):
            event = {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "deleted_ts": previous["ts"],
                "previous_message": previous,
                "channel": channel.id,
                "ts": event_ts,
                "event_ts": event_ts,
            }
        case PresenceChanged():
            return None
        case _:
            assert_never(happening)
    event["channel_type"] = channel.channel_type
    return event


def event_callback(ws: Workspace, event: dict[str, Any]) -> dict[str, Any]:
    """The Events API wrapper around one event, as delivered to the app."""
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{_ids.getrandbits(40):010X}",
        "event_time": ws.now(),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot.id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{_ids.getrandbits(128):032x}",
    }


def _user_ref(ws: Workspace, user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team_id}


def block_actions(
    ws: Workspace,
    *,
    user: User,
    channel: Channel,
    message: Message,
    block_id: str,
    element: dict[str, Any],
    response_url: str,
    trigger: str,
) -> dict[str, Any]:
    """A `block_actions` payload for a click on `element` of `message`."""
    action = {
        "action_id": element.get("action_id"),
        "block_id": block_id,
        "type": element.get("type"),
        "action_ts": ws.new_ts(),
    }
    for key in ("text", "value", "style", "url"):
        if key in element:
            action[key] = element[key]
    return {
        "type": "block_actions",
        "user": _user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel.id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger,
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel_name(channel)},
        "message": {**message.to_json(channel.id), "team": ws.team_id},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def slash_command(
    ws: Workspace,
    *,
    user: User,
    channel: Channel,
    command: str,
    text: str,
    response_url: str,
    trigger: str,
) -> dict[str, str]:
    """The form fields of a slash command (Socket Mode carries the same as a JSON object)."""
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel.id,
        "channel_name": channel_name(channel),
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger,
    }


def presence_change(user_ids: list[str], presence: str, *, batch: bool) -> dict[str, Any]:
    """RTM `presence_change`; `batch` (batch_presence_aware) lists several users at once."""
    if batch:
        return {"type": "presence_change", "users": user_ids, "presence": presence}
    return {"type": "presence_change", "user": user_ids[0], "presence": presence}
