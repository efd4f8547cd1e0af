"""Slack Socket Mode: envelopes in over a WebSocket, each acked first, de-duplicated, then handed on.

Owns `SocketModeClient` and `InboundEnvelope`. The client asks ``apps.connections.open`` (with
the app-level token, through a `SlackWebClient`) for a URL, keeps one link up with `WsLinks`
(hello, pings, reconnect with backoff; on ``disconnect`` ``warning`` / ``refresh_requested`` the
next link is opened before the old one closes; ``link_disabled`` is fatal) and, for every
envelope:

1. acks ``{"envelope_id": ...}`` at once (shielded, so a closing link cannot swallow it), well
   inside Slack's 3 s, before any work;
2. drops it when its envelope id or its event id (``payload.event_id``) was seen recently
   (bounded LRU memory): redeliveries and retries are handled once;
3. hands `InboundEnvelope(kind, payload, envelope_id, retry_attempt, ...)` to the injected async
   handler, one at a time in arrival order, from a single dispatcher task.

Payloads are not interpreted beyond routing: decoding them into domain messages is the
SlackActor's job. A handler that raises is logged and the next envelope goes on. At most
`max_pending` envelopes wait for the handler; past that, reading pauses before the ack (Slack
then redelivers, and nothing acked is ever dropped).
"""

from __future__ import annotations

import math
import random as _random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog
import trio

from transport.slack_backoff import RandomSource
from transport.slack_errors import (
    SlackFatalDisconnect,
)
from transport.slack_web import SlackWebClient
from transport.slack_ws import (
    FATAL_AUTH_ERRORS,
    Link,
    WsLinks,
    WsPolicy,
    WsStatistics,
    open_link_url,
)

__all__ = [
    "FATAL_AUTH_ERRORS",
    "EnvelopeKind",
    "InboundEnvelope",
    "SocketModeClient",
    "SocketModeStatistics",
]

_log = structlog.get_logger("transport.slack_socket")

EnvelopeKind = Literal["events_api", "interactive", "slash_commands"]
_KINDS: frozenset[str] = frozenset({"events_api", "interactive", "slash_commands"})
_REFRESH_REASONS = frozenset({"warning", "refresh_requested"})
ACK_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class InboundEnvelope:
    """One Socket Mode envelope, already acked; `payload` is Slack's, undecoded."""

    kind: EnvelopeKind
    payload: dict[str, Any]
    envelope_id: str
    retry_attempt: int = 0
    retry_reason: str = ""
    accepts_response_payload: bool = False


@dataclass(frozen=True, slots=True)
class SocketModeStatistics:
    envelopes: int
    acked: int
    duplicates: int
    delivered: int
    handler_errors: int
    pending: int
    links: WsStatistics


Handler = Callable[[InboundEnvelope], Awaitable[None]]


