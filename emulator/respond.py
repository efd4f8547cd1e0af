"""Responses an app sends back to a user action: `response_url` posts, slash-command answers.

Owns the response URLs handed out with interactions and commands (each good for five uses within
thirty minutes, as Slack's), and applying a response body as Slack does: `delete_original`,
`replace_original` (the clicked message is updated), `response_type: in_channel` (a message in
the channel), or by default an ephemeral message to the user who acted. Pure apart from the clock
it is given.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from emulator import messages
from emulator.errors import SlackError
from emulator.messages import Content
from emulator.workspace import Principal, Workspace

__all__ = ["ResponseTarget", "ResponseUrls", "apply_response"]

USES = 5
LIFETIME_S = 30 * 60.0


@dataclass(frozen=True, slots=True)
class ResponseTarget:
    channel: str
    user: str
    message_ts: str | None
    expires: float
    uses_left: int = USES


class ResponseUrls:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._targets: dict[str, ResponseTarget] = {}

    def new(self, base_url: str, channel: str, user: str, message_ts: str | None) -> str:
        now = self._clock()
        for token in [t for t, target in self._targets.items() if target.expires <= now]:
            del self._targets[token]
        token = secrets.token_urlsafe(18)
        self._targets[token] = ResponseTarget(channel, user, message_ts, now + LIFETIME_S)
        return f"{base_url}/_emu/respond/{token}"

    def use(self, token: str) -> ResponseTarget:
        target = self._targets.get(token)
        if target is None or target.expires <= self._clock():
            self._targets.pop(token, None)
            raise SlackError("expired_url")
        if target.uses_left <= 1:
            del self._targets[token]
        else:
            self._targets[token] = replace(target, uses_left=target.uses_left - 1)
        return target


def apply_response(
    ws: Workspace, channel: str, user: str, message_ts: str | None, body: Any
) -> None:
    """Apply one response body (response_url POST, ack payload or command answer)."""
    if isinstance(body, str):
        body = {"text": body}
    if not isinstance(body, dict):
        raise SlackError("invalid_payload")
    bot = Principal(ws.bot, "bot")
    blocks = body.get("blocks")
    text = body.get("text")
    if (text is not None and not isinstance(text, str)) or (
        blocks is not None and not isinstance(blocks, list)
    ):
        raise SlackError("invalid_payload")
    content = Content(text=text, blocks=blocks)
    if body.get("delete_original") is True:
        if message_ts is None:
            raise SlackError("message_not_found")
        messages.delete(ws, bot, channel, message_ts)
    elif body.get("replace_original") is True and message_ts is not None:
        messages.update(ws, bot, channel, message_ts, content)
    elif body.get("response_type") == "in_channel":
        messages.post(ws, bot, channel, content, as_response=True)
    else:
        messages.ephemeral(ws, bot, channel, user, content)
