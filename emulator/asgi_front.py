"""The emulator's ASGI entry: the Web API's hot path straight on ASGI, the rest through Starlette.

Owns `Front`, the ASGI callable the server runs. `GET` and `POST /api/<method>` (every Web API
call, the bulk of a load test's traffic) go to `WebApi.handle` without Starlette's middleware,
routing, `Request` and `Response` objects: the same answers, bytes for bytes, for a fraction of
the CPU. Anything else (`HEAD`, other methods, the `/_emu/` routes, the console, the WebSockets)
is Starlette's, unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from emulator.web_api import JSON, WebApi

__all__ = ["Front"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PREFIX = "/api/"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_JSON_TYPE = (b"content-type", JSON.encode())
_SERVER_ERROR = b"Internal Server Error"


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (ASGI servers send them lower-cased); the first of
    repeated ones, as Starlette's `Headers.get` answers."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").lower()
        if key not in out:
            out[key] = value.decode("latin-1")
    return out


def _base_url(scope: Scope, headers: dict[str, str]) -> str:
    """`str(request.base_url).rstrip("/")` as Starlette computes it, without building a URL."""
    scheme = scope.get("scheme", "http")
    root = scope.get("app_root_path", scope.get("root_path", ""))
    host = headers.get("host")
    if host is None:
        server = scope.get("server")
        if server is None:
            return root.rstrip("/")
        name, port = server
        host = name if port == _DEFAULT_PORTS.get(scheme) else f"{name}:{port}"
    return f"{scheme}://{host}{root}".rstrip("/")


class Front:
    """`await front(scope, receive, send)`: Web API calls here, everything else to `fallback`."""

    def __init__(self, web_api: WebApi, fallback: ASGIApp) -> None:
        self.web_api = web_api
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "POST"):
            path: str = scope["path"]
            method = path[len(_PREFIX) :]
            if path.startswith(_PREFIX) and method and "/" not in method:
                await self._web_api(method, scope, receive, send)
                return
        await self.fallback(scope, receive, send)

    async def _web_api(self, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)

        async def read_body() -> bytes:
            chunks: list[bytes] = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break  # the client went away: what arrived is all there is
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            return b"".join(chunks)

        try:
            answer = await self.web_api.handle(
                method,
                scope["method"],
                scope["query_string"].decode("latin-1"),
                headers,
                read_body,
                _base_url(scope, headers),
            )
        except Exception:
            # What Starlette's ServerErrorMiddleware answers, then the server logs the error.
            await _respond(send, 500, _SERVER_ERROR, b"text/plain; charset=utf-8", [])
            raise
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()
        ]
        await _respond(send, answer.status, answer.body, _JSON_TYPE[1], extra)


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        *extra,
        (b"content-length", str(len(body)).encode()),
        (b"content-type", content_type),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
