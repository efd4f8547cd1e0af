"""JSON over pooled keep-alive HTTP/1.1 for the simulated customers and agents.

Owns `JsonHttp`: one base URL, JSON bodies in and out, a bearer token per call, and `HttpFailure`
for anything that is not an answer (connection refused, reset, a body that is not JSON). It runs on
the daemon's own lean transport (h11-style codec on trio sockets), because the load tester must
spend as little CPU per request as it can: every cycle it burns is taken from the daemon and the
emulator on the same machine. No timeouts here: callers place cancel scopes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from transport.slack_web_transport import TrioHttpTransport

__all__ = ["HttpFailure", "JsonHttp", "Reply"]

KEEPALIVE_S = 2.0


class HttpFailure(Exception):
    """No usable answer: the request failed on the wire, or the body was not a JSON object.
    `kind` names the failure without the request (for counting)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class Reply:
    """An answer: status, the JSON object, and the headers by lower-case name (decoded only
    when asked for: most callers never look at them)."""

    __slots__ = ("_headers", "_raw_headers", "body", "status")

    def __init__(
        self, status: int, body: dict[str, Any], raw_headers: Sequence[tuple[bytes, bytes]]
    ) -> None:
        self.status = status
        self.body = body
        self._raw_headers = raw_headers
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self._raw_headers
            }
        return self._headers


class JsonHttp:
    """Calls under one base URL (`http://host:port`) over a pool of at most `connections`."""

    def __init__(self, base_url: str, *, connections: int = 256) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {base_url!r}")
        port = parts.port or 80
        self._origin = ("http", parts.hostname, port)
        self._host = f"{parts.hostname}:{port}".encode()
        self._prefix = parts.path.rstrip("/")
        # Never reuse a connection idle for longer than a fraction of the server's keep-alive
        # timeout (Hypercorn: 5 s): a request sent as the server closes it gets no answer.
        self._transport = TrioHttpTransport(
            max_connections=connections, keepalive_expiry_s=KEEPALIVE_S
        )

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        query: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
    ) -> Reply:
        target = self._prefix + path
        if query:
            target += "?" + urlencode(query)
        headers = [(b"host", self._host), (b"accept", b"application/json")]
        data = b""
        if form is not None:
            data = urlencode(form).encode()
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        elif body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(data)).encode()))
        if token is not None:
            headers.append((b"authorization", b"Bearer " + token.encode()))
        try:
            answer = await self._transport.exchange(
                self._origin, method.encode(), target.encode(), headers, data
            )
        except httpx.HTTPError as e:
            raise HttpFailure(
                f"{method} {path}: {type(e).__name__}: {e}", type(e).__name__
            ) from None
        try:
            decoded = json.loads(answer.body) if answer.body else {}
        except ValueError:
            raise HttpFailure(
                f"{method} {path}: {answer.status} with a body that is not JSON", "not_json"
            ) from None
        if not isinstance(decoded, dict):
            raise HttpFailure(
                f"{method} {path}: {answer.status} with a body that is not an object", "not_json"
            )
        return Reply(answer.status, decoded, answer.headers)
