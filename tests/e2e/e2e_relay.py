"""A flaky network between the app and Slack: a relay that can lose the app's Socket Mode acks.

Owns `SlackRelay`, an HTTP and WebSocket server standing between the daemon and the emulator.
The daemon's `slack.api_url` points at it: Web API calls are forwarded to the emulator as they
are, except that the Socket Mode URL `apps.connections.open` hands out is rewritten to come
through the relay too. Frames are forwarded both ways on the socket; an ack for which
`lose_ack(envelope)` is true never reaches Slack, as if the network had eaten it, so Slack
redelivers that envelope after its ack timeout (`retry_attempt` 1) and the app sees it twice.
Every envelope the app was sent is kept in `envelopes`, in order.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx
import trio
import trio_websocket
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["SlackRelay"]

_FORWARDED = ("authorization", "content-type")


class SlackRelay:
    def __init__(self, http: httpx.AsyncClient, emulator_url: str) -> None:
        self._http, self._emu = http, emulator_url
        self.lose_ack: Callable[[dict[str, Any]], bool] = lambda envelope: False
        self.envelopes: list[dict[str, Any]] = []
        self.lost_acks: list[str] = []
        # by envelope id, across links: an ack may come back on the next link after a reconnect
        self._sent: dict[str, dict[str, Any]] = {}
        self._changed = trio.Event()
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                WebSocketRoute("/link", self._link),
            ]
        )

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = config.errorlog = None
        config.websocket_ping_interval = None
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(partial(serve, self.app, config))  # type: ignore[arg-type]
            self.url = binds[0]
            task_status.started(self.url)

    async def wait_envelopes(self, match: Callable[[dict[str, Any]], bool], count: int) -> None:
        """Until the app has been sent `count` envelopes that `match`."""
        while sum(map(match, self.envelopes)) < count:
            await self._changed.wait()

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        answer = await self._http.request(
            request.method,
            f"{self._emu}/api/{method}",
            params=request.query_params,
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k in _FORWARDED},
        )
        body = answer.content
        if method == "apps.connections.open" and answer.status_code == 200:
            opened = answer.json()
            if opened.get("ok"):
                link = self.url.replace("http://", "ws://") + "/link?to=" + quote(opened["url"])
                body = json.dumps(opened | {"url": link}).encode()
        headers = {k: v for k, v in answer.headers.items() if k in ("retry-after",)}
        return Response(
            body, answer.status_code, headers, media_type=answer.headers.get("content-type")
        )

    async def _link(self, app: WebSocket) -> None:
        await app.accept()
        sent = self._sent
        async with trio_websocket.open_websocket_url(app.query_params["to"]) as slack:

            async def to_app() -> None:
                while True:
                    frame = await slack.get_message()
                    message = json.loads(frame)
                    if isinstance(message, dict) and "envelope_id" in message:
                        sent[message["envelope_id"]] = message
                        self.envelopes.append(message)
                        self._changed.set()
                        self._changed = trio.Event()
                    await app.send_text(str(frame))

            async def to_slack() -> None:
                while True:
                    frame = await app.receive_text()
                    ack = json.loads(frame)
                    envelope = (
                        sent.get(ack.get("envelope_id", "")) if isinstance(ack, dict) else None
                    )
                    if envelope is not None and self.lose_ack(envelope):
                        self.lost_acks.append(envelope["envelope_id"])
                        continue
                    await slack.send_message(frame)

            async with trio.open_nursery() as nursery:

                async def pump(one_way: Callable[[], Any]) -> None:
                    with contextlib.suppress(trio_websocket.ConnectionClosed, WebSocketDisconnect):
                        await one_way()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(pump, to_app)
                nursery.start_soon(pump, to_slack)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await app.close()
