"""The customer API's ASGI entry: the chatting customer's hot routes straight on ASGI.

Owns `ChatFront`, the ASGI callable the server runs. `POST /api/sessions/{id}/messages` (every
message a customer sends) is answered here without Starlette's middleware stack, routing,
`Request` and `JSONResponse` objects, and `WS /api/sessions/{id}/ws` goes to its endpoint without
the middleware and the router. The answers are the same, header for header: the checks run in
the documented order (session 404, token 401, body size 413, body 400/413, shutting down 503,
rate 429, domain 409), refusals are logged as `chat_request_refused` and answered with the
error body and its headers plus `Cache-Control: no-store` and `X-Content-Type-Options:
nosniff`, and a bug is answered 500 `internal` (logged as `chat_internal_error`) and re-raised
for the server, as Starlette's `ServerErrorMiddleware` does. Everything else (other methods,
other routes, a `root_path`, the lifespan) is the Starlette app's, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import structlog
import trio
from starlette.websockets import WebSocket

from actors.settings import HttpSettings
from transport.chat_errors import ApiError, Unavailable, error_body
from transport.chat_limits import Receive, SessionRateLimiter, read_request_body
from transport.chat_session import ChatSessions, bearer_value
from transport.chat_wire import decode_message_text, parse_json_object

__all__ = ["ChatFront", "accept_message", "json_bytes", "send_json"]

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# How long a message may take to become durable before the client is told to retry (503).
DURABLE_DEADLINE_S = 30.0
_PREFIX = "/api/sessions/"
_NO_STORE = (b"cache-control", b"no-store")
_JSON_TYPE = (b"content-type", b"application/json")
_NOSNIFF = (b"x-content-type-options", b"nosniff")

_log = structlog.get_logger("chat_api")


def json_bytes(data: Any) -> bytes:
    """A JSON body exactly as Starlette's `JSONResponse` renders it."""
    return json.dumps(
        data, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    nosniff: bool = True,
) -> None:
    """What `_json(...)` in chat_api answers through the security-headers middleware."""
    raw = [_NO_STORE]
    if headers:
        raw.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    raw.append((b"content-length", b"%d" % len(body)))
    raw.append(_JSON_TYPE)
    if nosniff:
        raw.append(_NOSNIFF)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _session_route(path: str, tail: str) -> str | None:
    """The session id of `/api/sessions/{id}/<tail>` (`{id}`: one or more non-`/` characters)."""
    if not path.startswith(_PREFIX) or not path.endswith(tail):
        return None
    session_id = path[len(_PREFIX) : len(path) - len(tail)]
    if not session_id or "/" in session_id:
        return None
    return session_id


class ChatFront:
    """`await front(scope, receive, send)`: the hot routes here, everything else to `fallback`."""

    def __init__(
        self,
        fallback: ASGIApp,
        sessions: ChatSessions,
        http: HttpSettings,
        limiter: SessionRateLimiter,
        websocket_endpoint: Callable[[WebSocket], Awaitable[None]],
    ) -> None:
        self.fallback = fallback
        self.sessions = sessions
        self.http = http
        self.limiter = limiter
        self.websocket_endpoint = websocket_endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if not scope.get("root_path"):
            if kind == "http" and scope["method"] == "POST":
                session_id = _session_route(scope["path"], "/messages")
                if session_id is not None:
                    await self._post_message(session_id, scope, receive, send)
                    return
            elif kind == "websocket":
                session_id = _session_route(scope["path"], "/ws")
                if session_id is not None:
                    scope["path_params"] = {"session_id": session_id}
                    await self.websocket_endpoint(WebSocket(scope, receive, send))
                    return
        await self.fallback(scope, receive, send)

    async def _post_message(
        self, session_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = False
        try:
            authorization = length = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    if authorization is None:
                        authorization = value.decode("latin-1")
                elif name == b"content-length" and length is None:
                    length = value
            try:
                seq = await accept_message(
                    self.sessions,
                    self.http,
                    self.limiter,
                    session_id,
                    authorization,
                    length,
                    receive,
                )
            except ApiError as error:
                _log.info(
                    "chat_request_refused",
                    method="POST",
                    path=scope["path"],
                    status=error.status,
                    error=error.code,
                )
                body = json_bytes(error_body(error.code, error.detail))
                started = True
                await send_json(send, error.status, body, error.headers())
                return
            started = True
            await send_json(send, 202, b'{"seq":%d}' % seq)
        except Exception as exc:
            # As Starlette's ServerErrorMiddleware: logged, answered 500, re-raised for the server.
            _log.error("chat_internal_error", path=scope["path"], exc_info=exc)
            if not started:
                body = json_bytes(error_body("internal", "the server failed to answer; retry"))
                await send_json(send, 500, body, nosniff=False)
            raise


async def accept_message(
    sessions: ChatSessions,
    http: HttpSettings,
    limiter: SessionRateLimiter,
    session_id: str,
    authorization: str | None,
    content_length: str | bytes | None,
    receive: Receive,
) -> int:
    """`POST /api/sessions/{id}/messages` up to the domain: the seq of the durable message, or
    the `ApiError` of the first check that fails, in the documented order."""
    session_id = sessions.authorize_token(session_id, bearer_value(authorization))
    body = await read_request_body(content_length, receive, http.max_body_bytes)
    text = decode_message_text(parse_json_object(body), http.max_text_chars)
    sessions.refuse_if_draining()
    limiter.check(session_id)
    with sessions.domain_errors(), trio.move_on_after(DURABLE_DEADLINE_S):
        return await sessions.domain.customer_says(session_id, text)
    raise Unavailable(
        "unavailable", "the message could not be stored in time; retry", retry_after=5
    )
