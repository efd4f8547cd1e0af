"""The WebSocket link life shared by Socket Mode and RTM: open, hello, ping, reconnect, refresh.

Owns `WsLinks`, which keeps one live link to Slack for a `LinkHooks` implementation (the
Socket Mode or RTM client), and `Link`, one connection after its ``hello``:

- a link is opened by asking the hooks for a URL (apps.connections.open / rtm.connect), then
  connecting with trio-websocket and waiting for ``hello``, all under `WsPolicy.connect_timeout_s`;
- every message is decoded from JSON and handed to `LinkHooks.on_message`; anything that is not
  a JSON object with a ``type`` is logged and dropped;
- a ping every `ping_interval_s` must be answered within `ping_timeout_s`, else the link is lost;
- when a link is lost, a new one is opened at once, then after backoff delays while that fails;
  when the server asks for a refresh (`Link.request_refresh`), the new link is opened first and
  the old one closed only once the new one said hello; `Link.fail` ends everything with
  `SlackFatalDisconnect`.

`WsLinks.run` follows trio's start protocol: ``started()`` after the first hello.
"""

from __future__ import annotations

import json
import random as _random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog
import trio
import trio_websocket

from transport.slack_backoff import Backoff, RandomSource
from transport.slack_errors import (
    SlackApiError,
    SlackConnectionError,
    SlackError,
    SlackFatalDisconnect,
)

if TYPE_CHECKING:
    from transport.slack_web import SlackWebClient

__all__ = [
    "FATAL_AUTH_ERRORS",
    "Link",
    "LinkHooks",
    "WsLinks",
    "WsPolicy",
    "WsStatistics",
    "open_link_url",
]

_log = structlog.get_logger("transport.slack_ws")

_WS_ERRORS = (
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)


FATAL_AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "not_allowed_token_type",
        "missing_scope",
        "no_permission",
        "team_access_not_granted",
    }
)
"""Web API errors no reconnect can fix: the token or the app's configuration must change."""


async def open_link_url(web: SlackWebClient, method: str, **params: Any) -> dict[str, Any]:
    """Call apps.connections.open / rtm.connect; the answer, whose ``url`` is a ws(s) URL.

    Raises `SlackFatalDisconnect` for token problems, `SlackConnectionError` for anything else.
    """
    try:
        answer = await web.call(method, **params)
    except SlackApiError as e:
        if e.error_code in FATAL_AUTH_ERRORS:
            raise SlackFatalDisconnect(e.error_code) from None
        raise SlackConnectionError(f"{method}: {e.error_code}") from None
    except SlackError as e:
        raise SlackConnectionError(f"{method}: {e}") from None
    url = answer.get("url")
    if not isinstance(url, str) or not url.startswith(("wss://", "ws://")):
        raise SlackConnectionError(f"{method} answered no WebSocket URL")
    return answer


@dataclass(frozen=True, slots=True)
class WsPolicy:
    """Deadlines and backoff of the links; the defaults suit Slack."""

    connect_timeout_s: float = 10.0
    ping_interval_s: float = 10.0
    ping_timeout_s: float = 5.0
    close_timeout_s: float = 5.0
    backoff: Backoff = field(default_factory=lambda: Backoff(1.0, 2.0, 60.0, 0.5))
    max_message_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WsStatistics:
    connected: bool
    links_opened: int
    connect_failures: int
    links_lost: int
    refreshes: int
    messages: int
    bad_messages: int


class LinkHooks(Protocol):
    """What a Slack WebSocket protocol adds to the link life."""

    async def open_url(self) -> str:
        """The wss URL of a new connection; raises `SlackConnectionError` or `SlackFatalDisconnect`."""
        ...

    async def on_hello(self, link: Link, hello: dict[str, Any]) -> None:
        """The link said hello; runs before the link counts as up."""
        ...

    async def on_message(self, link: Link, message: dict[str, Any]) -> None:
        """One decoded message with a string ``type`` (hello excepted)."""
        ...


