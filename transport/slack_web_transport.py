"""A lean HTTP/1.1 keep-alive transport for the Web API on trio sockets, behind httpx's seam.

Owns `TrioHttpTransport`, an `httpx.AsyncBaseTransport` (so it is swappable with
`httpx.MockTransport` in tests or `httpx.AsyncHTTPTransport` for comparison). It exists because
httpcore's pool rescans every connection for every request (quadratic with 50 concurrent
callers) and anyio adds a layer per socket operation, and h11 costs three times the CPU of the
small codec in `transport.slack_web_h1`; see docs/slack-transport.md.

Each request checks out an idle connection for its origin (LIFO, dropped when idle too long or
when the server has closed it) or opens one, sends the request and reads the whole
response, and returns the connection to the pool only after a clean exchange. Any error or
cancellation mid-exchange closes that connection. Socket errors are translated into httpx's
error tree (`ConnectError` before anything was written, `WriteError`, `ReadError`,
`RemoteProtocolError`) so the client classifies every transport alike. No timeouts here: the
caller places a cancel scope around each request.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass

import httpx
import trio

from transport.slack_web_h1 import Answer, ProtocolError, ResponseParser, encode_request

__all__ = ["KEEPALIVE_EXPIRY_S", "TransportStatistics", "TrioHttpTransport"]

# Hypercorn, uvicorn and Node close a keep-alive connection idle for 5 s; a request written to
# one at that moment fails as "server disconnected". Dropping ours first costs a reconnect.
KEEPALIVE_EXPIRY_S = 4.0

_Origin = tuple[str, str, int]
_STREAM_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


@dataclass(frozen=True, slots=True)
class TransportStatistics:
    requests: int
    connections_opened: int
    in_flight: int
    idle: int


class _Connection:
    __slots__ = ("idle_since", "sock", "stream")

    def __init__(self, stream: trio.abc.Stream, sock: trio.socket.SocketType) -> None:
        self.stream = stream
        self.sock = sock
        self.idle_since = 0.0

    def close(self) -> None:
        # Closing the socket itself is synchronous and enough: no TLS close_notify is owed.
        self.sock.close()


class TrioHttpTransport(httpx.AsyncBaseTransport):
    """Pooled keep-alive HTTP/1.1 over trio sockets (TLS for https URLs)."""

    def __init__(
        self,
        *,
        max_connections: int = 50,
        keepalive_expiry_s: float = KEEPALIVE_EXPIRY_S,
        ssl_context: ssl.SSLContext | None = None,
        max_response_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._slots = trio.Semaphore(max_connections)
        self._max_idle = max_connections
        self._expiry = keepalive_expiry_s
        self._ssl_context = ssl_context
        self._max_body = max_response_bytes
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._closed = False
        self._requests = self._opened = self._in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        body = await request.aread()
        try:
            answer = await self.exchange(
                origin, request.method.encode("ascii"), url.raw_path, request.headers.raw, body
            )
        except httpx.RequestError as e:
            e.request = request
            raise
        return httpx.Response(
            answer.status, headers=answer.headers, content=answer.body, request=request
        )

    async def exchange(
        self,
        origin: tuple[str, str, int],
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> Answer:
        """One request/response on a pooled connection, without httpx's Request and Response.

        `headers` must include Host and Content-Length. Raises httpx's transport errors.
        """
        if self._closed:
            raise httpx.ConnectError("transport is closed")
        async with self._slots:
            self._in_flight += 1
            self._requests += 1
            try:
                conn = self._checkout(origin) or await self._connect(origin)
                try:
                    answer = await self._exchange(conn, method, target, headers, body)
                except BaseException:
                    conn.close()
                    raise
                self._checkin(origin, conn, answer.keep_alive)
            finally:
                self._in_flight -= 1
        return answer

    def _checkout(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = trio.current_time()
        while idle:
            conn = idle.pop()
            # Readable while idle means the server closed it (or sent junk): never reuse that.
            if now - conn.idle_since > self._expiry or conn.sock.is_readable():
                conn.close()
                continue
            return conn
        return None

    def _checkin(self, origin: _Origin, conn: _Connection, keep_alive: bool) -> None:
        if self._closed or not keep_alive:
            conn.close()
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = trio.current_time()
        idle.append(conn)

    async def _connect(self, origin: _Origin) -> _Connection:
        scheme, host, port = origin
        try:
            if scheme == "https":
                context = self._ssl_context or _default_ssl_context()
                tls = await trio.open_ssl_over_tcp_stream(
                    host, port, ssl_context=context, https_compatible=True
                )
                try:
                    await tls.do_handshake()
                except BaseException:
                    await trio.aclose_forcefully(tls)
                    raise
                sock_stream = tls.transport_stream
                assert isinstance(sock_stream, trio.SocketStream)
                conn = _Connection(tls, sock_stream.socket)
            elif scheme == "http":
                plain = await trio.open_tcp_stream(host, port)
                conn = _Connection(plain, plain.socket)
            else:
                raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        except _STREAM_ERRORS as e:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {e}") from None
        self._opened += 1
        return conn

    async def _exchange(
        self,
        conn: _Connection,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> Answer:
        try:
            data = encode_request(method, target, headers, body)
        except ProtocolError as e:
            raise httpx.LocalProtocolError(str(e)) from None
        try:
            await conn.stream.send_all(data)
        except _STREAM_ERRORS as e:
            raise httpx.WriteError(f"connection lost while sending: {e}") from None
        parser = ResponseParser(max_body=self._max_body, head_request=method == b"HEAD")
        while True:
            try:
                received = await conn.stream.receive_some(65536)
            except _STREAM_ERRORS as e:
                raise httpx.ReadError(f"connection lost: {e}") from None
            parser.feed(received)
            try:
                answer = parser.answer()
            except ProtocolError as e:
                raise httpx.RemoteProtocolError(str(e)) from None
            if answer is not None:
                return answer

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> TransportStatistics:
        return TransportStatistics(
            requests=self._requests,
            connections_opened=self._opened,
            in_flight=self._in_flight,
            idle=sum(len(i) for i in self._idle.values()),
        )


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context
