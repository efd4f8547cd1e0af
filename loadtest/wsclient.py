"""A lean WebSocket client for the simulated people: receive text frames, answer pings, close.

Owns `open_ws(url)` and `WsConnection`. The simulated customers and agents only listen (the
customer's events, an agent's RTM stream), so this is the receiving half of RFC 6455 on one trio
socket, with no background task, no message queue and no general frame machinery: a frame is
parsed straight out of the read buffer. Pings are answered with pongs, a server's close frame is
echoed and ends the connection (`WsClosed`), fragmented messages are joined. No extensions are
offered, so frames are never compressed. Every cycle saved here is left to the daemon and the
emulator, which share the machine with the load tester.

Errors: `WsHandshakeError` (the server did not switch protocols), `WsClosed` (the connection
ended, cleanly or not); both are `WsError`. No timeouts here: callers place cancel scopes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlsplit

import trio

__all__ = ["WsClosed", "WsConnection", "WsError", "WsHandshakeError", "open_ws"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_READ = 65536
_MAX_HEAD = 16384
_TEXT, _BINARY, _CONTINUATION = 0x1, 0x2, 0x0
_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA
_CLOSE_WAIT_S = 1.0


class WsError(Exception):
    """The WebSocket could not be used."""


class WsHandshakeError(WsError):
    """The server refused the upgrade (`status` is its HTTP status, 0 if there was none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class WsClosed(WsError):
    """The connection ended: the server closed it (`code`), or it broke (code 1006)."""

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask what they send)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + _unmask(payload, mask)


def _unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the repeated 4-byte key (masking and unmasking are the same operation)."""
    n = len(payload)
    if not n:
        return payload
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


class WsConnection:
    """One open WebSocket; `get_message()` returns the next text (or binary) message."""

    def __init__(self, stream: trio.SocketStream, buffered: bytes) -> None:
        self._stream = stream
        self._buf = bytearray(buffered)
        self._pos = 0
        self._closed: WsClosed | None = None

    async def _fill(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        try:
            data = await self._stream.receive_some(_READ)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self._closed = WsClosed(1006, "connection lost")
            raise self._closed
        self._buf += data

    async def _frame(self) -> tuple[bool, int, bytes]:
        """The next frame: (fin, opcode, payload)."""
        while len(self._buf) - self._pos < 2:
            await self._fill()
        first, second = self._buf[self._pos], self._buf[self._pos + 1]
        length = second & 0x7F
        head = 2
        if length == 126:
            head = 4
        elif length == 127:
            head = 10
        masked = second & 0x80
        head += 4 if masked else 0
        while len(self._buf) - self._pos < head:
            await self._fill()
        p = self._pos
        if length == 126:
            length = int.from_bytes(self._buf[p + 2 : p + 4], "big")
        elif length == 127:
            length = int.from_bytes(self._buf[p + 2 : p + 10], "big")
        while len(self._buf) - self._pos < head + length:
            await self._fill()
        p = self._pos
        payload = bytes(self._buf[p + head : p + head + length])
        if masked:
            payload = _unmask(payload, bytes(self._buf[p + head - 4 : p + head]))
        self._pos = p + head + length
        return bool(first & 0x80), first & 0x0F, payload

    async def get_message(self) -> str | bytes:
        """The next message; raises `WsClosed` once the connection has ended."""
        if self._closed is not None:
            raise self._closed
        parts: list[bytes] = []
        kind = _TEXT
        while True:
            fin, opcode, payload = await self._frame()
            if opcode == _PING:
                await self._send(_masked(_PONG, payload))
                continue
            if opcode == _PONG:
                continue
            if opcode == _CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                reason = payload[2:].decode("utf-8", errors="replace")
                await self._send(_masked(_CLOSE, payload[:2]))
                self._closed = WsClosed(code, reason)
                await self._stream.aclose()
                raise self._closed
            if opcode != _CONTINUATION:
                kind = opcode
            parts.append(payload)
            if fin:
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                return data.decode("utf-8") if kind == _TEXT else data

    async def _send(self, frame: bytes) -> None:
        try:
            await self._stream.send_all(frame)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            self._closed = WsClosed(1006, "connection lost")
            raise self._closed from None

    async def aclose(self) -> None:
        """Close from this side: a close frame if the connection is still up, then the socket."""
        if self._closed is None:
            self._closed = WsClosed(1000, "closed by the client")
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(_CLOSE_WAIT_S),
                suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError),
            ):
                await self._stream.send_all(_masked(_CLOSE, struct.pack("!H", 1000)))
        await self._stream.aclose()


async def _handshake(url: str) -> WsConnection:
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise WsHandshakeError(f"not a ws:// URL: {url!r}")
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16))
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.hostname}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream(parts.hostname, port)
    try:
        await stream.send_all(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some(_READ)
            if not chunk or len(head) > _MAX_HEAD:
                raise WsHandshakeError("no answer to the upgrade")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status_parts = lines[0].split(" ", 2)
        status = int(status_parts[1]) if len(status_parts) > 1 and status_parts[1].isdigit() else 0
        if status != 101:
            raise WsHandshakeError(f"upgrade refused: {lines[0]}", status)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise WsHandshakeError("bad Sec-WebSocket-Accept", status)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
        await stream.aclose()
        raise WsHandshakeError(f"connection lost during the upgrade: {e!r}") from None
    except BaseException:
        await stream.aclose()
        raise
    return WsConnection(stream, rest)


@asynccontextmanager
async def open_ws(url: str) -> AsyncIterator[WsConnection]:
    """`async with open_ws("ws://host:port/path?query") as ws:`; closes the socket on exit."""
    ws = await _handshake(url)
    try:
        yield ws
    finally:
        await ws.aclose()
