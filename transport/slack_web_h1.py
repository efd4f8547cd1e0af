"""A minimal sans-IO HTTP/1.1 client codec: request heads out, responses in.

Owns `encode_request` and `ResponseParser`, used by `TrioHttpTransport`. It covers what a
JSON API client needs and nothing more: one request at a time per connection (no pipelining),
bodies framed by Content-Length, chunked transfer coding, or the end of the connection;
1xx interim answers skipped; keep-alive unless the server says ``Connection: close`` (or speaks
HTTP/1.0 without keep-alive). Anything else is a `ProtocolError`. It exists because h11, which is
general and strict, costs about three times the CPU of this per exchange (see
docs/slack-transport.md); tests check it against h11 on generated responses.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Answer", "ProtocolError", "ResponseParser", "encode_request"]

MAX_HEAD_BYTES = 64 * 1024
_NO_BODY_STATUS = frozenset({204, 304})


class ProtocolError(Exception):
    """The peer did not speak HTTP/1.1 as this codec understands it."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


def encode_request(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> bytes:
    """The bytes of one request; refuses header names or values that could split the message."""
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name or b":" in name:
            raise ProtocolError(f"invalid header {name!r}")
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    parts.append(body)
    return b"".join(parts)


class ResponseParser:
    """Feed bytes as they arrive; `answer()` returns the response once it is complete."""

    __slots__ = ("_buffer", "_eof", "_max_body", "_method_head")

    def __init__(self, *, max_body: int, head_request: bool = False) -> None:
        self._buffer = bytearray()
        self._eof = False
        self._max_body = max_body
        self._method_head = head_request

    def feed(self, data: bytes | bytearray) -> None:
        if data:
            self._buffer += data
        else:
            self._eof = True

    def answer(self) -> Answer | None:
        """The complete response, or None while more bytes are needed."""
        buf = self._buffer
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    raise ProtocolError("response head too large")
                self._check_eof(started=bool(buf))
                return None
            version, status, headers = _parse_head(bytes(buf[:end]))
            if 100 <= status < 200:  # interim answer: the real one follows
                del buf[: end + 4]
                continue
            break
        start = end + 4
        keep_alive = _keep_alive(version, headers)
        if self._method_head or status in _NO_BODY_STATUS:
            return self._done(status, headers, b"", start, keep_alive)
        coding, length = _framing(headers)
        if coding == "chunked":
            parsed = self._chunked(start)
            if parsed is None:
                self._check_eof(started=True)
                return None
            body, consumed = parsed
            return self._done(status, headers, body, consumed, keep_alive)
        if coding == "length":
            if length > self._max_body:
                raise ProtocolError("response body too large")
            if len(buf) - start < length:
                self._check_eof(started=True)
                return None
            return self._done(
                status, headers, bytes(buf[start : start + length]), start + length, keep_alive
            )
        # No framing: the body runs to the end of the connection.
        if len(buf) - start > self._max_body:
            raise ProtocolError("response body too large")
        if not self._eof:
            return None
        return Answer(status, headers, bytes(buf[start:]), False)

    def _check_eof(self, *, started: bool) -> None:
        """More bytes are needed: fine unless the connection already ended."""
        if self._eof:
            where = "mid-response" if started else "without sending a response"
            raise ProtocolError(f"server disconnected {where}")
        return None

    def _done(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        used: int,
        keep_alive: bool,
    ) -> Answer:
        # Bytes beyond the answer were never asked for: do not reuse such a connection.
        return Answer(
            status, headers, body, keep_alive and len(self._buffer) == used and not self._eof
        )

    def _chunked(self, pos: int) -> tuple[bytes, int] | None:
        buf = self._buffer
        chunks: list[bytes] = []
        size_total = 0
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError("bad chunk size") from None
            if size < 0 or size_text.startswith((b"-", b"+", b"0x", b"0X")):
                raise ProtocolError("bad chunk size")
            pos = line_end + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n", pos)
                while trailer_end > pos:  # skip trailer fields up to the empty line
                    pos = trailer_end + 2
                    trailer_end = buf.find(b"\r\n", pos)
                if trailer_end < 0:
                    return None
                return b"".join(chunks), trailer_end + 2
            size_total += size
            if size_total > self._max_body:
                raise ProtocolError("response body too large")
            if len(buf) < pos + size + 2:
                return None
            if buf[pos + size : pos + size + 2] != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")
            chunks.append(bytes(buf[pos : pos + size]))
            pos += size + 2


def _parse_head(head: bytes) -> tuple[bytes, int, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    status_line = lines[0]
    version = status_line[:8]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or status_line[8:9] != b" ":
        raise ProtocolError("not an HTTP/1.x status line")
    code = status_line[9:12]
    if len(code) != 3 or not code.isdigit() or status_line[12:13] not in (b"", b" "):
        raise ProtocolError("bad status code")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name or b"\t" in name:
            raise ProtocolError("bad header line")
        headers.append((name.lower(), value.strip(b" \t")))
    return version, int(code), headers


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
    length: int | None = None
    for name, value in headers:
        if name == b"transfer-encoding":
            codings = [c.strip().lower() for c in value.split(b",")]
            if codings[-1] != b"chunked":
                raise ProtocolError("unsupported transfer coding")
            return "chunked", 0
        if name == b"content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise ProtocolError("bad content-length")
            length = int(value)
    return ("length", length) if length is not None else ("close", 0)


def _keep_alive(version: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
    tokens = {
        t.strip().lower()
        for name, value in headers
        if name == b"connection"
        for t in value.split(b",")
    }
    if b"close" in tokens:
        return False
    return version == b"HTTP/1.1" or b"keep-alive" in tokens
