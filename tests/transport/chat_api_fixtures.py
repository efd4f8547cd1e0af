"""Test helpers for the customer API: the real domain behind the app, and an ASGI WebSocket.

`serving()` runs the real `actors.domain.Domain` (with the domain tests' fake Slack and scripted
bot, and an in-memory fact sink that can hold messages back) behind `build_chat_app`, and an
httpx client on `httpx.ASGITransport`. `asgi_websocket()` drives the WebSocket route the same way,
without sockets, so its timing (idle close, shutdown) runs under the autojump MockClock. The real
server over real sockets is exercised separately with trio-websocket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio
import trio.testing
from starlette.types import ASGIApp, Message

from actors.domain import Domain
from actors.facts import CustomerMessaged, Fact, MemoryFactSink
from actors.ports import PresenceChanged
from actors.settings import BotSettings, HttpSettings, RoutingSettings
from tests.actors.harness import FakeSlack, ScriptedBot, wall_clock
from transport.chat_api import build_chat_app
from transport.chat_session import WidgetConfig


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class AsgiWebSocket:
    """The client side of one ASGI WebSocket connection."""

    def __init__(self) -> None:
        self._to_app, self._app_inbox = trio.open_memory_channel[Message](100)
        self._from_app, self._client_inbox = trio.open_memory_channel[Message](100)
        self.closed: Closed | None = None

    async def receive_event(self) -> dict[str, Any]:
        """The next pushed event; raises `Closed` when the server closed the socket."""
        message = await self._client_inbox.receive()
        if message["type"] == "websocket.close":
            self.closed = Closed(message.get("code", 1000), message.get("reason") or "")
            raise self.closed
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def send_text(self, text: str) -> None:
        await self._to_app.send({"type": "websocket.receive", "text": text})

    async def disconnect(self) -> None:
        await self._to_app.send({"type": "websocket.disconnect", "code": 1001})


@asynccontextmanager
async def asgi_websocket(
    app: ASGIApp, url: str, *, denial_extension: bool = True
) -> AsyncIterator[AsgiWebSocket]:
    """Connect to `url` (path and query) on `app`; raises `Refused` when the handshake is denied."""
    parts = urlsplit(url)
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if denial_extension else {},
    }
    ws = AsgiWebSocket()
    await ws._to_app.send({"type": "websocket.connect"})

    refused: Exception | None = None
    async with trio.open_nursery() as nursery:

        async def run_app() -> None:
            await app(scope, ws._app_inbox.receive, ws._from_app.send)

        nursery.start_soon(run_app)
        first = await ws._client_inbox.receive()
        if first["type"] == "websocket.http.response.start":
            body = b""
            while True:
                part = await ws._client_inbox.receive()
                body += part.get("body", b"")
                if not part.get("more_body", False):
                    break
            refused = Refused(first["status"], json.loads(body))
        elif first["type"] == "websocket.close":
            refused = Closed(first.get("code", 1000), first.get("reason") or "")
        else:
            assert first["type"] == "websocket.accept", first
            try:
                yield ws
            finally:
                await ws.disconnect()  # a real client answers the server's close frame too
    if refused is not None:
        raise refused


# --- a real domain behind the API ------------------------------------------------------------


class GatedSink(MemoryFactSink):
    """A fact sink that holds customer messages until `release()`: durability made visible."""

    __slots__ = ("_gate", "held")

    def __init__(self) -> None:
        super().__init__()
        self._gate: trio.Event | None = None
        self.held = 0

    def close_gate(self) -> None:
        self._gate = trio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    async def record(self, fact: Fact) -> None:
        if isinstance(fact, CustomerMessaged) and self._gate is not None:
            self.held += 1
            await self._gate.wait()
        await super().record(fact)


HTTP = HttpSettings(
    host="127.0.0.1", port=0, max_body_bytes=1024, max_text_chars=200, messages_per_minute=5
)
AGENTS = ("U01", "U02")


@dataclass
class Chat:
    """A running domain (fake Slack, in-memory facts) behind the customer API app."""

    domain: Domain
    slack: FakeSlack
    sink: GatedSink
    app: ASGIApp
    client: httpx.AsyncClient
    draining: trio.Event
    components: dict[str, bool]

    @staticmethod
    def auth(session: Mapping[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {session['token']}"}

    async def open(self, **body: object) -> dict[str, str]:
        response = await self.client.post("/api/sessions", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def say(self, session: Mapping[str, str], text: str) -> httpx.Response:
        return await self.client.post(
            f"/api/sessions/{session['session_id']}/messages",
            json={"text": text},
            headers=self.auth(session),
        )

    async def events(
        self, session: Mapping[str, str], after: int = 0, wait: float | None = None
    ) -> list[dict[str, Any]]:
        query = f"?after={after}" + (f"&wait={wait}" if wait is not None else "")
        response = await self.client.get(
            f"/api/sessions/{session['session_id']}/events{query}", headers=self.auth(session)
        )
        assert response.status_code == 200, response.text
        return response.json()["events"]

    async def settle(self) -> None:
        await trio.testing.wait_all_tasks_blocked()


@asynccontextmanager
async def serving(
    http: HttpSettings = HTTP,
    *,
    agents: tuple[str, ...] = AGENTS,
    present: tuple[str, ...] | None = None,
    greeting: str = "",
    offer_timeout_s: float = 30.0,
    max_tries: int = 2,
) -> AsyncIterator[Chat]:
    """The real `Domain` (scripted bot: "human" hands off) behind `build_chat_app`."""
    routing = RoutingSettings(agents=agents, offer_timeout_s=offer_timeout_s, max_tries=max_tries)
    slack, sink = FakeSlack(), GatedSink()
    domain = Domain(
        routing=routing,
        bot_settings=BotSettings(),
        bot=ScriptedBot(),
        slack=slack.send,
        sink=sink,
        agents=agents,
        wall_clock=wall_clock,
        greeting=greeting,
    )
    draining = trio.Event()
    components: dict[str, bool] = {}
    app = build_chat_app(
        domain,
        http,
        widget=WidgetConfig(offer_timeout_s=offer_timeout_s, max_tries=max_tries),
        health=lambda: components,
        draining=draining,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        for agent_id in agents if present is None else present:
            await domain.deliver(PresenceChanged(agent_id, True))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chat.test") as client:
            yield Chat(domain, slack, sink, app, client, draining, components)
        nursery.cancel_scope.cancel()


class CuttableProxy:
    """A TCP proxy in front of a server; `cut()` drops every connection like a lost network."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._scopes: list[trio.CancelScope] = []
        self.port = 0

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._handle, listeners)

    def cut(self) -> None:
        for scope in self._scopes:
            scope.cancel()
        self._scopes.clear()

    async def _handle(self, client: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            self._scopes.append(scope)
            upstream = await trio.open_tcp_stream("127.0.0.1", self._target_port)
            async with client, upstream, trio.open_nursery() as nursery:
                nursery.start_soon(_pipe, client, upstream, nursery.cancel_scope)
                nursery.start_soon(_pipe, upstream, client, nursery.cancel_scope)
        # Leaving the `async with` closes both sockets without any WebSocket closing handshake.


async def _pipe(source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope) -> None:
    try:
        async for chunk in source:
            await sink.send_all(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.cancel()
