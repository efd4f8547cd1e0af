"""Routing what happens in the workspace to the app and to RTM clients.

Owns the choice of transport per kind (a configured Events API URL means signed HTTP POSTs, else
Socket Mode envelopes), which message facts reach the app (channels the bot is a member of,
including the app's own messages, as Slack sends them), user actions only Slack's UI can make
(a button click -> `block_actions`, a slash command), and the answers an app sends back
(response URLs, Socket Mode ack payloads, HTTP command answers).

`settle()` runs after every mutation: it drains the workspace's facts, fans them out and wakes
the console's long-polls.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
import trio

from emulator import payloads
from emulator.blocks import find_action
from emulator.errors import SlackError
from emulator.events_http import Delivery, HttpDelivery
from emulator.respond import ResponseUrls, apply_response
from emulator.rtm import RtmHub
from emulator.socket_mode import Envelope, SocketModeHub
from emulator.workspace import Channel, PresenceChanged, User, Workspace

__all__ = ["AppRouter", "ChangeFeed", "Targets"]

log = structlog.get_logger("emulator.delivery")

_COMMAND = re.compile(r"^/[a-z0-9][a-z0-9_-]{0,31}$")
_FORM = "application/x-www-form-urlencoded"


@dataclass(slots=True)
class Targets:
    """The app's Events API URLs; None means that kind goes over Socket Mode."""

    events_url: str | None = None
    interactivity_url: str | None = None
    commands_url: str | None = None