class Link:
    """One WebSocket connection to Slack, live once it said hello."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.changed = trio.Event()  # lost, refresh requested or fatal
        self.refresh_reason: str | None = None
        self.lost_reason: str | None = None
        self.fatal_reason: str | None = None
        self._scope = trio.CancelScope()
        self._ws: trio_websocket.WebSocketConnection | None = None

    async def send_json(self, message: dict[str, Any]) -> bool:
        """Send one message; False when the link is gone (it is being replaced)."""
        if self._ws is None:
            return False
        try:
            await self._ws.send_message(json.dumps(message, separators=(",", ":")))
        except _WS_ERRORS:
            self.lose("send failed: connection closed")
            return False
        return True

    def request_refresh(self, reason: str) -> None:
        """Slack will close this link soon: open the next one, then close this one."""
        if self.refresh_reason is None:
            self.refresh_reason = reason
            self.changed.set()

    def fail(self, reason: str) -> None:
        """Reconnecting cannot help: stop with `SlackFatalDisconnect(reason)`."""
        self.fatal_reason = reason
        self.changed.set()
        self._scope.cancel()

    def lose(self, reason: str) -> None:
        if self.lost_reason is None:
            self.lost_reason = reason
        self.changed.set()
        self._scope.cancel()

    def close(self) -> None:
        """Close this link (gracefully, within the close timeout); idempotent."""
        self._scope.cancel()


class WsLinks:
    """Keeps one live Slack WebSocket link for `hooks`, replacing it as needed."""

    def __init__(
        self,
        hooks: LinkHooks,
        *,
        name: str,
        policy: WsPolicy | None = None,
        random: RandomSource = _random.random,
    ) -> None:
        self._hooks = hooks
        self._policy = policy if policy is not None else WsPolicy()
        self._random = random
        self._log = _log.bind(link=name)
        self._count = 0
        self._live = 0
        self._opened = self._failures = self._lost = self._refreshes = 0
        self.messages = self.bad_messages = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold a link until cancelled; raises `SlackFatalDisconnect` when Slack says to stop."""
        fatal: str | None = None
        async with trio.open_nursery() as nursery:
            link = await self._open(nursery)
            task_status.started()
            while True:
                await link.changed.wait()
                if link.fatal_reason is not None:
                    fatal = link.fatal_reason
                    break
                if link.refresh_reason is not None and link.lost_reason is None:
                    self._refreshes += 1
                    self._log.info(
                        "slack_link_refresh", number=link.number, reason=link.refresh_reason
                    )
                else:
                    self._lost += 1
                    self._log.warning(
                        "slack_link_lost", number=link.number, reason=link.lost_reason
                    )
                try:
                    new = await self._open(nursery)
                finally:
                    link.close()
                link = new
            nursery.cancel_scope.cancel()
        raise SlackFatalDisconnect(fatal)

    async def _open(self, nursery: trio.Nursery) -> Link:
        failures = 0
        while True:
            try:
                link: Link = await nursery.start(self._link)
            except SlackFatalDisconnect as e:
                return self._fatal_link(e.reason)
            except SlackConnectionError as e:
                self._failures += 1
                delay = self._policy.backoff.delay(failures, self._random)
                failures += 1
                self._log.warning(
                    "slack_link_connect_failed", error=str(e), retry_in=round(delay, 3)
                )
                await trio.sleep(delay)
                continue
            return link

    def _fatal_link(self, reason: str) -> Link:
        link = Link(-1)
        link.fail(reason)
        return link

    async def _link(self, *, task_status: trio.TaskStatus[Link]) -> None:
        policy = self._policy
        url = await self._hooks.open_url()
        self._count += 1
        link = Link(self._count)
        started = False
        try:
            async with trio_websocket.open_websocket_url(
                url,
                connect_timeout=policy.connect_timeout_s,
                disconnect_timeout=policy.close_timeout_s,
                max_message_size=policy.max_message_bytes,
            ) as ws:
                with trio.move_on_after(policy.connect_timeout_s) as deadline:
                    hello = await self._wait_hello(ws)
                if deadline.cancelled_caught:
                    raise SlackConnectionError(f"no hello within {policy.connect_timeout_s}s")
                link._ws = ws
                await self._hooks.on_hello(link, hello)
                self._live += 1
                self._opened += 1
                started = True
                self._log.info("slack_link_up", number=link.number)
                task_status.started(link)
                try:
                    with link._scope:
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(self._ping, link, ws)
                            await self._read(link, ws)
                            nursery.cancel_scope.cancel()
                finally:
                    self._live -= 1
                    link._ws = None
        except (
            *_WS_ERRORS,
            trio_websocket.ConnectionTimeout,
            trio_websocket.DisconnectionTimeout,
            ValueError,  # a malformed URL from Slack
        ) as e:
            if not started:
                raise SlackConnectionError(f"cannot open {_safe(url)}: {_describe(e)}") from None
            if isinstance(e, ValueError):
                raise
            link.lose(_describe(e))
        finally:
            if started:
                link.lose("closed")

    async def _wait_hello(self, ws: trio_websocket.WebSocketConnection) -> dict[str, Any]:
        while True:
            message = self._decode(await ws.get_message())
            if message is None:
                continue
            if message["type"] == "hello":
                return message
            if message["type"] == "disconnect" and message.get("reason") == "link_disabled":
                raise SlackFatalDisconnect("link_disabled")
            self._log.info("slack_link_message_before_hello", type=message["type"])

    async def _read(self, link: Link, ws: trio_websocket.WebSocketConnection) -> None:
        while True:
            try:
                raw = await ws.get_message()
            except trio_websocket.ConnectionClosed as e:
                code = e.reason.code if e.reason is not None else "no code"
                link.lose(f"closed by server ({code})")
                return
            message = self._decode(raw)
            if message is not None:
                self.messages += 1
                await self._hooks.on_message(link, message)

    async def _ping(self, link: Link, ws: trio_websocket.WebSocketConnection) -> None:
        policy = self._policy
        while True:
            await trio.sleep(policy.ping_interval_s)
            with trio.move_on_after(policy.ping_timeout_s) as deadline:
                try:
                    await ws.ping()
                except trio_websocket.ConnectionClosed:
                    return  # the reader sees it too
            if deadline.cancelled_caught:
                link.lose(f"no pong within {policy.ping_timeout_s}s")
                return

    def _decode(self, raw: str | bytes) -> dict[str, Any] | None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self.bad_messages += 1
            self._log.warning("slack_link_bad_message", sample=str(raw)[:200])
            return None
        return message

    def statistics(self) -> WsStatistics:
        return WsStatistics(
            connected=self._live > 0,
            links_opened=self._opened,
            connect_failures=self._failures,
            links_lost=self._lost,
            refreshes=self._refreshes,
            messages=self.messages,
            bad_messages=self.bad_messages,
        )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".rstrip(": ")


def _safe(url: str) -> str:
    """The URL without its query: Slack's ticket is a credential."""
    return url.split("?", 1)[0]
