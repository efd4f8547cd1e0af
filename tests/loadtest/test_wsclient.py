"""The load tester's lean WebSocket client against real servers on localhost.

A raw trio server writes the frames byte for byte (fragments, 16- and 64-bit lengths, ping,
close), so the client's framing is checked against RFC 6455, not against another client; a
trio-websocket server checks that what the client sends (pong, close) is masked correctly.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import trio
import trio_websocket

from loadtest.wsclient import WsClosed, WsHandshakeError, open_ws

DEADLINE_S = 10
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return struct.pack("!BB", first, n) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


def unmask(data: bytes) -> tuple[int, bytes]:
    """A client frame's opcode and unmasked payload (short frames only)."""
    assert data[1] & 0x80, "client frames must be masked"
    n = data[1] & 0x7F
    mask, payload = data[2:6], data[6 : 6 + n]
    return data[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def raw_server(
    nursery: trio.Nursery,
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    status: int = 101,
) -> str:
    async def serve(stream: trio.SocketStream) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(4096)
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        if status != 101:
            await stream.send_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            await stream.aclose()
            return
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await handler(stream)

    listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return f"ws://127.0.0.1:{port}/path?x=1"


async def test_frames_of_every_length_fragments_ping_and_close(nursery: trio.Nursery) -> None:
    client_frames: list[tuple[int, bytes]] = []
    big = "x" * 70_000

    async def handler(stream: trio.SocketStream) -> None:
        data = (
            frame(0x1, b'{"type":"hello"}')
            + frame(0x1, ("y" * 300).encode())
            + frame(0x1, b"part one, ", fin=False)
            + frame(0x9, b"are you there")
            + frame(0x0, b"part two")
            + frame(0x1, big.encode())
            + frame(0x2, b"\x00\x01")
            + frame(0x8, struct.pack("!H", 4000) + b"bye")
        )
        for i in range(0, len(data), 1000):  # in small pieces: frames split across reads
            await stream.send_all(data[i : i + 1000])
        while len(client_frames) < 2:
            got = await stream.receive_some(4096)
            if not got:
                break
            while got:
                n = got[1] & 0x7F
                client_frames.append(unmask(got[: 6 + n]))
                got = got[6 + n :]

    with trio.fail_after(DEADLINE_S):
        url = await raw_server(nursery, handler)
        async with open_ws(url) as ws:
            assert await ws.get_message() == '{"type":"hello"}'
            assert await ws.get_message() == "y" * 300
            assert await ws.get_message() == "part one, part two"
            assert await ws.get_message() == big
            assert await ws.get_message() == b"\x00\x01"
            with pytest.raises(WsClosed) as closed:
                await ws.get_message()
            assert (closed.value.code, closed.value.reason) == (4000, "bye")
            with pytest.raises(WsClosed):
                await ws.get_message()  # stays closed
        await trio.testing.wait_all_tasks_blocked()
    assert client_frames == [(0xA, b"are you there"), (0x8, struct.pack("!H", 4000))]


async def test_refused_upgrade_is_a_handshake_error(nursery: trio.Nursery) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        raise AssertionError("not reached")

    with trio.fail_after(DEADLINE_S):
        url = await raw_server(nursery, handler, status=403)
        with pytest.raises(WsHandshakeError) as refused:
            async with open_ws(url):
                pass
    assert refused.value.status == 403


async def test_connection_lost_is_closed_1006(nursery: trio.Nursery) -> None:
    async def handler(stream: trio.SocketStream) -> None:
        await stream.send_all(frame(0x1, b"one"))
        await stream.aclose()

    with trio.fail_after(DEADLINE_S):
        url = await raw_server(nursery, handler)
        async with open_ws(url) as ws:
            assert await ws.get_message() == "one"
            with pytest.raises(WsClosed) as closed:
                await ws.get_message()
    assert closed.value.code == 1006


async def test_a_real_server_reads_the_masked_close(nursery: trio.Nursery) -> None:
    seen: list[int | None] = []
    done = trio.Event()

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("hi")
        try:
            await ws.get_message()
        except trio_websocket.ConnectionClosed as e:
            seen.append(e.reason.code if e.reason else None)
        done.set()

    with trio.fail_after(DEADLINE_S):
        server = await nursery.start(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
        async with open_ws(f"ws://127.0.0.1:{server.port}/") as ws:
            assert await ws.get_message() == "hi"
        await done.wait()
    assert seen == [1000]


async def test_not_a_ws_url() -> None:
    with pytest.raises(WsHandshakeError):
        async with open_ws("http://127.0.0.1:1/"):
            pass
