"""The customer HTTP API and the widget's routes, as one Starlette (ASGI) app run under trio.

Owns: the routes of the customer API contract (sessions, messages, long-poll events, close, stats,
config, health), bearer-token checks, limits (body size, text length, message rate per session)
and turning every refusal into `{"error": code, "detail": text}`. The WebSocket route lives in
`chat_ws`, the server that runs this app in `chat_server`, the wire format in `chat_wire`.

`build_chat_app(domain, http, widget=...)` returns the app; `ChatServer` serves it on a port.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.settings import HttpSettings, Settings
from transport.chat_errors import ApiError, Malformed, error_body
from transport.chat_front import DURABLE_DEADLINE_S, ChatFront, accept_message
from transport.chat_leads import lead_routes
from transport.chat_limits import SessionRateLimiter, read_body
from transport.chat_port import ChatDomain
from transport.chat_session import ChatSessions, WidgetConfig
from transport.chat_wire import (
    decode_open_session,
    earlier_lines,
    encode_event,
    encode_stats,
    parse_after,
    parse_json_object,
    parse_wait,
)
from transport.chat_ws import websocket_events, websocket_not_found

__all__ = [
    "DURABLE_DEADLINE_S",
    "STATIC_DIR",
    "ChatFront",
    "WidgetConfig",
    "build_chat_app",
    "widget_config",
]

STATIC_DIR = Path(__file__).with_name("static")
MAX_EVENTS_PER_RESPONSE = 1000

_log = structlog.get_logger("chat_api")

_NO_STORE = {"Cache-Control": "no-store"}
_WIDGET_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' https: http: data:; connect-src 'self' ws: wss:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={**_NO_STORE, **(headers or {})})


async def _first_of(*waits: Callable[[], Awaitable[object]]) -> None:
    """Return as soon as any of `waits` returns; the others are cancelled."""
    async with trio.open_nursery() as nursery:
        for wait in waits:

            async def run(wait: Callable[[], Awaitable[object]] = wait) -> None:
                await wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)


class _Routes:
    """The handlers, closing over the domain, the limits and the shutdown signal."""

    def __init__(
        self,
        sessions: ChatSessions,
        http: HttpSettings,
        widget: WidgetConfig,
        health: Callable[[], Mapping[str, bool]],
    ) -> None:
        self.sessions = sessions
        self.domain = sessions.domain
        self.http = http
        self.widget = widget
        self.health_probe = health
        self.limiter = SessionRateLimiter(http.messages_per_minute)

    async def _body(self, request: Request, *, empty_ok: bool = False) -> dict[str, Any]:
        try:
            body = await read_body(
                request.headers.get("content-length"), request.stream(), self.http.max_body_bytes
            )
        except ClientDisconnect:
            raise Malformed("client_disconnected", "the client went away") from None
        if empty_ok and not body.strip():
            return {}
        return parse_json_object(body)

    async def open_session(self, request: Request) -> Response:
        self.sessions.refuse_if_draining()
        wanted = decode_open_session(await self._body(request, empty_ok=True))
        with self.sessions.domain_errors():
            opened = await self.domain.open_session(wanted.customer_id, wanted.name, wanted.email)
        return _json(
            {
                "session_id": opened.session_id,
                "customer_id": opened.customer_id,
                "token": opened.token,
            },
            201,
        )

    async def post_message(self, request: Request) -> Response:
        """The Starlette route, for requests `ChatFront` hands over (a `root_path`)."""
        seq = await accept_message(
            self.sessions,
            self.http,
            self.limiter,
            request.path_params["session_id"],
            request.headers.get("authorization"),
            request.headers.get("content-length"),
            request.receive,
        )
        return _json({"seq": seq}, 202)

    async def get_events(self, request: Request) -> Response:
        session_id = self.sessions.authorize(request.path_params["session_id"], request.headers)
        after = parse_after(request.query_params.get("after"))
        wait = parse_wait(request.query_params.get("wait"))
        with self.sessions.domain_errors():
            events = self.domain.events_after(session_id, after)
            if (
                not events
                and wait > 0
                and not self.sessions.draining.is_set()
                and not self.sessions.is_closed(session_id)  # nothing more will come
            ):
                with trio.move_on_after(wait):
                    await _first_of(
                        lambda: self.domain.wait_events(session_id, after),
                        self.sessions.draining.wait,
                        lambda: _wait_disconnect(request.receive),
                    )
                events = self.domain.events_after(session_id, after)
        batch = events[:MAX_EVENTS_PER_RESPONSE]
        return _json({"events": [encode_event(e) for e in batch]})

    async def history(self, request: Request) -> Response:
        session_id = self.sessions.authorize(request.path_params["session_id"], request.headers)
        with self.sessions.domain_errors():
            lines = earlier_lines(
                self.domain.transcript(session_id), self.domain.events_after(session_id, 0)
            )
        return _json({"lines": lines})

    async def close_session(self, request: Request) -> Response:
        session_id = self.sessions.authorize(request.path_params["session_id"], request.headers)
        with self.sessions.domain_errors():
            await self.domain.close_session(session_id)
        self.limiter.forget(session_id)
        _log.info("chat_session_closed_by_customer", session_id=session_id)
        return _json({"session_id": session_id, "closed": True})

    async def stats(self, request: Request) -> Response:
        return _json(encode_stats(self.domain.stats()))

    async def config(self, request: Request) -> Response:
        return _json(self.widget.as_json(self.http))

    async def healthz(self, request: Request) -> Response:
        components = {"chat_api": not self.sessions.draining.is_set(), **self.health_probe()}
        ok = all(components.values())
        return _json(
            {
                "status": "ok" if ok else "unavailable",
                "components": {k: "ok" if v else "down" for k, v in components.items()},
            },
            200 if ok else 503,
        )

    async def widget_page(self, request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=_WIDGET_HEADERS)


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    _log.info(
        "chat_request_refused",
        method=request.method,
        path=request.url.path,
        status=exc.status,
        error=exc.code,
    )
    return _json(error_body(exc.code, exc.detail), exc.status, exc.headers())


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "bad_request")
    return _json(error_body(code, str(exc.detail)), exc.status_code, exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    _log.error("chat_internal_error", path=request.url.path, exc_info=exc)
    return _json(error_body("internal", "the server failed to answer; retry"), 500)


class _SecurityHeaders:
    """Adds `X-Content-Type-Options: nosniff` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_chat_app(
    domain: ChatDomain,
    http: HttpSettings,
    *,
    widget: WidgetConfig | None = None,
    health: Callable[[], Mapping[str, bool]] = dict,
    draining: trio.Event | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    ws_idle_close_s: float = 120.0,
) -> ChatFront:
    """The customer API + widget app: `ChatFront` (the hot routes) in front of Starlette.

    `health` reports extra components for /healthz (name -> up); `draining`, once set, makes long
    polls return, WebSockets close with 1001 and new sessions/messages get 503 (set it at shutdown);
    `extra_routes` lets the composition root add routes such as /metrics; a WebSocket that
    carried no event for `ws_idle_close_s` is closed (1000 "idle") and the client reconnects.
    """
    sessions = ChatSessions(domain, draining if draining is not None else trio.Event())
    routes = _Routes(sessions, http, widget or WidgetConfig(), health)
    websocket = websocket_events(sessions, idle_close_s=ws_idle_close_s)
    app = Starlette(
        routes=[
            Route("/", routes.widget_page, methods=["GET"]),
            Route("/healthz", routes.healthz, methods=["GET"]),
            Route("/api/config", routes.config, methods=["GET"]),
            Route("/api/stats", routes.stats, methods=["GET"]),
            Route("/api/sessions", routes.open_session, methods=["POST"]),
            Route("/api/sessions/{session_id}/messages", routes.post_message, methods=["POST"]),
            Route("/api/sessions/{session_id}/events", routes.get_events, methods=["GET"]),
            Route("/api/sessions/{session_id}/close", routes.close_session, methods=["POST"]),
            Route("/api/sessions/{session_id}/history", routes.history, methods=["GET"]),
            *lead_routes(sessions, http, routes.limiter),
            WebSocketRoute("/api/sessions/{session_id}/ws", websocket),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
            *extra_routes,
            WebSocketRoute("/{path:path}", websocket_not_found),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.add_middleware(_SecurityHeaders)
    return ChatFront(app, sessions, http, routes.limiter, websocket)


def widget_config(settings: Settings) -> WidgetConfig:
    """The widget's view of the settings: the longest a search can take, and the limits."""
    return WidgetConfig(
        offer_timeout_s=settings.routing.offer_timeout_s, max_tries=settings.routing.max_tries
    )
