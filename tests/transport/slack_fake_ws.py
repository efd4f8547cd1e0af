"""An in-test Slack WebSocket peer (Socket Mode or RTM) on trio-websocket, 127.0.0.1 port 0.

Each accepted connection becomes a `Peer` the test drives: it says hello (unless told not to),
records every message the client sends with the virtual time it arrived, and can send, go mute
(stop reading, so pings go unanswered once the client sent two messages) or close.
`FakeSlackSockets.web` answers apps.connections.open / rtm.connect with the peer's URL through
`httpx.MockTransport`, or with scripted errors.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
import trio
import trio_websocket


@dataclass
class Peer:
    number: int
    ws: trio_websocket.WebSocketConnection
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    got_message: trio.Event = field(default_factory=trio.Event)
    closed: trio.Event = field(default_factory=trio.Event)
    mute: bool = False

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(message))

    async def send_raw(self, text: str) -> None:
        await self.ws.send_message(text)

    async def envelope(self, envelope_id: str, payload: dict[str, Any], **extra: Any) -> None:
        kind = extra.pop("kind", "events_api")
        await self.send({"envelope_id": envelope_id, "type": kind, "payload": payload, **extra})

    def acks(self) -> list[str]:
        return [m["envelope_id"] for _, m in self.received if "envelope_id" in m]

    async def wait_for(self, count: int) -> None:
        """Wait until the client sent at least `count` messages on this connection."""
        while len(self.received) < count:
            await self.got_message.wait()

    async def close(self, code: int = 1000) -> None:
        await self.ws.aclose(code)


@dataclass
class FakeSlackSockets:
    port: int = 0
    hello: bool = True
    hello_delay: float = 0.0
    hello_extra: dict[str, Any] = field(default_factory=dict)
    peers: list[Peer] = field(default_factory=list)
    log: list[tuple[float, str]] = field(default_factory=list)
    url_requests: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    url_errors: deque[str] = field(default_factory=deque)
    url_script: deque[str] = field(default_factory=deque)  # URLs answered first, in order
    first_connection: trio.Event = field(default_factory=trio.Event)
    _new_peer: trio.Event = field(default_factory=trio.Event)

    async def handle(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        peer = Peer(len(self.peers) + 1, ws)
        self.peers.append(peer)
        self.first_connection.set()
        self.log.append((trio.current_time(), f"open {peer.number}"))
        try:
            if self.hello:
                await trio.sleep(self.hello_delay)
                await peer.send({"type": "hello", **self.hello_extra})
                self.log.append((trio.current_time(), f"hello {peer.number}"))
            self._announce()
            while True:
                if peer.mute:
                    await trio.sleep_forever()
                message = json.loads(await ws.get_message())
                peer.received.append((trio.current_time(), message))
                peer.got_message.set()
                peer.got_message = trio.Event()
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            self.log.append((trio.current_time(), f"closed {peer.number}"))
            peer.closed.set()
            self._announce()

    def _announce(self) -> None:
        self._new_peer.set()
        self._new_peer = trio.Event()

    async def next_peer(self, number: int) -> Peer:
        """The `number`-th connection (1-based), once it said hello."""
        while len(self.peers) < number or (self.hello and not self._said_hello(number)):
            if len(self.peers) >= number and self.peers[number - 1].closed.is_set():
                raise AssertionError(f"connection {number} closed before its hello")
            await self._new_peer.wait()
        return self.peers[number - 1]

    def _said_hello(self, number: int) -> bool:
        return any(entry == f"hello {number}" for _, entry in self.log)

    def times(self, entry: str) -> list[float]:
        return [at for at, what in self.log if what == entry]

    @property
    def web(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            method = request.url.path.rsplit("/", 1)[-1]
            params = dict(httpx.QueryParams(request.content.decode()))
            self.url_requests.append((trio.current_time(), method, params))
            if self.url_errors:
                return httpx.Response(200, json={"ok": False, "error": self.url_errors.popleft()})
            url = f"ws://127.0.0.1:{self.port}/link/?ticket={len(self.url_requests)}"
            if self.url_script:
                url = self.url_script.popleft()
            answer: dict[str, Any] = {"ok": True, "url": url}
            if method == "rtm.connect":
                answer |= {"self": {"id": "UBOT", "name": "takeover"}, "team": {"id": "T1"}}
            return httpx.Response(200, json=answer)

        return httpx.MockTransport(handler)


@asynccontextmanager
async def fake_slack_sockets(**options: Any) -> AsyncIterator[FakeSlackSockets]:
    fake = FakeSlackSockets(**options)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(trio_websocket.serve_websocket, fake.handle, "127.0.0.1", 0, ssl_context=None)
        )
        fake.port = server.port
        yield fake
        nursery.cancel_scope.cancel()