class _Recent:
    """A bounded set remembering the most recent ids."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        self._ids.move_to_end(key)
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


class SocketModeClient:
    """Receives Slack's events, interactions and slash commands over Socket Mode."""

    def __init__(
        self,
        app_web: SlackWebClient,
        handler: Handler,
        *,
        policy: WsPolicy | None = None,
        random: RandomSource = _random.random,
        dedupe_size: int = 10_000,
        max_pending: int = 1_000,
    ) -> None:
        """`app_web` must carry the app-level token (``xapp-``): `web.with_token(app_token)`."""
        self._web = app_web
        self._handler = handler
        self._links = WsLinks(self, name="socket_mode", policy=policy, random=random)
        self._envelopes = _Recent(dedupe_size)
        self._events = _Recent(dedupe_size)
        self._capacity = trio.Semaphore(max_pending)
        self._send, self._receive = trio.open_memory_channel[InboundEnvelope](math.inf)
        self._received = self._acked = self._duplicates = self._delivered = self._errors = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled; ``started()`` after the first hello.

        Raises `SlackFatalDisconnect` (after handing on what was already acked) when Slack
        disables the link or refuses the token.
        """
        fatal: SlackFatalDisconnect | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._dispatch)
            try:
                await self._links.run(task_status=task_status)
            except SlackFatalDisconnect as e:
                fatal = e
                _log.error("socket_mode_fatal", reason=e.reason)
            await self._send.aclose()  # the dispatcher drains what was acked, then ends
        if fatal is not None:
            raise fatal

    async def _dispatch(self) -> None:
        async with self._receive:
            async for envelope in self._receive:
                try:
                    await self._handler(envelope)
                    self._delivered += 1
                except Exception:
                    self._errors += 1
                    _log.exception(
                        "socket_mode_handler_failed",
                        kind=envelope.kind,
                        envelope_id=envelope.envelope_id,
                    )
                finally:
                    self._capacity.release()

    # LinkHooks

    async def open_url(self) -> str:
        answer = await open_link_url(self._web, "apps.connections.open")
        return str(answer["url"])

    async def on_hello(self, link: Link, hello: dict[str, Any]) -> None:
        _log.info("socket_mode_hello", number=link.number, connections=hello.get("num_connections"))

    async def on_message(self, link: Link, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "disconnect":
            reason = message.get("reason")
            reason = reason if isinstance(reason, str) else "unknown"
            if reason == "link_disabled":
                link.fail(reason)
            else:  # warning, refresh_requested, or anything new: move to a fresh link
                link.request_refresh(reason)
            return
        envelope_id = message.get("envelope_id")
        if not isinstance(envelope_id, str) or not envelope_id:
            _log.info("socket_mode_ignored", type=kind)
            return
        self._received += 1
        envelope = self._envelope(kind, envelope_id, message)
        if envelope is None or self._seen(envelope):
            await self._ack(link, envelope_id)
            return
        await self._capacity.acquire()  # backpressure before the ack: Slack redelivers
        with trio.CancelScope(shield=True):
            await self._ack(link, envelope_id)
            if self._seen(envelope):  # the same envelope raced in on a second link
                self._capacity.release()
                return
            self._remember(envelope)
            try:
                self._send.send_nowait(envelope)
            except trio.BrokenResourceError:  # shutting down: the dispatcher has already ended
                self._capacity.release()

    async def _ack(self, link: Link, envelope_id: str) -> None:
        with trio.move_on_after(ACK_TIMEOUT_S):
            if await link.send_json({"envelope_id": envelope_id}):
                self._acked += 1

    def _envelope(
        self, kind: str, envelope_id: str, message: dict[str, Any]
    ) -> InboundEnvelope | None:
        payload = message.get("payload")
        if kind not in _KINDS or not isinstance(payload, dict):
            _log.warning("socket_mode_unusable_envelope", type=kind, envelope_id=envelope_id)
            return None
        attempt = message.get("retry_attempt")
        reason = message.get("retry_reason")
        return InboundEnvelope(
            kind=kind,  # type: ignore[arg-type]  # checked against _KINDS above
            payload=payload,
            envelope_id=envelope_id,
            retry_attempt=attempt if isinstance(attempt, int) else 0,
            retry_reason=reason if isinstance(reason, str) else "",
            accepts_response_payload=message.get("accepts_response_payload") is True,
        )

    def _seen(self, envelope: InboundEnvelope) -> bool:
        event_id = envelope.payload.get("event_id")
        duplicate = envelope.envelope_id in self._envelopes or (
            isinstance(event_id, str) and event_id in self._events
        )
        if duplicate:
            self._duplicates += 1
            _log.info(
                "socket_mode_duplicate",
                envelope_id=envelope.envelope_id,
                retry_attempt=envelope.retry_attempt,
            )
        return duplicate

    def _remember(self, envelope: InboundEnvelope) -> None:
        self._envelopes.add(envelope.envelope_id)
        event_id = envelope.payload.get("event_id")
        if isinstance(event_id, str):
            self._events.add(event_id)

    def statistics(self) -> SocketModeStatistics:
        return SocketModeStatistics(
            envelopes=self._received,
            acked=self._acked,
            duplicates=self._duplicates,
            delivered=self._delivered,
            handler_errors=self._errors,
            pending=self._receive.statistics().current_buffer_used,
            links=self._links.statistics(),
        )
