"""Slack misbehaving during takeovers, with the emulator's fault knobs (POST /_emu/faults).

The daemon and the emulator run in the test's trio run (see conftest's `e2e_clock`): Retry-After
waits, injected delays, attempt timeouts and reconnect backoff run on virtual time. Whatever
Slack does, every line reaches the other side once and in order, and every escalation ends with
exactly one agent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from tests.e2e.e2e_emu import room_lines
from tests.e2e.e2e_flow import (
    accepting,
    end_by_command,
    escalate,
    heard_by,
    room_of,
    said_in_room,
    taken_over,
    talk,
)
from tests.e2e.e2e_rig import Customer, Stack, running_stack

LINES = 4


def agent_in(stack: Stack, room: dict[str, Any]) -> str:
    """The one agent (by name) among the room's members."""
    names = [name for name, user in stack.agents.items() if user["id"] in room["members"]]
    assert len(names) == 1, room
    return names[0]


async def assert_relayed_once_in_order(
    stack: Stack, customer: Customer, room_id: str, tag: str, said: list[str], typed: list[str]
) -> None:
    assert await said_in_room(stack, room_id, tag, len(said)) == said
    assert await heard_by(customer, tag, len(typed)) == typed


async def assert_nothing_doubled(stack: Stack, customers: list[Customer]) -> None:
    """After the end: no line twice in any room, no agent line twice at any customer."""
    for room in await stack.emu.rooms():
        lines = room_lines(await stack.emu.messages(room["id"]), "(customer)")
        relayed = [line for line in lines if " from the customer #" in line]
        assert len(relayed) == len(set(relayed)), room["name"]
    for customer in customers:
        await customer.poll(wait=0)
        heard = customer.texts("agent_message")
        assert len(heard) == len(set(heard))
        assert customer.count("agent_joined") == customer.count("agent_left")


@pytest.mark.parametrize("mode", ["socket", "rtm"])
async def test_sockets_dropped_mid_takeover_lose_and_double_nothing(
    mode: Any, tmp_path: Path, e2e_clock: MockClock
) -> None:
    with trio.fail_after(600):
        async with running_stack(mode, tmp_path) as stack, trio.open_nursery() as people:
            await stack.presence_known()
            await accepting(stack, people)
            ada = await stack.customer(name="Ada")
            await escalate(ada)
            room = await room_of(stack, ada)
            agent = agent_in(stack, room)
            await ada.wait_for("agent_joined")
            said, typed = await talk(stack, ada, agent, room["id"], "before", LINES)
            await assert_relayed_once_in_order(stack, ada, room["id"], "before", said, typed)

            # Every socket to the app closes at once; the talk and a new escalation go on.
            dropped = await stack.emu.faults(drop_sockets="all")
            assert dropped["dropped_socket_mode"] + dropped["dropped_rtm"] >= 1
            said, typed = await talk(stack, ada, agent, room["id"], "during", LINES)
            ben = await stack.customer(name="Ben")
            await escalate(ben)  # its offer is clicked while the app may be reconnecting
            await assert_relayed_once_in_order(stack, ada, room["id"], "during", said, typed)
            room2 = await room_of(stack, ben)
            agent2 = agent_in(stack, room2)
            await ben.wait_for("agent_joined")
            said2, typed2 = await talk(stack, ben, agent2, room2["id"], "after", LINES)
            await assert_relayed_once_in_order(stack, ben, room2["id"], "after", said2, typed2)

            await end_by_command(stack, agent, room["id"])
            await end_by_command(stack, agent2, room2["id"])
            await ada.wait_for("agent_left")
            await ben.wait_for("agent_left")
            await assert_nothing_doubled(stack, [ada, ben])
            totals = (await stack.stats())["escalations"]
            assert (totals["accepted"], totals["searching"]) == (2, 0)
            people.cancel_scope.cancel()


