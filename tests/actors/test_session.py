"""Sessions (design §2.1, §2.7, §2.8): triggers, searching, relay, end, close, the customer port."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.errors import InvalidInput, SessionClosed, UnknownSession
from actors.facts import (
    AgentMessaged,
    BotReplied,
    CustomerMessaged,
    EscalationStarted,
    SessionEnded,
    TakeoverEnded,
    TakeoverStarted,
)
from actors.ports import (
    CloseRoom,
    EndTakeoverRequested,
    OfferAnswered,
    OpenRoom,
    PresenceChanged,
    RelayToRoom,
    RoomMessagePosted,
)
from tests.actors.harness import EPOCH, Harness, running


async def taken_over(h: Harness, customer_id: str = "cust-1") -> tuple[str, str, str]:
    """A session whose escalation U01 accepted; returns (session, room id, agent)."""
    session = await h.customer(customer_id)
    await h.escalate(session)
    offer = await h.slack.next_offer()
    await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
    await h.slack.next(OpenRoom)
    await h.settle()
    [started] = h.sink.of_type(TakeoverStarted)
    assert started.room_id is not None
    return session, started.room_id, offer.agent_id


async def test_confident_answers_stay_with_the_bot(autojump_clock: trio.testing.MockClock) -> None:
    async with running(greeting="Hello!") as h:
        session = await h.customer()
        seq = await h.domain.customer_says(session, "What are your opening hours?")
        await h.settle()
        events = h.domain.events_after(session, 0)
        assert [(e.seq, e.type) for e in events] == [
            (1, "bot_message"),
            (2, "customer_message"),
            (3, "bot_message"),
        ]
        assert seq == 2 and events[2].text == "You said: What are your opening hours?"
        assert h.sink.of_type(EscalationStarted) == []


async def test_low_confidence_escalates(autojump_clock: trio.testing.MockClock) -> None:
    async with running() as h:
        session = await h.customer()
        await h.domain.customer_says(session, "unsure about my invoice")
        offer = await h.slack.next_offer()
        assert offer.last_message == "unsure about my invoice"
        [started] = h.sink.of_type(EscalationStarted)
        assert started.trigger == "low_confidence"
        assert h.event_types(session) == ["customer_message", "searching"]


async def test_searching_joins_the_transcript_and_says_still_looking_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        session = await h.customer()
        await h.escalate(session)
        await h.slack.next_offer()
        for text in ("human!!", "are you there? human", "hello?"):
            await h.domain.customer_says(session, text)
        await h.settle()
        assert len(h.sink.of_type(EscalationStarted)) == 1
        assert len(h.slack.offers()) == 1
        events = h.domain.events_after(session, 0)
        assert [e.type for e in events] == [
            "customer_message",
            "searching",
            "customer_message",
            "bot_message",
            "customer_message",
            "customer_message",
        ]
        assert events[3].text == h.texts.still_looking_text
        assert [line.text for line in h.domain.transcript(session)][-3:] == [
            h.texts.still_looking_text,
            "are you there? human",
            "hello?",
        ]


async def test_relay_both_ways_in_order_exactly_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        session, room_id, agent = await taken_over(h)
        for text in ("one", "two", "three"):
            await h.domain.customer_says(session, text)
        for n, text in enumerate(("hi, I'm here", "how can I help?")):
            posted = RoomMessagePosted(room_id, agent, text, f"m{n}")
            await h.domain.deliver(posted)
            await h.domain.deliver(posted)  # a Slack redelivery
        await trio.sleep(7)
        await h.domain.deliver(RoomMessagePosted(room_id, agent, "still there?", "m2"))
        await h.settle()
        assert [(r.room_id, r.line.text) for r in h.slack.relays()] == [
            (room_id, "one"),
            (room_id, "two"),
            (room_id, "three"),
        ]
        agent_events = [e for e in h.domain.events_after(session, 0) if e.type == "agent_message"]
        assert [e.text for e in agent_events] == ["hi, I'm here", "how can I help?", "still there?"]
        assert all(e.agent is not None and e.agent.id == agent for e in agent_events)
        assert len(h.sink.of_type(AgentMessaged)) == 3
        assert h.agent(agent).first_response_median_s == 0


async def test_customer_lines_while_the_room_opens_follow_the_transcript(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        h.slack.hold_rooms = True
        session = await h.customer()
        await h.escalate(session)
        offer = await h.slack.next_offer()
        await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        room = await h.slack.next(OpenRoom)
        seqs = [await h.domain.customer_says(session, t) for t in ("a", "b")]
        assert seqs == [3, 4]  # acknowledged while Slack is still opening the room
        assert h.slack.relays() == []
        assert [line.text for line in room.transcript] == ["I want a human", h.texts.searching_text]
        h.slack.release_rooms()
        await h.settle()
        assert [r.line.text for r in h.slack.relays()] == ["a", "b"]
        assert h.event_types(session)[-1] == "agent_joined"


async def test_end_takeover_hands_back_to_the_bot(autojump_clock: trio.testing.MockClock) -> None:
    async with running() as h:
        session, room_id, agent = await taken_over(h)
        await trio.sleep(300)
        await h.domain.deliver(EndTakeoverRequested(room_id, agent))
        await h.settle()
        last = h.domain.events_after(session, 0)[-1]
        assert (last.type, last.text) == ("agent_left", h.texts.agent_left_text)
        assert [(c.room_id, c.note) for c in h.slack.closed_rooms()] == [(room_id, None)]
        stats = h.agent(agent)
        assert (stats.load, stats.ended, stats.takeover_median_s) == (0, 1, 300)
        assert h.domain.mode(session) == "bot"
        [ended] = h.sink.of_type(TakeoverEnded)
        assert (ended.by, ended.at) == ("agent", EPOCH + 300)
        # the room is gone: later room messages and end requests are ignored
        await h.domain.deliver(RoomMessagePosted(room_id, agent, "late", "m9"))
        await h.domain.deliver(EndTakeoverRequested(room_id, agent))
        seq = await h.domain.customer_says(session, "thanks")
        assert h.domain.events_after(session, seq)[0].type == "bot_message"
        assert len(h.slack.relays()) == 0


async def test_customer_closing_ends_the_takeover_with_a_note(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        session, room_id, agent = await taken_over(h)
        await h.domain.close_session(session)
        await h.settle()
        [closed] = h.slack.closed_rooms()
        assert closed.room_id == room_id and closed.note
        assert h.agent(agent).load == 0
        assert h.event_types(session)[-1] == "closed"
        assert [f.by for f in h.sink.of_type(TakeoverEnded)] == ["customer"]
        assert len(h.sink.of_type(SessionEnded)) == 1
        with pytest.raises(SessionClosed):
            await h.domain.customer_says(session, "hello?")
        await h.domain.close_session(session)  # closing twice is harmless
        assert h.domain.stats().sessions_open == 0


async def test_a_returning_customer_keeps_the_transcript(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        first = await h.customer("returning")
        await h.domain.customer_says(first, "my first visit")
        await h.domain.close_session(first)
        second = await h.customer("returning")
        assert second != first
        await h.escalate(second)
        offer = await h.slack.next_offer()
        await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        room = await h.slack.next(OpenRoom)
        assert room.transcript[0].text == "my first visit"
        assert h.domain.events_after(second, 0)[0].text == "I want a human"  # seq per session


async def test_tokens_and_errors() -> None:
    async with running() as h:
        opened = await h.domain.open_session(None, None, None)
        assert len(opened.customer_id) == 16
        assert h.domain.check_token(opened.session_id, opened.token)
        assert not h.domain.check_token(opened.session_id, opened.token + "x")
        assert not h.domain.check_token("s_nope", opened.token)
        with pytest.raises(UnknownSession):
            await h.domain.customer_says("s_nope", "hi")
        with pytest.raises(UnknownSession):
            h.domain.events_after("s_nope", 0)
        with pytest.raises(InvalidInput):
            await h.domain.customer_says(opened.session_id, "   ")
        with pytest.raises(InvalidInput):
            await h.domain.open_session("bad id!", None, None)
        with pytest.raises(InvalidInput):
            await h.domain.open_session(None, "x" * 500, None)
        assert h.sink.of_type(CustomerMessaged) == []
        assert all(opened.token not in repr(f) for f in h.sink.facts)


async def test_wait_events_blocks_until_an_event(autojump_clock: trio.testing.MockClock) -> None:
    async with running() as h:
        session = await h.customer()
        got: list[float] = []

        async def waiter() -> None:
            events = await h.domain.wait_events(session, 0)
            got.append(trio.current_time())
            assert events[0].type == "customer_message"

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(3)
            assert got == []
            await h.domain.customer_says(session, "hi")
        assert got == [3]
        assert len(await h.domain.wait_events(session, 0)) == 2  # returns at once
        assert [e.seq for e in h.domain.events_after(session, 1)] == [2]


async def test_customer_says_waits_for_durability(autojump_clock: trio.testing.MockClock) -> None:
    async with running() as h:
        session = await h.customer()
        seq = await h.domain.customer_says(session, "hello")
        [fact] = h.sink.of_type(CustomerMessaged)
        assert (fact.seq, fact.text) == (seq, "hello")
        assert isinstance(h.sink.facts[-1], BotReplied)


async def test_unknown_slack_ids_are_ignored(autojump_clock: trio.testing.MockClock) -> None:
    async with running() as h:
        await h.domain.deliver(OfferAnswered("o_unknown", "U01", True))
        await h.domain.deliver(RoomMessagePosted("C_unknown", "U01", "hi", "m1"))
        await h.domain.deliver(EndTakeoverRequested("C_unknown", "U01"))
        await h.domain.deliver(PresenceChanged("U_STRANGER", True))
        await h.settle()
        assert h.slack.commands == []
        assert h.slack.of(CloseRoom) == [] and h.slack.of(RelayToRoom) == []
