"""RTM, proven with slack_sdk's RTMClient (rtm_v2), plus the protocol details in-process."""

from __future__ import annotations

import json
import queue
from typing import Any

import trio
import trio_websocket
from slack_sdk.rtm_v2 import RTMClient

from tests.emulator.conftest import InProcess, ThreadedEmulator

WAIT_S = 10


def test_presence_sub_then_set_presence_yields_presence_change(
    emulator_thread: ThreadedEmulator,
) -> None:
    alice = emulator_thread.user("alice")
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    rtm = RTMClient(
        token=emulator_thread.emulator.credentials.bot_token, base_url=emulator_thread.api_url
    )

    @rtm.on("*")
    def record(client: RTMClient, event: dict[str, Any]) -> None:
        events.put(event)

    rtm.connect()
    try:
        assert events.get(timeout=WAIT_S)["type"] == "hello"
        rtm.send({"type": "presence_sub", "ids": [alice["id"]]})
        rtm.send({"type": "ping", "id": 7})  # answered in order: the subscription is in place
        assert events.get(timeout=WAIT_S) == {"type": "pong", "reply_to": 7}
        emulator_thread.user_client("alice").users_setPresence(presence="away")
        assert events.get(timeout=WAIT_S) == {
            "type": "presence_change",
            "user": alice["id"],
            "presence": "away",
        }
        emulator_thread.user_client("alice").users_setPresence(presence="auto")
        assert events.get(timeout=WAIT_S) == {
            "type": "presence_change",
            "user": alice["id"],
            "presence": "active",
        }
    finally:
        rtm.auto_reconnect_enabled = False
        emulator_thread.emu("POST", "/_emu/faults", json={"drop_sockets": "rtm"})
        rtm.close()


async def open_rtm(
    emu: InProcess, nursery: trio.Nursery, token: str, **args: str
) -> trio_websocket.WebSocketConnection:
    url = (await emu.api("rtm.connect", token, **args)).json()["url"]
    ws = await trio_websocket.connect_websocket_url(nursery, url)
    assert json.loads(await ws.get_message()) == {"type": "hello"}
    return ws


async def next_event(ws: trio_websocket.WebSocketConnection) -> dict[str, Any]:
    return json.loads(await ws.get_message())


async def test_rtm_protocol(running: InProcess, nursery: trio.Nursery) -> None:
    with trio.fail_after(10):
        users = {u.name: u for u in running.emulator.workspace.humans()}
        alice, bob = users["alice"], users["bob"]
        ws = await open_rtm(running, nursery, alice.token, batch_presence_aware="1")
        await ws.send_message(
            json.dumps({"type": "presence_query", "ids": [alice.id, bob.id, "U404"]})
        )
        assert await next_event(ws) == {
            "type": "presence_change",
            "users": [alice.id, bob.id],
            "presence": "active",
        }
        await ws.send_message(json.dumps({"type": "presence_sub", "ids": [bob.id]}))
        await running.api("users.setPresence", bob.token, presence="away")
        assert await next_event(ws) == {
            "type": "presence_change",
            "users": [bob.id],
            "presence": "away",
        }

        general = next(
            c.id for c in running.emulator.workspace.channels.values() if c.name == "general"
        )
        await running.api("chat.postMessage", bob.token, channel=general, text="morning")
        event = await next_event(ws)
        assert (event["type"], event["channel"], event["user"], event["text"]) == (
            "message",
            general,
            bob.id,
            "morning",
        )

        await ws.send_message(
            json.dumps({"id": 3, "type": "message", "channel": general, "text": "hi bob"})
        )
        echo, reply = await next_event(ws), await next_event(ws)
        assert (echo["type"], echo["text"], echo["user"]) == ("message", "hi bob", alice.id)
        assert (reply["ok"], reply["reply_to"], reply["text"], reply["ts"]) == (
            True,
            3,
            "hi bob",
            echo["ts"],
        )

        await ws.send_message(
            json.dumps({"id": 4, "type": "message", "channel": "C404", "text": "x"})
        )
        assert await next_event(ws) == {
            "ok": False,
            "reply_to": 4,
            "error": {"code": 2, "msg": "channel_not_found"},
        }
        await ws.send_message("not json")
        assert (await next_event(ws))["type"] == "error"
        await ws.send_message(json.dumps({"id": 5, "type": "ping", "time": 12}))
        assert await next_event(ws) == {"time": 12, "type": "pong", "reply_to": 5}


async def test_rtm_tickets_are_single_use(running: InProcess, nursery: trio.Nursery) -> None:
    with trio.fail_after(10):
        url = (await running.api("rtm.connect", running.emulator.credentials.bot_token)).json()[
            "url"
        ]
        await trio_websocket.connect_websocket_url(nursery, url)
        try:
            async with trio_websocket.open_websocket_url(url):
                raise AssertionError("a used ticket was accepted")
        except trio_websocket.ConnectionRejected as refused:
            assert refused.status_code == 403
