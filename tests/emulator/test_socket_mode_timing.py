"""Socket Mode timing under the autojump clock: redelivery, retry budget, refresh grace, balancing.

The emulator runs in the test's trio loop; a plain WebSocket client plays the app, so virtual
time is exact.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket

from tests.emulator.conftest import InProcess

DEADLINE_S = 600  # virtual seconds: a hung test fails instead of hanging


async def open_app_socket(
    emu: InProcess, nursery: trio.Nursery
) -> trio_websocket.WebSocketConnection:
    url = (await emu.api("apps.connections.open", emu.emulator.credentials.app_token)).json()["url"]
    ws = await trio_websocket.connect_websocket_url(nursery, url)
    hello = await receive(ws)
    assert (
        hello["type"] == "hello"
        and hello["connection_info"]["app_id"] == emu.emulator.credentials.app_id
    )
    return ws


async def receive(ws: trio_websocket.WebSocketConnection) -> dict[str, Any]:
    return json.loads(await ws.get_message())


async def room_with_alice(emu: InProcess, name: str) -> tuple[str, str]:
    bot = emu.emulator.credentials.bot_token
    alice = next(u for u in emu.emulator.workspace.humans() if u.name == "alice")
    made = await emu.api("conversations.create", bot, name=name, is_private="true")
    room = made.json()["channel"]["id"]
    await emu.api("conversations.invite", bot, channel=room, users=alice.id)
    return room, alice.token


async def test_unacked_envelope_is_redelivered_every_3s_then_dropped(
    running: InProcess, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(DEADLINE_S):
        room, alice = await room_with_alice(running, "timing")
        ws = await open_app_socket(running, nursery)
        await running.api("chat.postMessage", alice, channel=room, text="hello?")
        first = await receive(ws)
        start = trio.current_time()
        assert (first["type"], first["retry_attempt"], first["retry_reason"]) == (
            "events_api",
            0,
            "",
        )
        for attempt in (1, 2, 3):
            again = await receive(ws)
            assert trio.current_time() - start == pytest.approx(3.0 * attempt)
            assert (again["envelope_id"], again["retry_attempt"], again["retry_reason"]) == (
                first["envelope_id"],
                attempt,
                "timeout",
            )
            assert again["payload"] == first["payload"]
        with trio.move_on_after(60) as quiet:
            await receive(ws)
        assert quiet.cancelled_caught  # Slack's retry budget is spent: no fourth retry
        stats = (await running.emu("GET", "/_emu/stats")).json()["socket_mode"]
        assert (stats["redelivered"], stats["dropped"], stats["in_flight"]) == (3, 1, 0)


async def test_acked_envelope_is_not_redelivered(
    running: InProcess, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(DEADLINE_S):
        room, alice = await room_with_alice(running, "acked")
        ws = await open_app_socket(running, nursery)
        await running.api("chat.postMessage", alice, channel=room, text="hi")
        envelope = await receive(ws)
        await trio.sleep(2.9)  # inside Slack's 3-second window
        await ws.send_message(json.dumps({"envelope_id": envelope["envelope_id"]}))
        with trio.move_on_after(30) as quiet:
            await receive(ws)
        assert quiet.cancelled_caught
        stats = (await running.emu("GET", "/_emu/stats")).json()["socket_mode"]
        assert (stats["acked"], stats["redelivered"], stats["in_flight"]) == (1, 0, 0)


async def test_envelopes_wait_for_a_connection(
    running: InProcess, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(DEADLINE_S):
        room, alice = await room_with_alice(running, "queued")
        for text in ("a", "b"):
            await running.api("chat.postMessage", alice, channel=room, text=text)
        await trio.sleep(50)  # no app connected for a while: nothing expires
        ws = await open_app_socket(running, nursery)
        texts = [(await receive(ws))["payload"]["event"]["text"] for _ in range(2)]
        assert texts == ["a", "b"]


async def test_envelopes_are_spread_over_the_apps_connections(
    running: InProcess, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(DEADLINE_S):
        room, alice = await room_with_alice(running, "balanced")
        one = await open_app_socket(running, nursery)
        two = await open_app_socket(running, nursery)
        for text in ("a", "b", "c", "d"):
            await running.api("chat.postMessage", alice, channel=room, text=text)
        got_one = [(await receive(one))["payload"]["event"]["text"] for _ in range(2)]
        got_two = [(await receive(two))["payload"]["event"]["text"] for _ in range(2)]
        assert sorted(got_one + got_two) == ["a", "b", "c", "d"] and len(set(got_one)) == 2


async def test_refresh_requested_closes_the_connection_after_a_grace(
    running: InProcess, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(DEADLINE_S):
        room, alice = await room_with_alice(running, "refresh")
        ws = await open_app_socket(running, nursery)
        start = trio.current_time()
        reply = await running.emu("POST", "/_emu/faults", json={"disconnect": "refresh_requested"})
        assert reply.json()["disconnected"] == 1
        notice = await receive(ws)
        assert (notice["type"], notice["reason"]) == ("disconnect", "refresh_requested")
        await running.api("chat.postMessage", alice, channel=room, text="for the next socket")
        with pytest.raises(trio_websocket.ConnectionClosed):
            await ws.get_message()  # no envelope on a refreshed socket; it closes after 10 s
        assert trio.current_time() - start == pytest.approx(10.0)
        fresh = await open_app_socket(running, nursery)
        assert (await receive(fresh))["payload"]["event"]["text"] == "for the next socket"


async def test_warning_and_link_disabled(
    running: InProcess, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(DEADLINE_S):
        ws = await open_app_socket(running, nursery)
        await running.emu("POST", "/_emu/faults", json={"disconnect": "warning"})
        assert (await receive(ws))["reason"] == "warning"
        await running.emu("POST", "/_emu/faults", json={"disconnect": "link_disabled"})
        assert (await receive(ws))["reason"] == "link_disabled"
        with pytest.raises(trio_websocket.ConnectionClosed):
            await ws.get_message()


async def test_tickets_are_single_use(
    running: InProcess, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(DEADLINE_S):
        url = (
            await running.api("apps.connections.open", running.emulator.credentials.app_token)
        ).json()["url"]
        ws = await trio_websocket.connect_websocket_url(nursery, url)
        assert (await receive(ws))["type"] == "hello"
        with pytest.raises(trio_websocket.ConnectionRejected) as refused:
            async with trio_websocket.open_websocket_url(url):
                pass
        assert refused.value.status_code == 403