class ChangeFeed:
    """Wakes long-polls of the console when the workspace's version moves."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._event = trio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait_beyond(self, version: int) -> int:
        """Wait until the version passes `version`; the caller bounds the wait with a cancel scope."""
        while self.ws.version <= version:
            await self._event.wait()
        return self.ws.version


class AppRouter:
    def __init__(
        self,
        ws: Workspace,
        *,
        socket_mode: SocketModeHub,
        rtm: RtmHub,
        http: HttpDelivery,
        targets: Targets,
        feed: ChangeFeed,
    ) -> None:
        self.ws = ws
        self.socket_mode = socket_mode
        self.rtm = rtm
        self.http = http
        self.targets = targets
        self.feed = feed
        self.responses = ResponseUrls(trio.current_time)
        self._version = ws.version
        socket_mode.on_ack_payload = self._ack_payload

    # facts ----------------------------------------------------------------------------------

    def settle(self) -> None:
        """Fan out the facts of the last mutation: each message event is built once, for the
        app (when its bot is in the channel) and for the members' RTM connections."""
        for happening in self.ws.drain():
            if isinstance(happening, PresenceChanged):
                self.rtm.publish_presence(happening)
                continue
            channel = self.ws.channels.get(happening.channel)
            if channel is None:
                continue
            event = payloads.message_event(self.ws, channel, happening)
            if event is None:
                continue
            if self.ws.bot.id in channel.members:
                self._send_event(event)
            self.rtm.publish_message(channel, event)
        if self.ws.version != self._version:
            self._version = self.ws.version
            self.feed.notify()

    def send_event(self, event: dict[str, Any]) -> None:
        """Deliver one event that is not a message fact (e.g. `app_home_opened`)."""
        self._send_event(event)

    def send_interaction(self, payload: dict[str, Any]) -> None:
        """Deliver one interaction payload (e.g. a click in a Home view)."""
        if self.targets.interactivity_url:
            data = urlencode({"payload": json.dumps(payload)}).encode()
            self.http.submit(Delivery(self.targets.interactivity_url, data, _FORM, retryable=False))
        else:
            self.socket_mode.publish("interactive", payload)

    def _send_event(self, event: dict[str, Any]) -> None:
        body = payloads.event_callback(self.ws, event)
        if self.targets.events_url:
            data = json.dumps(body).encode()
            self.http.submit(
                Delivery(self.targets.events_url, data, "application/json", retryable=True)
            )
        else:
            self.socket_mode.publish("events_api", body)

    # user actions ---------------------------------------------------------------------------

    def _acting(self, user_id: Any, channel_id: Any) -> tuple[User, Channel]:
        if not isinstance(user_id, str) or not isinstance(channel_id, str):
            raise SlackError("invalid_arguments", detail="user and channel must be ids")
        user = self.ws.user(user_id)
        if user.is_bot:
            raise SlackError("user_not_found")
        channel = self.ws.visible(user, channel_id)
        if user.id not in channel.members:
            raise SlackError("not_in_channel")
        if channel.is_archived:
            raise SlackError("is_archived")
        return user, channel

    def click(
        self, base_url: str, user_id: Any, channel_id: Any, ts: Any, action_id: Any
    ) -> dict[str, Any]:
        """A user clicks an interactive element: `block_actions` goes to the app."""
        user, channel = self._acting(user_id, channel_id)
        message = channel.by_ts.get(ts) if isinstance(ts, str) else None
        if message is None:
            raise SlackError("message_not_found")
        if not isinstance(action_id, str):
            raise SlackError("action_not_found")
        block_id, element = find_action(message.blocks, action_id)
        trigger = payloads.trigger_id()
        response_url = self.responses.new(base_url, channel.id, user.id, message.ts)
        payload = payloads.block_actions(
            self.ws,
            user=user,
            channel=channel,
            message=message,
            block_id=block_id,
            element=element,
            response_url=response_url,
            trigger=trigger,
        )
        if self.targets.interactivity_url:
            data = urlencode({"payload": json.dumps(payload)}).encode()
            self.http.submit(Delivery(self.targets.interactivity_url, data, _FORM, retryable=False))
        else:
            self.socket_mode.publish("interactive", payload)
        user.last_activity = self.ws.now()
        return {"ok": True, "trigger_id": trigger, "action_ts": payload["actions"][0]["action_ts"]}

    def command(
        self, base_url: str, user_id: Any, channel_id: Any, command: Any, text: Any
    ) -> dict[str, Any]:
        """A user runs a slash command in a channel: the command goes to the app."""
        if not isinstance(command, str) or not _COMMAND.match(command):
            raise SlackError("invalid_command")
        if text is not None and not isinstance(text, str):
            raise SlackError("invalid_arguments", detail="text must be a string")
        user, channel = self._acting(user_id, channel_id)
        trigger = payloads.trigger_id()
        response_url = self.responses.new(base_url, channel.id, user.id, None)
        fields = payloads.slash_command(
            self.ws,
            user=user,
            channel=channel,
            command=command,
            text=text or "",
            response_url=response_url,
            trigger=trigger,
        )
        if self.targets.commands_url:

            def answered(response: httpx.Response) -> None:
                if response.content.strip():
                    body: Any = response.text
                    if response.headers.get("content-type", "").startswith("application/json"):
                        try:
                            body = json.loads(response.text)
                        except ValueError:
                            log.info("app_response_refused", error="invalid_json")
                            return
                    self._respond_quietly(channel.id, user.id, None, body)

            data = urlencode(fields).encode()
            self.http.submit(
                Delivery(
                    self.targets.commands_url, data, _FORM, retryable=False, on_answer=answered
                )
            )
        else:
            self.socket_mode.publish("slash_commands", dict(fields), accepts_response_payload=True)
        return {"ok": True, "trigger_id": trigger}

    # answers --------------------------------------------------------------------------------

    def respond(self, token: str, body: Any) -> None:
        """A POST to a response URL."""
        target = self.responses.use(token)
        try:
            apply_response(self.ws, target.channel, target.user, target.message_ts, body)
        finally:
            self.settle()

    def _respond_quietly(self, channel: str, user: str, message_ts: str | None, body: Any) -> None:
        try:
            apply_response(self.ws, channel, user, message_ts, body)
        except SlackError as e:
            log.info("app_response_refused", error=e.code)
        except (ValueError, TypeError):
            log.info("app_response_refused", error="invalid_payload")
        self.settle()

    def _ack_payload(self, envelope: Envelope, payload: dict[str, Any]) -> None:
        if envelope.type == "slash_commands":
            fields = envelope.payload
            self._respond_quietly(fields["channel_id"], fields["user_id"], None, payload)
