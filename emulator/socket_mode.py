"""Socket Mode: the app's WebSocket connections, envelopes, acks and redelivery.

Owns the single-use tickets of `apps.connections.open` URLs, the `hello` and `disconnect`
messages, and the life of each envelope: queued until some connection can take it, handed to one
connection (round robin; one app may hold several), acknowledged by `envelope_id`, or redelivered
`ack_timeout_s` after it was written, with `retry_attempt` + 1 and `retry_reason` "timeout", at
most `max_retries` times. A connection told `refresh_requested` takes no new envelopes and is
closed once a replacement connects (or after a 10-second grace). Envelopes written to a connection that closes before acking are
redelivered the same way, so a reconnecting app loses nothing.

Accepts: `publish()` from the event router, `serve()` per accepted WebSocket, `disconnect()` and
`drop()` from the fault knobs; `run()` is the redelivery timer, started in the emulator's nursery.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
import trio

from emulator.wsio import SocketClosed, TextSocket

__all__ = ["Envelope", "SocketModeHub", "SocketModeStats"]

log = structlog.get_logger("emulator.socket_mode")

MAX_PENDING = 100_000
REFRESH_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class Envelope:
    id: str
    type: str  # events_api | interactive | slash_commands
    payload: dict[str, Any]
    accepts_response_payload: bool
    retry_attempt: int = 0
    retry_reason: str = ""

    def encode(self) -> str:
        return json.dumps(
            {
                "envelope_id": self.id,
                "payload": self.payload,
                "type": self.type,
                "accepts_response_payload": self.accepts_response_payload,
                "retry_attempt": self.retry_attempt,
                "retry_reason": self.retry_reason,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True, slots=True)
class SocketModeStats:
    connections: int
    pending: int
    in_flight: int
    published: int
    delivered: int
    acked: int
    redelivered: int
    dropped: int


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


@dataclass(eq=False, slots=True)
class _Connection:
    id: int
    outbox: trio.MemorySendChannel[Envelope | str | _Close]
    accepting: bool = True
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)
    close_code: tuple[int, str] = (1000, "")


@dataclass(slots=True)
class _InFlight:
    envelope: Envelope
    connection: int
    written: bool = False


AckHandler = Callable[[Envelope, dict[str, Any]], None]


class SocketModeHub:
    def __init__(self, *, app_id: str, ack_timeout_s: float = 3.0, max_retries: int = 3) -> None:
        self.app_id = app_id
        self.ack_timeout_s = ack_timeout_s
        self.max_retries = max_retries
        self.on_ack_payload: AckHandler | None = None
        self._tickets: set[str] = set()
        self._envelope_ids = random.Random(
            secrets.randbits(64)
        )  # ids, not secrets: cheap per envelope
        self._ids = itertools.count(1)
        self._connections: dict[int, _Connection] = {}
        self._rotation: deque[int] = deque()
        self._pending: deque[Envelope] = deque()
        self._in_flight: dict[str, _InFlight] = {}
        # (ack deadline, envelope id, attempt) in write order: with one `ack_timeout_s`, deadlines
        # only grow, so a FIFO is a priority queue; entries of acked envelopes are skipped lazily.
        self._timers: deque[tuple[float, str, int]] = deque()
        self._wake = trio.Event()
        self._published = self._delivered = self._acked = self._redelivered = self._dropped = 0

    # tickets --------------------------------------------------------------------------------

    def socket_mode_url(self, base_url: str) -> str:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        ws_base = "ws" + base_url.removeprefix("http")
        return f"{ws_base}/link/?ticket={ticket}&app_id={self.app_id}"

    def take_ticket(self, ticket: str | None) -> bool:
        if ticket in self._tickets:
            self._tickets.discard(ticket)
            return True
        return False

    # publishing -----------------------------------------------------------------------------

    def publish(
        self, type_: str, payload: dict[str, Any], *, accepts_response_payload: bool = False
    ) -> Envelope:
        envelope = Envelope(
            f"{self._envelope_ids.getrandbits(128):032x}", type_, payload, accepts_response_payload
        )
        self._published += 1
        self._enqueue(envelope)
        return envelope

    def _enqueue(self, envelope: Envelope) -> None:
        if len(self._pending) >= MAX_PENDING:
            dropped = self._pending.popleft()
            self._dropped += 1
            log.warning("envelope_dropped", envelope_id=dropped.id, reason="queue_full")
        self._pending.append(envelope)
        self._pump()

    def _next_connection(self) -> _Connection | None:
        for _ in range(len(self._rotation)):
            conn = self._connections[self._rotation[0]]
            self._rotation.rotate(-1)
            if conn.accepting:
                return conn
        return None

    def _pump(self) -> None:
        while self._pending:
            conn = self._next_connection()
            if conn is None:
                return
            envelope = self._pending.popleft()
            self._in_flight[envelope.id] = _InFlight(envelope, conn.id)
            conn.outbox.send_nowait(envelope)

    def _written(self, conn: _Connection, envelope: Envelope) -> None:
        entry = self._in_flight.get(envelope.id)
        if entry is None or entry.envelope is not envelope:
            return
        entry.written = True
        self._delivered += 1
        deadline = trio.current_time() + self.ack_timeout_s
        if not self._timers:
            self._wake.set()
        self._timers.append((deadline, envelope.id, envelope.retry_attempt))

    def ack(self, envelope_id: str, payload: dict[str, Any] | None) -> None:
        entry = self._in_flight.pop(envelope_id, None)
        if entry is None:
            return  # late or unknown ack: Slack ignores it too
        self._acked += 1
        if payload and self.on_ack_payload is not None:
            self.on_ack_payload(entry.envelope, payload)

    # redelivery -----------------------------------------------------------------------------

    def _waiting(self, envelope_id: str, attempt: int) -> _InFlight | None:
        """The in-flight entry a timer is for, unless it was acked (or redelivered) since."""
        entry = self._in_flight.get(envelope_id)
        if entry is None or entry.envelope.retry_attempt != attempt:
            return None
        return entry

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        timers = self._timers
        while True:
            now = trio.current_time()
            while timers and timers[0][0] <= now:
                _, envelope_id, attempt = timers.popleft()
                entry = self._waiting(envelope_id, attempt)
                if entry is not None:
                    del self._in_flight[envelope_id]
                    self._retry(entry.envelope)
            # Sleep until the first envelope still waiting for its ack, not until one acked
            # long ago: at a steady rate of quickly acked envelopes this wakes once per
            # `ack_timeout_s`, not once per envelope.
            while timers and self._waiting(timers[0][1], timers[0][2]) is None:
                timers.popleft()
            self._wake = trio.Event()
            deadline = self._timers[0][0] if self._timers else math.inf
            with trio.move_on_at(deadline):
                await self._wake.wait()

    def _retry(self, envelope: Envelope) -> None:
        if envelope.retry_attempt >= self.max_retries:
            self._dropped += 1
            log.warning(
                "envelope_dropped",
                envelope_id=envelope.id,
                reason="unacked",
                attempts=envelope.retry_attempt + 1,
            )
            return
        self._redelivered += 1
        self._enqueue(
            replace(envelope, retry_attempt=envelope.retry_attempt + 1, retry_reason="timeout")
        )

    # connections ----------------------------------------------------------------------------

    def _hello(self) -> str:
        return json.dumps(
            {
                "type": "hello",
                "num_connections": len(self._connections),
                "debug_info": {
                    "host": "applink-emulator",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )

    async def serve(self, socket: TextSocket) -> None:
        """Run one accepted connection until either side closes it."""
        send, receive = trio.open_memory_channel[Envelope | str | _Close](math.inf)
        conn = _Connection(next(self._ids), send)
        self._connections[conn.id] = conn
        self._rotation.append(conn.id)
        log.info("socket_mode_connected", connection=conn.id, connections=len(self._connections))
        try:
            with conn.cancel:
                await socket.send_text(self._hello())
                self._retire_refreshed()
                self._pump()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, conn, socket, receive, nursery.cancel_scope)
                    with contextlib.suppress(SocketClosed):
                        await self._reader(socket)
                    nursery.cancel_scope.cancel()
        except SocketClosed:
            pass
        finally:
            self._forget(conn)
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await socket.close(*conn.close_code)

    def _retire_refreshed(self) -> None:
        """A replacement connection is up: close the ones told `refresh_requested`."""
        for conn in self._connections.values():
            if conn.close_code == (1000, "refresh_requested"):
                conn.cancel.cancel()

    def _forget(self, conn: _Connection) -> None:
        del self._connections[conn.id]
        self._rotation.remove(conn.id)
        conn.outbox.close()
        # Envelopes queued for this connection but never written go back to the queue at once;
        # written ones wait for their ack deadline like any other unacknowledged envelope.
        unsent = [e for e in self._in_flight.values() if e.connection == conn.id and not e.written]
        for entry in unsent:
            del self._in_flight[entry.envelope.id]
        self._pending.extendleft(reversed([e.envelope for e in unsent]))
        log.info("socket_mode_disconnected", connection=conn.id, requeued=len(unsent))
        self._pump()

    async def _writer(
        self,
        conn: _Connection,
        socket: TextSocket,
        outbox: trio.MemoryReceiveChannel[Envelope | str | _Close],
        scope: trio.CancelScope,
    ) -> None:
        try:
            async for item in outbox:
                if isinstance(item, Envelope):
                    entry = self._in_flight.get(item.id)
                    if entry is None or entry.envelope is not item:
                        continue
                    await socket.send_text(item.encode())
                    self._written(conn, item)
                elif isinstance(item, str):
                    await socket.send_text(item)
                else:
                    conn.close_code = (item.code, item.reason)
                    break
        except SocketClosed:
            pass
        scope.cancel()

    async def _reader(self, socket: TextSocket) -> None:
        while True:
            text = await socket.receive_text()
            try:
                message = json.loads(text)
            except ValueError:
                log.info("socket_mode_bad_message", size=len(text))
                continue
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                payload = message.get("payload")
                self.ack(message["envelope_id"], payload if isinstance(payload, dict) else None)

    # faults ---------------------------------------------------------------------------------

    def disconnect(self, reason: str) -> int:
        """Send `disconnect` with `reason` on every connection; returns how many got it."""
        text = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-emulator"}}
        )
        conns = list(self._connections.values())
        for conn in conns:
            conn.outbox.send_nowait(text)
            if reason == "link_disabled":
                conn.accepting = False
                conn.outbox.send_nowait(_Close(1000, "link_disabled"))
            elif reason == "refresh_requested":
                conn.accepting = False
                conn.close_code = (1000, "refresh_requested")
                conn.cancel.deadline = trio.current_time() + REFRESH_GRACE_S
        return len(conns)

    def drop(self) -> int:
        """Close every connection now, as a network failure would; returns how many."""
        conns = list(self._connections.values())
        for conn in conns:
            conn.accepting = False
            conn.close_code = (1011, "dropped")
            conn.cancel.cancel()
        return len(conns)

    def statistics(self) -> SocketModeStats:
        return SocketModeStats(
            connections=len(self._connections),
            pending=len(self._pending),
            in_flight=len(self._in_flight),
            published=self._published,
            delivered=self._delivered,
            acked=self._acked,
            redelivered=self._redelivered,
            dropped=self._dropped,
        )
