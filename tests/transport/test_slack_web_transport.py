"""TrioHttpTransport against a real HTTP/1.1 server on 127.0.0.1: pooling, reuse, failures."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from functools import partial

import h11
import httpx
import pytest
import trio
import trio.testing

from transport.slack_backoff import Backoff
from transport.slack_rate import RateLimits
from transport.slack_web import RetryPolicy, SlackWebClient
from transport.slack_web_transport import TrioHttpTransport


class Server:
    """An h11 server whose next answers are scripted: ok, ok_then_close, close, drop, chunked, big, ratelimited, hang."""

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[tuple[str, bytes]] = []
        self.script: deque[str] = deque()
        self.closed = trio.Event()  # set when the server has closed a connection

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                target, body = await self._read(conn, stream)
                if target is None:
                    return
                self.requests.append((target, body))
                mode = self.script.popleft() if self.script else "ok"
                if mode == "drop":
                    return
                if mode == "hang":
                    await trio.sleep_forever()
                await self._answer(conn, stream, mode, body)
                if conn.our_state is h11.MUST_CLOSE or mode == "ok_then_close":
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, h11.RemoteProtocolError):
            return
        finally:
            self.open_now -= 1
            await trio.aclose_forcefully(stream)
            self.closed.set()

    async def _read(
        self, conn: h11.Connection, stream: trio.SocketStream
    ) -> tuple[str | None, bytes]:
        target, chunks = None, []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Request):
                target = event.target.decode()
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return target, b"".join(chunks)
            elif isinstance(event, h11.ConnectionClosed):
                return None, b""

    async def _answer(
        self, conn: h11.Connection, stream: trio.SocketStream, mode: str, body: bytes
    ) -> None:
        payload = json.dumps({"ok": True, "echo": body.decode()}).encode()
        status, headers = 200, [("Content-Type", "application/json")]
        if mode == "big":
            payload = b"x" * 5000
        if mode == "ratelimited":
            payload = b'{"ok":false,"error":"ratelimited"}'
            status = 429
            headers.append(("Retry-After", "0"))
        if mode == "close":
            headers.append(("Connection", "close"))
        if mode != "chunked":
            headers.append(("Content-Length", str(len(payload))))
        out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
        if mode == "chunked":
            for i in range(0, len(payload), 7):
                out += conn.send(h11.Data(data=payload[i : i + 7])) or b""
        else:
            out += conn.send(h11.Data(data=payload)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(out)


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Server]:
    srv = Server()
    listeners = await nursery.start(partial(trio.serve_tcp, srv.handle, 0, host="127.0.0.1"))
    srv.port = listeners[0].socket.getsockname()[1]
    yield srv


def request(server: Server, body: bytes = b"a=1", path: str = "/api/auth.test") -> httpx.Request:
    return httpx.Request("POST", f"http://127.0.0.1:{server.port}{path}", content=body)


async def test_sequential_requests_reuse_one_keep_alive_connection(server: Server) -> None:
    transport = TrioHttpTransport()
    with trio.fail_after(5):
        for i in range(10):
            response = await transport.handle_async_request(request(server, f"n={i}".encode()))
            assert response.status_code == 200
            assert response.json() == {"ok": True, "echo": f"n={i}"}
        stats = transport.statistics()
        await transport.aclose()
    assert server.connections == 1 and stats.connections_opened == 1
    assert stats.requests == 10 and stats.idle == 1 and stats.in_flight == 0
    assert server.requests[0] == ("/api/auth.test", b"n=0")


async def test_concurrency_is_capped_by_max_connections(server: Server) -> None:
    transport = TrioHttpTransport(max_connections=3)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(transport.handle_async_request, request(server))
        await transport.aclose()
    assert len(server.requests) == 20
    assert server.most_open <= 3 and server.connections <= 3


async def test_connection_close_and_chunked_answers(server: Server) -> None:
    server.script.extend(["close", "chunked", "ok"])
    transport = TrioHttpTransport()
    with trio.fail_after(5):
        for _ in range(3):
            response = await transport.handle_async_request(request(server))
            assert response.json()["ok"] is True
        await transport.aclose()
    assert server.connections == 2  # the first was closed as the server asked


async def test_an_idle_connection_the_server_closed_is_not_reused(server: Server) -> None:
    server.script.append("ok_then_close")
    transport = TrioHttpTransport()
    with trio.fail_after(5):
        await transport.handle_async_request(request(server))
        await server.closed.wait()
        assert (await transport.handle_async_request(request(server))).status_code == 200
        await transport.aclose()
    assert server.connections == 2


async def test_a_connection_dropped_before_the_answer_is_a_protocol_error(server: Server) -> None:
    transport = TrioHttpTransport()
    with trio.fail_after(5):
        await transport.handle_async_request(request(server))
        server.script.append("drop")  # the server drops the connection on its next request
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await transport.handle_async_request(request(server))
        response = await transport.handle_async_request(request(server))
        assert response.status_code == 200
        await transport.aclose()
    assert server.connections == 2


async def test_connections_idle_past_the_keepalive_expiry_are_replaced(
    server: Server, mock_clock: trio.testing.MockClock
) -> None:
    mock_clock.rate = 1.0  # real time flows (for the deadline); jump() adds idle time at once
    transport = TrioHttpTransport(keepalive_expiry_s=15.0)
    with trio.fail_after(60):  # the jumps below move this deadline's clock too
        await transport.handle_async_request(request(server))
        mock_clock.jump(10)
        await transport.handle_async_request(request(server))
        assert server.connections == 1
        mock_clock.jump(16)
        await transport.handle_async_request(request(server))
        await transport.aclose()
    assert server.connections == 2


async def test_by_default_connections_are_dropped_before_a_server_s_5_s_idle_close(
    server: Server, mock_clock: trio.testing.MockClock
) -> None:
    mock_clock.rate = 1.0
    transport = TrioHttpTransport()
    with trio.fail_after(60):
        await transport.handle_async_request(request(server))
        mock_clock.jump(3.9)
        await transport.handle_async_request(request(server))
        assert server.connections == 1
        mock_clock.jump(4.1)  # a 5 s server would close it in 0.9 s: not reused
        await transport.handle_async_request(request(server))
        await transport.aclose()
    assert server.connections == 2


async def test_connect_failure_is_a_connect_error() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, trio.aclose_forcefully, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()
    transport = TrioHttpTransport()
    with trio.fail_after(5), pytest.raises(httpx.ConnectError, match="cannot connect"):
        await transport.handle_async_request(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1:1/"))
    await transport.aclose()
    with pytest.raises(httpx.ConnectError, match="closed"):
        await transport.handle_async_request(httpx.Request("GET", f"http://127.0.0.1:{port}/"))


async def test_an_oversized_answer_is_refused_and_its_connection_dropped(server: Server) -> None:
    server.script.append("big")
    transport = TrioHttpTransport(max_response_bytes=1000)
    with trio.fail_after(5):
        with pytest.raises(httpx.RemoteProtocolError, match="too large"):
            await transport.handle_async_request(request(server))
        assert (await transport.handle_async_request(request(server))).status_code == 200
        await transport.aclose()
    assert server.connections == 2


async def test_a_cancelled_request_closes_its_connection(
    server: Server, autojump_clock: trio.testing.MockClock
) -> None:
    server.script.append("hang")
    transport = TrioHttpTransport()
    with trio.fail_after(60):
        with trio.move_on_after(10):
            await transport.handle_async_request(request(server))
        assert trio.current_time() == 10.0
        assert transport.statistics().idle == 0
        assert (await transport.handle_async_request(request(server))).status_code == 200
        await transport.aclose()
    assert server.connections == 2


async def test_the_client_over_real_sockets_checks_history_before_reposting(
    server: Server,
) -> None:
    # The server drops the connection before answering the post: ambiguous. The client looks for
    # the post id in the channel history (this echo server lists no messages) and posts again;
    # it waits one attempt deadline (0.5 s here) before looking, in case the post lands late.
    server.script.append("drop")
    retry = RetryPolicy(max_attempts=2, backoff=Backoff(0.0, 2.0, 0.0, 0.0), attempt_timeout_s=0.5)
    web = SlackWebClient(
        "xoxb-1",
        api_url=f"http://127.0.0.1:{server.port}/api/",
        rate_limits=RateLimits.off(),
        retry=retry,
    )
    with trio.fail_after(5):
        answer = await web.post_message("C1", text="hi")
        await web.aclose()
    assert answer["ok"] is True
    assert [target for target, _ in server.requests] == [
        "/api/chat.postMessage",
        "/api/conversations.history",
        "/api/chat.postMessage",
    ]


async def test_the_client_reads_retry_after_from_the_pooled_transport(server: Server) -> None:
    server.script.append("ratelimited")
    retry = RetryPolicy(default_retry_after_s=30.0)  # a missed header would wait 30 s
    web = SlackWebClient(
        "xoxb-1",
        api_url=f"http://127.0.0.1:{server.port}/api",
        rate_limits=RateLimits.off(),
        retry=retry,
    )
    with trio.fail_after(5):
        answer = await web.call("users.info", user="U1")
        stats = web.statistics()
        await web.aclose()
    assert answer == {"ok": True, "echo": "user=U1"}
    assert stats.rate_limited == 1 and server.connections == 1
    with pytest.raises(ValueError, match="printable"):
        SlackWebClient("xoxb-1\r\nX-Evil: 1")
