"""RTM: the classic real-time WebSocket, for presence and messages.

Owns the single-use tickets of `rtm.connect` URLs and each RTM connection: `hello` on connect;
client messages `ping` (answered `pong` with `reply_to`), `presence_sub` (replaces the set of users
whose `presence_change` the connection receives), `presence_query` (answers their presence now),
`message` (posts as the connection's user, answered with `reply_to`); and the server events
`message` (for channels the user is a member of) and `presence_change`.

Accepts: `publish_message()` and `publish_presence()` from the event router, `serve()` per accepted WebSocket,
`drop()` from the fault knobs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from emulator import payloads
from emulator.errors import SlackError
from emulator.workspace import Channel, PresenceChanged, User, Workspace
from emulator.wsio import SocketClosed, TextSocket

__all__ = ["RtmHub", "RtmStats"]

log = structlog.get_logger("emulator.rtm")

# post(user, channel, text) -> the posted message's ts; raises SlackError
Poster = Callable[[User, str, str], str]


@dataclass(frozen=True, slots=True)
class RtmStats:
    connections: int
    events_sent: int


@dataclass(eq=False, slots=True)
class _Connection:
    id: int
    user: str
    batch: bool
    outbox: trio.MemorySendChannel[str]
    subscriptions: set[str] = field(default_factory=set)
    cancel: trio.CancelScope = field(default_factory=trio.CancelScope)


class RtmHub:
    def __init__(self, ws: Workspace, post: Poster) -> None:
        self.ws = ws
        self.post = post
        self._tickets: dict[str, tuple[str, bool]] = {}
        self._connections: dict[int, _Connection] = {}
        self._by_user: dict[str, list[_Connection]] = {}  # user id -> their connections
        self._ids = itertools.count(1)
        self._sent = 0

    def rtm_url(self, base_url: str, user_id: str, *, batch_presence_aware: bool) -> str:
        ticket = secrets.token_hex(16)
        self._tickets[ticket] = (user_id, batch_presence_aware)
        return f"ws{base_url.removeprefix('http')}/rtm/?ticket={ticket}"

    def take_ticket(self, ticket: str | None) -> tuple[str, bool] | None:
        return self._tickets.pop(ticket or "", None)

    def publish_presence(self, happening: PresenceChanged) -> None:
        """`presence_change` to the connections subscribed to that user."""
        for conn in self._connections.values():
            if happening.user in conn.subscriptions:
                event = payloads.presence_change(
                    [happening.user], happening.presence, batch=conn.batch
                )
                self._send(conn, event)

    def publish_message(self, channel: Channel, event: dict[str, Any]) -> None:
        """A `message` event to the connections of the channel's members, encoded once."""
        if not self._connections:
            return
        text: str | None = None
        for member in channel.members:
            for conn in self._by_user.get(member, ()):
                if text is None:
                    text = json.dumps(event, separators=(",", ":"))
                self._sent += 1
                conn.outbox.send_nowait(text)

    def _send(self, conn: _Connection, event: dict[str, Any]) -> None:
        self._sent += 1
        conn.outbox.send_nowait(json.dumps(event, separators=(",", ":")))

    async def serve(self, socket: TextSocket, user_id: str, batch: bool) -> None:
        send, receive = trio.open_memory_channel[str](math.inf)
        conn = _Connection(next(self._ids), user_id, batch, send)
        self._connections[conn.id] = conn
        self._by_user.setdefault(user_id, []).append(conn)
        log.info("rtm_connected", connection=conn.id, user=user_id)
        try:
            with conn.cancel:
                await socket.send_text(json.dumps({"type": "hello"}))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, socket, receive, nursery.cancel_scope)
                    with contextlib.suppress(SocketClosed):
                        await self._reader(conn, socket)
                    nursery.cancel_scope.cancel()
        except SocketClosed:
            pass
        finally:
            del self._connections[conn.id]
            same_user = self._by_user[user_id]
            same_user.remove(conn)
            if not same_user:
                del self._by_user[user_id]
            send.close()
            log.info("rtm_disconnected", connection=conn.id, user=user_id)
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await socket.close(1000)

    async def _writer(
        self, socket: TextSocket, outbox: trio.MemoryReceiveChannel[str], scope: trio.CancelScope
    ) -> None:
        with contextlib.suppress(SocketClosed):
            async for text in outbox:
                await socket.send_text(text)
        scope.cancel()

    async def _reader(self, conn: _Connection, socket: TextSocket) -> None:
        while True:
            text = await socket.receive_text()
            try:
                message = json.loads(text)
            except ValueError:
                message = None
            if not isinstance(message, dict):
                self._send(conn, {"type": "error", "error": {"code": 1, "msg": "invalid JSON"}})
                continue
            self._handle(conn, message)

    def _handle(self, conn: _Connection, message: dict[str, Any]) -> None:
        kind, reply_to = message.get("type"), message.get("id")
        ids = message.get("ids")
        if kind == "ping":
            extra = {k: v for k, v in message.items() if k not in ("type", "id")}
            self._send(conn, {**extra, "type": "pong", "reply_to": reply_to})
        elif kind in ("presence_sub", "presence_query") and isinstance(ids, list):
            wanted = [i for i in ids if isinstance(i, str) and i in self.ws.users]
            if kind == "presence_sub":
                conn.subscriptions = set(wanted)
                return
            for presence in ("active", "away"):
                users = [u for u in wanted if self.ws.users[u].presence == presence]
                if users and conn.batch:
                    self._send(conn, payloads.presence_change(users, presence, batch=True))
                for user in [] if conn.batch else users:
                    self._send(conn, payloads.presence_change([user], presence, batch=False))
        elif kind == "message":
            self._post(conn, message, reply_to)
        elif kind == "typing":
            return
        else:
            self._send(
                conn,
                {
                    "type": "error",
                    "reply_to": reply_to,
                    "error": {"code": 3, "msg": "unsupported type"},
                },
            )

    def _post(self, conn: _Connection, message: dict[str, Any], reply_to: Any) -> None:
        channel, text = message.get("channel"), message.get("text")
        if not isinstance(channel, str) or not isinstance(text, str):
            self._send(
                conn,
                {
                    "ok": False,
                    "reply_to": reply_to,
                    "error": {"code": 2, "msg": "message text is missing"},
                },
            )
            return
        try:
            ts = self.post(self.ws.users[conn.user], channel, text)
        except SlackError as e:
            self._send(
                conn, {"ok": False, "reply_to": reply_to, "error": {"code": 2, "msg": e.code}}
            )
            return
        self._send(conn, {"ok": True, "reply_to": reply_to, "ts": ts, "text": text})

    def drop(self) -> int:
        conns = list(self._connections.values())
        for conn in conns:
            conn.cancel.cancel()
        return len(conns)

    def statistics(self) -> RtmStats:
        return RtmStats(len(self._connections), self._sent)
