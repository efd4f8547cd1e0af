"""The customer WebSocket: pushed events, resume from seq, refusals, idle and shutdown closes.

In-memory ASGI tests run under the autojump clock; the last ones go through a real Hypercorn
server on 127.0.0.1:0 with the trio-websocket client, including a socket dropped mid-conversation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from actors.ports import OfferAnswered, OpenRoom, RoomMessagePosted
from tests.transport.chat_api_fixtures import (
    HTTP,
    Chat,
    Closed,
    CuttableProxy,
    Refused,
    asgi_websocket,
    serving,
)
from transport.chat_server import ChatServer


@pytest.fixture
async def chat() -> AsyncIterator[Chat]:
    async with serving() as c:
        yield c


def ws_path(session: dict[str, str], after: int | None = None, token: str | None = None) -> str:
    query = f"token={session['token'] if token is None else token}"
    if after is not None:
        query += f"&after={after}"
    return f"/api/sessions/{session['session_id']}/ws?{query}"


async def test_backlog_then_live_events_in_order(chat: Chat) -> None:
    session = await chat.open()
    await chat.say(session, "before")
    async with asgi_websocket(chat.app, ws_path(session)) as ws:
        assert [(await ws.receive_event())["seq"] for _ in range(2)] == [1, 2]
        await chat.say(session, "after")
        first, second = await ws.receive_event(), await ws.receive_event()
        assert (first["seq"], first["type"], first["text"]) == (3, "customer_message", "after")
        assert (second["seq"], second["type"]) == (4, "bot_message")
        assert set(first) == {"seq", "type", "text", "at"}


async def test_resume_after_a_seq_gets_exactly_what_was_missed(chat: Chat) -> None:
    session = await chat.open()
    async with asgi_websocket(chat.app, ws_path(session)) as ws:
        await chat.say(session, "one")
        seen = [await ws.receive_event(), await ws.receive_event()]
    await chat.say(session, "two")  # while no socket is open
    await chat.say(session, "three")
    async with asgi_websocket(chat.app, ws_path(session, after=seen[-1]["seq"])) as ws:
        missed = [await ws.receive_event() for _ in range(4)]
        await chat.say(session, "four")
        live = await ws.receive_event()
    assert [e["seq"] for e in seen + missed] == [1, 2, 3, 4, 5, 6]
    assert [e["text"] for e in missed if e["type"] == "customer_message"] == ["two", "three"]
    assert live["seq"] == 7
    assert [e["seq"] for e in seen + missed + [live]] == list(range(1, 8))


async def test_agent_events_carry_the_profile(chat: Chat) -> None:
    session = await chat.open()
    async with asgi_websocket(chat.app, ws_path(session)) as ws:
        await chat.say(session, "human")
        offer = await chat.slack.next_offer()
        await chat.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        await chat.slack.next(OpenRoom)
        await chat.settle()
        await chat.domain.deliver(RoomMessagePosted("C0001", offer.agent_id, "Hi, Ada", "m1"))
        events = [await ws.receive_event() for _ in range(4)]
    assert [e["type"] for e in events] == [
        "customer_message",
        "searching",
        "agent_joined",
        "agent_message",
    ]
    assert events[2]["agent"]["display_name"] == f"agent-{offer.agent_id}"
    assert "text" not in events[2]
    assert events[3]["text"] == "Hi, Ada"


async def test_the_closed_event_ends_the_socket_and_a_late_resume_ends_at_once(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session = await chat.open()
    async with asgi_websocket(chat.app, ws_path(session)) as ws:
        await chat.client.post(
            f"/api/sessions/{session['session_id']}/close", headers=chat.auth(session)
        )
        closed_event = await ws.receive_event()
        assert closed_event["type"] == "closed"
        with pytest.raises(Closed) as closed:
            await ws.receive_event()
        assert closed.value.code == 1000
    start = trio.current_time()
    async with asgi_websocket(chat.app, ws_path(session, after=closed_event["seq"])) as ws:
        with pytest.raises(Closed) as closed:
            await ws.receive_event()
        assert (closed.value.code, closed.value.reason) == (1000, "session closed")
    assert trio.current_time() == start


async def test_an_idle_socket_is_closed_after_exactly_120_s(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session = await chat.open()
    async with asgi_websocket(chat.app, ws_path(session)) as ws:
        await trio.sleep(100)
        await chat.say(session, "keeps it alive")
        await ws.receive_event()
        await ws.receive_event()
        last_event = trio.current_time()
        with pytest.raises(Closed) as closed:
            await ws.receive_event()
        assert (closed.value.code, closed.value.reason) == (1000, "idle")
        assert trio.current_time() - last_event == 120.0


async def test_draining_closes_with_1001(
    chat: Chat, autojump_clock: trio.testing.MockClock
) -> None:
    session = await chat.open()
    async with asgi_websocket(chat.app, ws_path(session)) as ws:
        await trio.sleep(5)
        chat.draining.set()
        with pytest.raises(Closed) as closed:
            await ws.receive_event()
        assert closed.value.code == 1001


async def test_client_frames_are_ignored(chat: Chat) -> None:
    session = await chat.open()
    async with asgi_websocket(chat.app, ws_path(session)) as ws:
        await ws.send_text('{"text": "not a way to send"}')
        await ws.send_text("garbage")
        await chat.say(session, "real")
        event = await ws.receive_event()
        assert (event["seq"], event["text"]) == (1, "real")


async def test_refused_handshakes_are_http_errors(chat: Chat) -> None:
    session = await chat.open()
    cases = [
        (ws_path(session, token="wrong"), 401, "bad_token"),
        (f"/api/sessions/{session['session_id']}/ws", 401, "missing_token"),
        (ws_path({**session, "session_id": "s_nope"}), 404, "unknown_session"),
        (ws_path(session) + "&after=-3", 400, "invalid_field"),
    ]
    for path, status, code in cases:
        with pytest.raises(Refused) as refused:
            async with asgi_websocket(chat.app, path):
                pass
        assert (refused.value.status, refused.value.body["error"]) == (status, code)


async def test_without_the_denial_extension_refusals_are_close_codes(chat: Chat) -> None:
    session = await chat.open()
    async with asgi_websocket(
        chat.app, ws_path(session, token="wrong"), denial_extension=False
    ) as ws:
        with pytest.raises(Closed) as closed:
            await ws.receive_event()
    assert (closed.value.code, closed.value.reason) == (4401, "bad_token")


# --- a real server, real sockets -------------------------------------------------------------


async def test_real_socket_dropped_and_resumed_without_loss_or_duplicates() -> None:
    with trio.fail_after(20):
        async with serving() as chat, trio.open_nursery() as proxy_nursery:
            await _conversation_over_a_real_socket(chat, proxy_nursery)
            proxy_nursery.cancel_scope.cancel()


async def _conversation_over_a_real_socket(chat: Chat, proxy_nursery: trio.Nursery) -> None:
    async with trio.open_nursery() as server_nursery:
        server = ChatServer(chat.domain, HTTP)
        base = await server_nursery.start(server.run)
        assert base.startswith("http://127.0.0.1:") and not base.endswith(":0")
        proxy = CuttableProxy(int(base.rsplit(":", 1)[1]))
        proxy_port = await proxy_nursery.start(proxy.run)
        session = await chat.open()
        seen: list[dict[str, object]] = []

        async with open_websocket_url(f"ws://127.0.0.1:{proxy_port}{ws_path(session)}") as ws:
            await chat.say(session, "one")
            seen += [json.loads(await ws.get_message()) for _ in range(2)]
            proxy.cut()  # the network goes away: no closing handshake
            with pytest.raises(ConnectionClosed):
                await ws.get_message()

        await chat.say(session, "two")  # while the customer is offline
        await chat.say(session, "three")
        last = seen[-1]["seq"]
        async with open_websocket_url(
            f"ws://127.0.0.1:{proxy_port}{ws_path(session, after=last)}"
        ) as ws:
            seen += [json.loads(await ws.get_message()) for _ in range(4)]
            await chat.say(session, "four")
            seen += [json.loads(await ws.get_message()) for _ in range(2)]
        assert [e["seq"] for e in seen] == list(range(1, 9))
        texts = [e["text"] for e in seen if e["type"] == "customer_message"]
        assert texts == ["one", "two", "three", "four"]

        ws_base = base.replace("http://", "ws://", 1)
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(ws_base + ws_path(session, token="nope")):
                pass
        assert rejected.value.status_code == 401

        async with open_websocket_url(ws_base + ws_path(session, after=8)) as ws:
            server.shutdown()
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1001
    # server_nursery exited, so `run` returned: the shutdown completed on its own.


async def test_many_customers_closing_while_their_sockets_close_keep_the_server_up() -> None:
    """Regression: the endpoint returning while Hypercorn's reader answered the client's close
    frame made two tasks send on one stream; trio.BusyResourceError took the whole server down.
    The widget closes exactly like this: POST /close, read `closed`, leave at once. The customers
    run in their own process so that their close frames race the server's for real."""
    rounds, per_round = 3, 100
    with trio.fail_after(120):
        async with serving() as chat, trio.open_nursery() as server_nursery:
            server = ChatServer(chat.domain, HTTP)
            base = await server_nursery.start(server.run)
            storm = await trio.run_process(
                [
                    sys.executable,
                    "-m",
                    "tests.transport.ws_close_storm",
                    base,
                    str(rounds),
                    str(per_round),
                ],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            assert storm.returncode == 0, storm.stderr.decode()[-2000:]
            lines = storm.stdout.decode().split()
            assert lines == [
                word for n in range(rounds) for word in (str(n), str(per_round), "200")
            ]
            server.shutdown()
