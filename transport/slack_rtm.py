"""Slack RTM (classic apps): presence of the agent pool and messages, over a WebSocket.

Owns `RtmClient` and the typed records it hands to the injected async handler, one at a time
in arrival order:

- `RtmConnected(self_id, team_id, reconnected)` after each ``hello`` (on a reconnect, presence
  may have changed unseen: the receiver should re-read it);
- `PresenceEvent(user_id, presence)` for each user of a ``presence_change`` (single ``user`` and
  batch ``users`` forms alike);
- `RtmMessage(channel, user, text, ts, ...)` for each ``message`` event (the app's own messages
  included: `RtmConnected.self_id` says which user is the app).

The client calls ``rtm.connect`` (``batch_presence_aware``, ``presence_sub``), waits ``hello``,
subscribes to the presence of the ids given (`subscribe_presence` changes them later), pings,
and reconnects with backoff through `WsLinks`; ``goodbye`` opens the next link before the old
one closes, and a message seen on both links during that overlap is handed on once.
"""

from __future__ import annotations

import math
import random as _random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import structlog
import trio

from transport.slack_backoff import RandomSource
from transport.slack_errors import SlackFatalDisconnect
from transport.slack_web import SlackWebClient
from transport.slack_ws import Link, WsLinks, WsPolicy, WsStatistics, open_link_url

__all__ = [
    "PresenceEvent",
    "RtmClient",
    "RtmConnected",
    "RtmEvent",
    "RtmMessage",
    "RtmStatistics",
]

_log = structlog.get_logger("transport.slack_rtm")


@dataclass(frozen=True, slots=True)
class RtmConnected:
    self_id: str
    team_id: str
    reconnected: bool


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    user_id: str
    presence: Literal["active", "away"]


@dataclass(frozen=True, slots=True)
class RtmMessage:
    """A ``message`` event; `payload` keeps the whole event for what the fields leave out."""

    channel: str
    user: str | None
    text: str
    ts: str
    subtype: str | None
    thread_ts: str | None
    bot_id: str | None
    payload: dict[str, Any]


RtmEvent = RtmConnected | PresenceEvent | RtmMessage
Handler = Callable[[RtmEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RtmStatistics:
    presence_events: int
    messages: int
    duplicates: int
    ignored: int
    handler_errors: int
    pending: int
    links: WsStatistics


class RtmClient:
    """Receives presence changes and messages over Slack's RTM API."""

    def __init__(
        self,
        web: SlackWebClient,
        handler: Handler,
        *,
        presence_ids: Iterable[str] = (),
        policy: WsPolicy | None = None,
        random: RandomSource = _random.random,
        dedupe_size: int = 10_000,
    ) -> None:
        """`web` carries the bot token of a classic app."""
        self._web = web
        self._handler = handler
        self._presence_ids = tuple(dict.fromkeys(presence_ids))
        self._links = WsLinks(self, name="rtm", policy=policy, random=random)
        self._send, self._receive = trio.open_memory_channel[RtmEvent](math.inf)
        self._recent: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._dedupe_size = dedupe_size
        self._link: Link | None = None
        self._identity = ("", "")
        self._hellos = 0
        self._presence = self._messages = self._duplicates = self._ignored = self._errors = 0
        self._table: dict[str, Callable[[Link, dict[str, Any]], None]] = {
            "presence_change": self._on_presence,
            "message": self._on_message,
            "goodbye": self._on_goodbye,
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled; ``started()`` after the first hello and presence_sub.

        Raises `SlackFatalDisconnect` when Slack refuses the token (events already received
        are handed on first).
        """
        fatal: SlackFatalDisconnect | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._dispatch)
            try:
                await self._links.run(task_status=task_status)
            except SlackFatalDisconnect as e:
                fatal = e
                _log.error("rtm_fatal", reason=e.reason)
            await self._send.aclose()
        if fatal is not None:
            raise fatal

    async def subscribe_presence(self, user_ids: Iterable[str]) -> None:
        """Follow the presence of exactly these users from now on (and after reconnects)."""
        self._presence_ids = tuple(dict.fromkeys(user_ids))
        if self._link is not None:
            await self._link.send_json({"type": "presence_sub", "ids": list(self._presence_ids)})

    async def _dispatch(self) -> None:
        async with self._receive:
            async for event in self._receive:
                try:
                    await self._handler(event)
                except Exception:
                    self._errors += 1
                    _log.exception("rtm_handler_failed", kind=type(event).__name__)

    # LinkHooks

    async def open_url(self) -> str:
        answer = await open_link_url(
            self._web, "rtm.connect", batch_presence_aware=True, presence_sub=True
        )
        me, team = answer.get("self"), answer.get("team")
        self_id = me.get("id") if isinstance(me, dict) else None
        team_id = team.get("id") if isinstance(team, dict) else None
        self._identity = (
            self_id if isinstance(self_id, str) else "",
            team_id if isinstance(team_id, str) else "",
        )
        return str(answer["url"])

    async def on_hello(self, link: Link, hello: dict[str, Any]) -> None:
        self._link = link
        if self._presence_ids:
            await link.send_json({"type": "presence_sub", "ids": list(self._presence_ids)})
        self._hellos += 1
        self_id, team_id = self._identity
        self._hand_on(RtmConnected(self_id, team_id, reconnected=self._hellos > 1))

    async def on_message(self, link: Link, message: dict[str, Any]) -> None:
        handle = self._table.get(message["type"])
        if handle is None:
            self._ignored += 1
            return
        handle(link, message)

    def _on_presence(self, link: Link, message: dict[str, Any]) -> None:
        presence = message.get("presence")
        users = message.get("users")
        if users is None:
            users = [message.get("user")]
        if presence not in ("active", "away") or not isinstance(users, list):
            self._ignored += 1
            _log.warning("rtm_bad_presence_change", sample=str(message)[:200])
            return
        for user in users:
            if isinstance(user, str) and user:
                self._presence += 1
                self._hand_on(PresenceEvent(user, presence))

    def _on_message(self, link: Link, message: dict[str, Any]) -> None:
        channel, ts = message.get("channel"), message.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            self._ignored += 1
            _log.warning("rtm_bad_message_event", sample=str(message)[:200])
            return
        subtype = _str_or_none(message.get("subtype"))
        key = (channel, ts, subtype or "")
        if key in self._recent:  # seen on the other link while both were open
            self._duplicates += 1
            return
        self._recent[key] = None
        if len(self._recent) > self._dedupe_size:
            self._recent.popitem(last=False)
        text = message.get("text")
        self._messages += 1
        self._hand_on(
            RtmMessage(
                channel=channel,
                user=_str_or_none(message.get("user")),
                text=text if isinstance(text, str) else "",
                ts=ts,
                subtype=subtype,
                thread_ts=_str_or_none(message.get("thread_ts")),
                bot_id=_str_or_none(message.get("bot_id")),
                payload=message,
            )
        )

    def _hand_on(self, event: RtmEvent) -> None:
        """Queue an event for the handler; once shutting down (the dispatcher has ended) it is
        dropped instead of crashing the link that read it."""
        try:
            self._send.send_nowait(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            _log.info("rtm_event_after_shutdown", kind=type(event).__name__)

    def _on_goodbye(self, link: Link, message: dict[str, Any]) -> None:
        link.request_refresh("goodbye")

    def statistics(self) -> RtmStatistics:
        return RtmStatistics(
            presence_events=self._presence,
            messages=self._messages,
            duplicates=self._duplicates,
            ignored=self._ignored,
            handler_errors=self._errors,
            pending=self._receive.statistics().current_buffer_used,
            links=self._links.statistics(),
        )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