async def test_a_burst_of_429s_on_chat_post_message_delays_lines_but_keeps_them(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    with trio.fail_after(600):
        async with running_stack("socket", tmp_path) as stack, trio.open_nursery() as people:
            await stack.presence_known()
            await accepting(stack, people)
            ada = await stack.customer(name="Ada")
            await escalate(ada)
            room = await room_of(stack, ada)
            agent = agent_in(stack, room)
            await ada.wait_for("agent_joined")
            before = (await stack.emu.stats())["web_api"]["ratelimited"]

            await stack.emu.faults(
                ratelimit={"count": 8, "retry_after": 3, "methods": ["chat.postMessage"]}
            )
            started = trio.current_time()
            said, typed = await talk(stack, ada, agent, room["id"], "limited", 6)
            await assert_relayed_once_in_order(stack, ada, room["id"], "limited", said, typed)
            assert trio.current_time() - started >= 3  # the Retry-After was waited out
            assert (await stack.emu.stats())["web_api"]["ratelimited"] - before == 8

            await end_by_command(stack, agent, room["id"])
            await ada.wait_for("agent_left")
            await assert_nothing_doubled(stack, [ada])
            people.cancel_scope.cancel()


async def test_5xx_and_slow_answers_on_a_share_of_calls_lose_and_double_nothing(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    with trio.fail_after(1800):
        async with running_stack("socket", tmp_path) as stack, trio.open_nursery() as people:
            await stack.presence_known()
            await accepting(stack, people)
            # A quarter of the calls fail with 503, a fifth are held past the client's 10 s
            # attempt deadline (the emulator still serves them afterwards).
            await stack.emu.faults(
                seed=7,
                fail={"share": 0.25, "status": 503},
                delay={"share": 0.2, "seconds": 12},
            )
            customers = [await stack.customer(name=n) for n in ("Ada", "Ben", "Cleo")]
            async with trio.open_nursery() as nursery:
                for customer in customers:
                    nursery.start_soon(taken_over, customer)
            rooms = [await room_of(stack, c) for c in customers]
            assert len({r["id"] for r in rooms}) == 3
            talks = [
                await talk(stack, c, agent_in(stack, r), r["id"], f"c{i}", LINES)
                for i, (c, r) in enumerate(zip(customers, rooms, strict=True))
            ]
            for i, (c, r, (said, typed)) in enumerate(zip(customers, rooms, talks, strict=True)):
                await assert_relayed_once_in_order(stack, c, r["id"], f"c{i}", said, typed)
            for c, r in zip(customers, rooms, strict=True):
                await end_by_command(stack, agent_in(stack, r), r["id"])
                await c.wait_for("agent_left")
            await assert_nothing_doubled(stack, customers)
            stats = await stack.stats()
            # Every escalation ended once; each accepted one had one agent. (An accepted one
            # whose room Slack never opened told its customer nobody was available: asked again.)
            escalations = stats["escalations"]
            assert escalations["searching"] == 0
            started = sum(c.count("searching") for c in customers)
            assert started == sum(n for k, n in escalations.items() if k != "searching")
            assert sum(a["accepted"] for a in stats["agents"]) == escalations["accepted"]
            assert [c.count("agent_joined") for c in customers] == [1, 1, 1]
            injected = (await stack.emu.stats())["web_api"]["faults_injected"]
            assert injected > 0
            people.cancel_scope.cancel()


async def test_envelopes_redelivered_after_their_acks_were_lost_are_handled_once(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    with trio.fail_after(600):
        async with (
            running_stack("socket", tmp_path, relay=True) as stack,
            trio.open_nursery() as people,
        ):
            relay = stack.relay
            assert relay is not None
            await stack.presence_known()
            await accepting(stack, people)
            ada = await stack.customer(name="Ada")
            await escalate(ada)
            room = await room_of(stack, ada)
            agent = agent_in(stack, room)
            await ada.wait_for("agent_joined")

            # The network eats the app's acks of the room's messages and of the End button:
            # Slack sends each of those envelopes again (retry_attempt 1) after 3 s.
            def lost(envelope: dict[str, Any]) -> bool:
                first = envelope["retry_attempt"] == 0
                return first and ("again" in json.dumps(envelope) or is_click(envelope))

            relay.lose_ack = lost
            said, typed = await talk(stack, ada, agent, room["id"], "again", LINES)
            await assert_relayed_once_in_order(stack, ada, room["id"], "again", said, typed)
            # the agent's lines, and the app's own posts of the customer's (lines that waited
            # for the room's turn together are one post)
            posts = await stack.emu.messages(room["id"])
            expected = LINES + sum("again from the customer" in m["text"] for m in posts)
            await relay.wait_envelopes(lambda e: e["retry_attempt"] == 1, expected)
            header = (await stack.emu.messages(room["id"]))[0]
            await stack.emu.click(
                stack.agents[agent]["id"], header | {"channel": room["id"]}, "takeover_end"
            )
            await stack.emu.wait_archived(room["id"])
            await relay.wait_envelopes(lambda e: is_click(e) and e["retry_attempt"] == 1, 1)
            await ada.say("are you still there?")
            await ada.wait_for("bot_message", 2)

            await assert_nothing_doubled(stack, [ada])
            assert ada.texts("agent_message") == typed
            assert ada.count("agent_left") == 1
            assert len(relay.lost_acks) == expected + 1
            stats = await stack.agent_stats(agent)
            assert (stats["accepted"], stats["ended"], stats["load"]) == (1, 1, 0)
            people.cancel_scope.cancel()


def is_click(envelope: dict[str, Any]) -> bool:
    return bool(envelope["type"] == "interactive")
