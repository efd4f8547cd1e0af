"""A room's first facts: what Slack delivers right after answering `OpenRoom` is not lost.

The Slack side holds the messages and end requests of a room that is still being opened and
delivers them the moment it has answered `OpenRoom`, before the domain's opener task has even
resumed. The domain must route them to the session already, and the session must take them
after the room is ready (agent_joined first), not drop them as belonging to an unknown room.
"""

from __future__ import annotations

import trio
import trio.testing

from actors.facts import AgentMessaged
from actors.ports import EndTakeoverRequested, OfferAnswered, OpenRoom, RoomMessagePosted
from tests.actors.harness import Harness, running


async def accepted_while_slack_holds_the_room(h: Harness) -> tuple[str, str]:
    h.slack.hold_rooms = True
    session = await h.customer()
    await h.escalate(session)
    offer = await h.slack.next_offer()
    await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
    await h.slack.next(OpenRoom)
    await h.settle()
    return session, offer.agent_id


async def test_a_message_delivered_as_soon_as_the_room_is_answered_reaches_the_customer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        session, agent = await accepted_while_slack_holds_the_room(h)
        h.slack.release_rooms()  # answers OpenRoom; nothing else has run yet
        [room] = h.slack.rooms.values()
        await h.domain.deliver(RoomMessagePosted(room.room_id, agent, "Hi, I'm here", "m1"))
        await h.domain.deliver(RoomMessagePosted(room.room_id, agent, "How can I help?", "m2"))
        await h.settle()
        events = h.domain.events_after(session, 0)
        assert [(e.type, e.text) for e in events[-3:]] == [
            ("agent_joined", None),
            ("agent_message", "Hi, I'm here"),
            ("agent_message", "How can I help?"),
        ]
        assert [f.message_id for f in h.sink.of_type(AgentMessaged)] == ["m1", "m2"]
        # Slack redelivering the first one later changes nothing.
        await h.domain.deliver(RoomMessagePosted(room.room_id, agent, "Hi, I'm here", "m1"))
        await h.settle()
        assert len(h.domain.events_after(session, 0)) == len(events)


async def test_an_end_delivered_as_soon_as_the_room_is_answered_ends_the_takeover(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        session, agent = await accepted_while_slack_holds_the_room(h)
        h.slack.release_rooms()
        [room] = h.slack.rooms.values()
        await h.domain.deliver(EndTakeoverRequested(room.room_id, agent))
        await h.settle()
        assert h.event_types(session)[-2:] == ["agent_joined", "agent_left"]
        assert [c.room_id for c in h.slack.closed_rooms()] == [room.room_id]
        assert h.domain.mode(session) == "bot"
        assert h.agent(agent).load == 0


async def test_a_room_whose_session_ended_meanwhile_is_closed_and_forgotten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        session, agent = await accepted_while_slack_holds_the_room(h)
        await h.domain.close_session(session)
        h.slack.release_rooms()
        [room] = h.slack.rooms.values()
        await h.domain.deliver(RoomMessagePosted(room.room_id, agent, "anyone?", "m1"))
        await h.settle()
        assert [c.room_id for c in h.slack.closed_rooms()] == [room.room_id]
        assert "agent_message" not in h.event_types(session)
        # the room no longer routes anywhere
        await h.domain.deliver(RoomMessagePosted(room.room_id, agent, "hello?", "m2"))
        await h.settle()
        assert h.sink.of_type(AgentMessaged) == []
