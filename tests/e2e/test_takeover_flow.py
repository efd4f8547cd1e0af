"""Design §2 end to end: the daemon and the Slack emulator, in Socket Mode, RTM and Events API.

A customer talks through the customer API; the agents act through Slack's own surfaces in the
emulator (buttons clicked, messages posted with their user tokens, `/end-takeover`). The test
asserts what the emulator stored (`/_emu/channels`, `/_emu/messages`) and what the customer
received (`/events`), at exact virtual times under the autojump clock: both servers run in the
test's trio run, so the offer deadline and every other timer run on trio's clock while the
traffic between them is real loopback HTTP and WebSocket.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from tests.e2e.e2e_emu import PREFIX, has_buttons, room_lines
from tests.e2e.e2e_rig import Stack, running_stack

OFFER_TIMEOUT_S = 30.0
PINGS = "<!channel> <@U1> <http://x|y>"


def escaped(text: str) -> str:
    """What Slack must store for customer text: its three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        element["action_id"]
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for element in block["elements"]
    ]


async def accept_and_check_room(
    stack: Stack,
    agent: str,
    offer: dict[str, Any],
    customer_id: str,
    name: str,
    greeting: str | None = None,
) -> dict[str, Any]:
    """The agent accepts: the private room of that name, agent invited, header pinned first.
    `greeting`: the agent posts it as soon as the room appears (while it is still opening)."""
    agent_id = stack.agents[agent]["id"]
    await stack.emu.click(agent_id, offer, "offer_accept")
    room = await stack.emu.wait_room(name)
    if greeting is not None:
        await stack.emu.say(stack.agents[agent]["token"], room["id"], greeting)
    assert name.startswith(PREFIX + customer_id)
    assert room["is_private"] and not room["is_archived"]
    assert agent_id in room["members"]
    messages = await stack.emu.messages(room["id"])
    header = messages[0]
    assert room["pins"] == [header["ts"]] and header["pinned"]
    assert "takeover_end" in str(header["blocks"])
    resolved = await stack.emu.wait_resolved(agent_id, len(await stack.emu.offers(agent_id)))
    assert "Accepted" in resolved["text"] and room["id"] in resolved["text"]
    return room


async def transcript_in_room(stack: Stack, room: dict[str, Any], lines: int) -> list[str]:
    """The room's transcript posts (after the header), once `lines` lines are there."""

    def complete(messages: list[dict[str, Any]]) -> bool:
        return len(transcript(messages)) >= lines

    return transcript(await stack.emu.wait_messages(room["id"], complete))


def transcript(messages: list[dict[str, Any]]) -> list[str]:
    return [line for m in messages[1:] if m.get("username") for line in m["text"].split("\n")]


