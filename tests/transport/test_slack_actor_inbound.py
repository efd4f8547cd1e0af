"""Inbound Slack traffic through the actor, against the real emulator, in every mode.

What people do in Slack (post in a room, click, run /end-takeover, go away) must reach the
domain as typed facts, once, in order; what the app does itself must not.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from actors.ports import (
    EndTakeoverRequested,
    OfferAnswered,
    OfferView,
    OpenRoom,
    PostOffer,
    PresenceChanged,
    RelayToRoom,
    RoomMessagePosted,
    RoomOpened,
)
from actors.runtime import Reply
from tests.transport.slack_actor_harness import Harness, line, slack_harness
from transport.slack_decode import InboundRequest
from transport.slack_inbound import ONLY_MEMBERS

DEADLINE = 15
MODES = ["emulator", "rtm", "events"]


async def open_room(h: Harness, customer: str = "c1", agent: str = "alice") -> RoomOpened:
    transcript = (line("customer", "hello"), line("bot", "hi!"))
    opened: RoomOpened = await h.ask(
        lambda r: OpenRoom(f"t_{customer}", customer, "Carol", h.id(agent), transcript, r)
    )
    return opened


async def say(h: Harness, who: str, channel: str, text: str) -> str:
    answer = await h.api_as(who, "chat.postMessage", channel=channel, text=text)
    return str(answer["ts"])


@pytest.mark.parametrize("mode", MODES)
async def test_people_in_rooms_reach_the_domain_and_the_apps_own_posts_do_not(mode: Any) -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness(mode=mode) as h:
            room = await open_room(h)  # header and transcript: the app's own posts
            await h.send(RelayToRoom("t_c1", room.room_id, line("customer", "relayed")))
            await h.settle()
            ts = await say(
                h, "alice", room.room_id, "Hi Carol, <@U1> &amp; <https://x.example|docs>"
            )
            fact = await h.domain.next_fact()
            assert fact == RoomMessagePosted(
                room.room_id,
                h.id("alice"),
                "Hi Carol, @U1 & docs (https://x.example)",
                f"{room.room_id}:{ts}",
            )
            assert h.domain.pending() == []


@pytest.mark.parametrize("mode", MODES)
async def test_many_room_messages_arrive_once_in_order(mode: Any) -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness(mode=mode) as h:
            room = await open_room(h)
            for n in range(20):
                await say(h, "alice", room.room_id, f"m{n}")
            texts = [(await h.domain.next_fact()).text for _ in range(20)]  # type: ignore[union-attr]
            assert texts == [f"m{n}" for n in range(20)]


@pytest.mark.parametrize("mode", MODES)
async def test_offer_clicks_and_end_takeover_reach_the_domain(mode: Any) -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness(mode=mode) as h:
            alice = h.id("alice")
            view = OfferView("o_1", "e_1", alice, "c1", "Carol", "help", (), 1.7e9)
            await h.send(PostOffer(view))
            await h.settle()
            dm = await h.dm_of("alice")
            assert dm is not None
            (offer,) = await h.messages(dm["id"])
            await h.click("alice", dm["id"], offer["ts"], "offer_ignore")
            assert await h.domain.next_fact() == OfferAnswered("o_1", alice, False)
            room = await open_room(h)
            header = (await h.messages(room.room_id))[0]
            await h.click("alice", room.room_id, header["ts"], "takeover_end")
            assert await h.domain.next_fact() == EndTakeoverRequested(room.room_id, alice)
            await h.command("alice", room.room_id, "/end-takeover")
            assert await h.domain.next_fact() == EndTakeoverRequested(room.room_id, alice)


async def test_end_takeover_outside_a_room_is_refused_with_a_note() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            other = await h.api_as("alice", "conversations.create", name="random-talk")
            channel = other["channel"]["id"]
            await h.api_as(
                "alice",
                "conversations.invite",
                channel=channel,
                users=h.emulator.credentials.bot_user_id,
            )
            await h.command("alice", channel, "/end-takeover")

            async def note() -> list[Any]:
                seen = await h.messages(channel, user=h.id("alice"))
                return [m for m in seen if m.get("ephemeral")]

            (refusal,) = await h.until(note)
            assert "only in a takeover room" in refusal["text"]
            assert h.domain.pending() == []


async def test_only_room_members_may_end_the_takeover() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room = await open_room(h, agent="alice")
            # Slack's UI only lets members act in a private room; a request naming someone
            # else (a forged or stale payload) must still be refused.
            forged = {
                "command": "/end-takeover",
                "user_id": h.id("bob"),
                "channel_id": room.room_id,
            }
            await h.actor.inbound.submit(InboundRequest("slash_commands", forged, "http"))
            await h.until(lambda: _dm_note(h, "bob"))
            note = await _dm_note(h, "bob")
            assert note == ONLY_MEMBERS
            await h.command("alice", room.room_id, "/end-takeover")
            assert await h.domain.next_fact() == EndTakeoverRequested(room.room_id, h.id("alice"))


async def _dm_note(h: Harness, who: str) -> str | None:
    dm = await h.dm_of(who)
    if dm is None:
        return None
    messages = await h.messages(dm["id"])
    return messages[-1]["text"] if messages else None


async def test_direct_messages_to_the_app_are_not_relayed() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            view = OfferView("o_1", "e_1", h.id("alice"), "c1", "Carol", "help", (), 1.7e9)
            await h.send(PostOffer(view))
            await h.settle()
            dm = await h.dm_of("alice")
            assert dm is not None
            await say(h, "alice", dm["id"], "what is this?")
            room = await open_room(h)
            await say(h, "alice", room.room_id, "in the room")
            fact = await h.domain.next_fact()
            assert isinstance(fact, RoomMessagePosted) and fact.text == "in the room"


async def test_messages_posted_while_the_room_opens_wait_until_it_is_open() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            slow = {"delay": {"share": 1.0, "seconds": 0.3, "methods": ["pins.add"]}}
            await h.emu("POST", "/_emu/faults", json=slow)
            reply: Reply[RoomOpened] = Reply()
            transcript = (line("customer", "hello"),)
            await h.send(OpenRoom("t_1", "c1", "Carol", h.id("alice"), transcript, reply))

            async def invited() -> str | None:
                rooms = [c for c in await h.channels() if c["name"] == "swivl_user_c1"]
                return rooms[0]["id"] if rooms and h.id("alice") in rooms[0]["members"] else None

            channel = await h.until(invited)
            await say(h, "alice", channel, "early bird")
            fact = await h.domain.next_fact()
            assert reply.answered  # the domain had its room before the message
            assert isinstance(fact, RoomMessagePosted) and fact.text == "early bird"


async def test_rtm_presence_changes_reach_the_domain() -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness(mode="rtm", agents=None) as h:
            alice, bob = h.id("alice"), h.id("bob")
            first = {await h.domain.next_fact(), await h.domain.next_fact()}
            assert first == {PresenceChanged(alice, True), PresenceChanged(bob, True)}
            await h.api_as("alice", "users.setPresence", presence="away")
            assert await h.domain.next_fact() == PresenceChanged(alice, False)
            await h.api_as("alice", "users.setPresence", presence="auto")
            assert await h.domain.next_fact() == PresenceChanged(alice, True)
            assert h.actor.statistics().presence.polls == 2  # one round at connect, then RTM


@pytest.mark.parametrize(
    "fault", [{"drop_sockets": "socket_mode"}, {"disconnect": "refresh_requested"}]
)
async def test_a_lost_socket_loses_and_duplicates_nothing(fault: dict[str, Any]) -> None:
    with trio.fail_after(DEADLINE):
        async with slack_harness() as h:
            room = await open_room(h)
            for n in range(30):
                if n == 10:
                    await h.emu("POST", "/_emu/faults", json=fault)
                await say(h, "alice", room.room_id, f"m{n}")
            texts = [(await h.domain.next_fact()).text for _ in range(30)]  # type: ignore[union-attr]
            assert texts == [f"m{n}" for n in range(30)]
            await h.command("alice", room.room_id, "/end-takeover")
            assert await h.domain.next_fact() == EndTakeoverRequested(room.room_id, h.id("alice"))
            assert h.domain.pending() == []