@pytest.mark.parametrize("mode", ["emulator", "socket", "rtm", "events", "rtm-http"])
async def test_offer_ignore_miss_accept_relay_and_both_ways_to_end(
    mode: Any, tmp_path: Path, e2e_clock: MockClock
) -> None:
    with trio.fail_after(600):
        async with running_stack(
            mode, tmp_path, routing={"offer_timeout_s": OFFER_TIMEOUT_S}
        ) as stack:
            emu, alice, bob, chloe = stack.emu, *stack.agents.values()
            await stack.presence_known()
            ada = await stack.customer(name="Ada")
            await ada.say("How long does shipping take?")
            assert "business days" in (await ada.wait_for("bot_message", 2))["text"]
            await ada.say("I want to talk to a human")
            await ada.wait_for("searching")

            # The offer DM: the customer's name, their last message, Accept and Ignore.
            offer = await emu.wait_offer(alice["id"])
            assert buttons(offer) == ["offer_accept", "offer_ignore"]
            assert "Ada" in str(offer["blocks"]) and "I want to talk to a human" in offer["text"]
            assert "<!date^" in str(offer["blocks"])  # the deadline in the agent's time zone
            channel = await emu.channel(offer["channel"])
            assert channel["is_im"] and alice["id"] in channel["members"]

            # Ignore: the DM says so, the next agent gets the offer, stats count it.
            await emu.click(alice["id"], offer, "offer_ignore")
            assert "Ignored" in (await emu.wait_resolved(alice["id"]))["text"]
            offer = await emu.wait_offer(bob["id"])
            offered_at = trio.current_time()

            # No answer: missed exactly at the deadline; then the third agent.
            missed = await emu.wait_resolved(bob["id"])
            assert trio.current_time() - offered_at == pytest.approx(OFFER_TIMEOUT_S)
            assert "Missed" in missed["text"] and not has_buttons(missed)
            offer = await emu.wait_offer(chloe["id"])
            stats = {a["id"]: a for a in (await stack.stats())["agents"]}
            assert (stats[alice["id"]]["offered"], stats[alice["id"]]["ignored"]) == (1, 1)
            assert (stats[bob["id"]]["offered"], stats[bob["id"]]["missed"]) == (1, 1)
            assert stats[alice["id"]]["missed"] == stats[bob["id"]]["ignored"] == 0

            # Accept: the room, the customer told who joined, the whole transcript in order.
            before = [e["text"] for e in ada.seen if e.get("text")]
            typed = ["Hi Ada, Chloe here"] + [f"agent line {i}" for i in range(5)]
            # The agent greets at once, while the app is still posting the transcript.
            room = await accept_and_check_room(
                stack, "chloe", offer, ada.customer_id, PREFIX + ada.customer_id, typed[0]
            )
            joined = await ada.wait_for("agent_joined")
            assert joined["agent"]["id"] == chloe["id"]
            assert joined["agent"]["real_name"] == "Chloe Lindqvist"
            assert joined["agent"]["title"] == "Support agent"
            assert await transcript_in_room(stack, room, len(before)) == [
                escaped(t) for t in before
            ]

            # Relay both ways, interleaved: each side gets the other's lines once, in order.
            said = [f"customer line {i}" for i in range(5)] + [PINGS, "a & b"]
            for mine, theirs in zip(said, typed[1:], strict=False):
                await ada.say(mine)
                await emu.say(chloe["token"], room["id"], theirs)
            for mine in said[len(typed) - 1 :]:
                await ada.say(mine)
            await ada.wait_for("agent_message", len(typed))
            messages = await emu.wait_messages(
                room["id"], lambda ms: len(room_lines(ms, "(customer)")) >= len(before) // 2 + 7
            )
            relayed = room_lines(messages, "(customer)")[-len(said) :]
            assert relayed == [escaped(t) for t in said]
            assert ada.texts("agent_message") == typed
            # A customer's <!channel>, <@U1> or link pings and links nobody in Slack.
            stored = [m["text"] for m in messages]
            lines = [line for text in stored for line in text.split("\n")]
            assert "&lt;!channel&gt; &lt;@U1&gt; &lt;http://x|y&gt;" in lines
            assert not any("<!channel>" in t or "<@U1>" in t or "<http" in t for t in stored)

            # /end-takeover: the room archived, the customer back with the bot.
            await emu.command(chloe["id"], room["id"], "/end-takeover")
            await emu.wait_archived(room["id"])
            left = await ada.wait_for("agent_left")
            await ada.say("How much does shipping cost?")
            answer = await ada.wait_for("bot_message", 3)
            assert answer["seq"] > left["seq"] and "ship" in answer["text"].lower()
            chloe_stats = await stack.agent_stats("chloe")
            assert chloe_stats["accepted"] == chloe_stats["ended"] == 1
            assert chloe_stats["load"] == 0

            # The customer asks again: the next free room name, ended with the button.
            await ada.say("human please")
            await ada.wait_for("searching", 2)
            offer = await emu.wait_offer(alice["id"], 2)  # idle longest, not excluded any more
            before = [e["text"] for e in ada.seen if e.get("text")]
            room2 = await accept_and_check_room(
                stack, "alice", offer, ada.customer_id, f"{PREFIX}{ada.customer_id}-2"
            )
            await ada.wait_for("agent_joined", 2)
            assert await transcript_in_room(stack, room2, len(before)) == [
                escaped(t) for t in before
            ]
            header = (await emu.messages(room2["id"]))[0]
            await emu.click(alice["id"], header | {"channel": room2["id"]}, "takeover_end")
            await emu.wait_archived(room2["id"])
            await ada.wait_for("agent_left", 2)
            await ada.say("thanks, bye")
            assert (await ada.wait_for("bot_message", 4))["seq"] > ada.seen[-2]["seq"]

            totals = await stack.stats()
            assert totals["escalations"]["accepted"] == 2
            assert totals["escalations"]["searching"] == 0
            assert [a["load"] for a in totals["agents"]] == [0, 0, 0]
            # The agents' own lines never came back to the room as the customer's.
            assert not any(t in room_lines(messages, "(customer)") for t in typed)
