"""Restarts through the facade: what comes back after a crash and how the domain goes on.

A crash is the journal as it stood at some moment (`list(h.sink.facts)` then); the restarted
domain is rebuilt from it with a fresh fake Slack. Times are exact under the autojump clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import pytest
import trio

from actors.errors import SessionClosed
from actors.facts import (
    AgentMessaged,
    BotReplied,
    CustomerMessaged,
    EscalationEnded,
    Fact,
    OfferEnded,
    OfferMade,
    RoomRequested,
    SessionEnded,
    TakeoverEnded,
    TakeoverStarted,
)
from actors.ports import (
    CloseRoom,
    EndTakeoverRequested,
    FetchRoomMessages,
    OfferAnswered,
    OpenRoom,
    PostOffer,
    PresenceChanged,
    ResolveOffer,
    RoomMessagePosted,
    TellTooLate,
)
from actors.restore import RESEND_WINDOW_S
from actors.session_takeover import CUSTOMER_LEFT_NOTE
from tests.actors.harness import Harness, running
from tests.actors.restore_harness import restarted

F = TypeVar("F")


def until(facts: list[Fact], kind: type, n: int = 1) -> list[Fact]:
    """The journal of a crash right after the `n`th fact of `kind` was written."""
    seen = 0
    for i, fact in enumerate(facts):
        if isinstance(fact, kind):
            seen += 1
            if seen == n:
                return facts[: i + 1]
    raise AssertionError(f"no {n}th {kind.__name__}")


def of(facts: list[Fact], kind: type[F]) -> list[F]:
    return [f for f in facts if isinstance(f, kind)]


@dataclass(frozen=True)
class Room:
    takeover_id: str
    room_id: str
    agent_id: str


async def accepted_takeover(h: Harness, customer: str = "c1") -> tuple[str, Room]:
    """A customer escalates, the first agent accepts, the room opens."""
    session = await h.customer(customer)
    await h.escalate(session)
    offer = await h.slack.next_offer()
    await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
    await h.settle()
    started = of(h.sink.facts, TakeoverStarted)[-1]
    assert started.room_id is not None
    return session, Room(started.takeover_id, started.room_id, offer.agent_id)


# --- sessions ------------------------------------------------------------------------------------


async def test_sessions_come_back_with_their_tokens_transcripts_and_events(autojump_clock):
    async with running(greeting="Hello there") as h:
        opened = await h.domain.open_session("c1", "Ada", "ada@example.com")
        sid = opened.session_id
        assert await h.domain.customer_says(sid, "hello") == 2
        other = await h.domain.open_session(None, None, None)
        await h.domain.close_session(other.session_id)
        await h.settle()
        facts = list(h.sink.facts)
        events, transcript = h.domain.events_after(sid, 0), h.domain.transcript(sid)
        assert h.domain.stats().sessions_open == 1
    async with restarted(facts) as r:
        assert r.domain.check_token(sid, opened.token)
        assert not r.domain.check_token(sid, other.token)
        assert r.domain.events_after(sid, 0) == events
        assert r.domain.transcript(sid) == transcript
        assert r.domain.mode(sid) == "bot" and r.domain.mode(other.session_id) == "closed"
        assert r.domain.stats().sessions_open == 1
        assert r.sink.facts == []  # not greeted again, nothing else owed
        assert await r.domain.customer_says(sid, "again") == len(events) + 1
        assert [e.type for e in r.domain.events_after(sid, len(events))] == [
            "customer_message",
            "bot_message",
        ]
        with pytest.raises(SessionClosed):
            await r.domain.customer_says(other.session_id, "anyone?")


async def test_a_message_the_bot_never_answered_is_answered_after_the_restart(autojump_clock):
    async with running() as h:
        sid = await h.customer("c1")
        await h.domain.customer_says(sid, "where is my order")
        await h.settle()
        crash = until(h.sink.facts, CustomerMessaged)
    async with restarted(crash) as r:
        assert [(type(f), getattr(f, "text", None)) for f in r.sink.facts] == [
            (BotReplied, "You said: where is my order")
        ]
        assert [e.seq for e in r.domain.events_after(sid, 0)] == [1, 2]


# --- escalations ---------------------------------------------------------------------------------


async def test_a_searching_escalation_resumes_its_chain_with_the_pending_offer_withdrawn(
    autojump_clock,
):
    async with running(max_tries=5) as h:
        sid = await h.customer("c1")
        await h.escalate(sid)
        first = await h.slack.next_offer()
        await h.domain.deliver(OfferAnswered(first.offer_id, first.agent_id, False))
        second = await h.slack.next_offer()
        await h.settle()
        crash = list(h.sink.facts)
    assert (first.agent_id, second.agent_id) == ("U01", "U02")
    t0 = trio.current_time()
    async with restarted(crash, max_tries=5) as r:
        # the pending offer is withdrawn (nobody blamed), its DM updated, the chain goes on
        assert of(r.sink.facts, OfferEnded) == [
            OfferEnded(
                second.offer_id, second.escalation_id, "U02", "withdrawn", r.sink.facts[0].at
            )
        ]
        assert ResolveOffer(second.offer_id, "U02", "withdrawn") in r.slack.of(ResolveOffer)
        third = await r.slack.next_offer()
        assert third.agent_id == "U03"  # U01 ignored it; U03 has been idle longest
        assert (r.domain.mode(sid), third.escalation_id) == ("searching", first.escalation_id)
        await trio.sleep(45)  # U03 misses it: U02 (withdrawn, not excluded) comes next
        fourth = await r.slack.next_offer()
        assert (fourth.agent_id, trio.current_time()) == ("U02", t0 + 45)
        await r.domain.deliver(OfferAnswered(fourth.offer_id, "U02", True))
        await r.settle()
        assert r.domain.mode(sid) == "takeover"
        u02 = r.agent("U02")
        assert (u02.offered, u02.withdrawn, u02.accepted, u02.pending, u02.load) == (2, 1, 1, 0, 1)
        (ended,) = of(r.sink.facts, EscalationEnded)
        assert (ended.escalation_id, ended.outcome) == (first.escalation_id, "accepted")
        esc = next(
            e for e in r.domain.stats().escalations if e.escalation_id == ended.escalation_id
        )
        assert [(o.agent_id, o.outcome) for o in esc.offers] == [
            ("U01", "ignored"),
            ("U02", "withdrawn"),
            ("U03", "missed"),
            ("U02", "accepted"),
        ]


async def test_resumed_escalations_wait_until_every_agent_has_reported_presence(autojump_clock):
    async with running() as h:
        sid = await h.customer("c1")
        await h.escalate(sid)
        await h.slack.next_offer()
        await h.settle()
        crash = list(h.sink.facts)
    async with restarted(crash, present=()) as r:
        t0 = trio.current_time()
        await trio.sleep(10)
        assert r.slack.offers() == []  # nobody's presence is known yet: no hasty "nobody"
        for agent in ("U01", "U02", "U03"):
            await r.domain.deliver(PresenceChanged(agent, True))
        offer = await r.slack.next_offer()
        assert trio.current_time() == t0 + 10 and r.domain.mode(sid) == "searching"
        assert offer.escalation_id == of(crash, OfferMade)[0].escalation_id


async def test_without_presence_from_everyone_the_chain_goes_on_after_the_grace(autojump_clock):
    async with running() as h:
        sid = await h.customer("c1")
        await h.escalate(sid)
        await h.slack.next_offer()
        crash = list(h.sink.facts)
    t0 = trio.current_time()
    async with restarted(crash, present=("U03",)) as r:
        offer = await r.slack.next_offer()
        assert (offer.agent_id, trio.current_time()) == ("U03", t0 + 30.0)
        assert r.domain.mode(sid) == "searching"


async def test_an_accepted_offer_whose_escalation_end_was_lost_opens_the_room(autojump_clock):
    async with running() as h:
        sid, room = await accepted_takeover(h)
        crash = until(h.sink.facts, OfferEnded)
        offer_id = of(crash, OfferEnded)[0].offer_id
    async with restarted(crash) as r:
        kinds = [type(f) for f in r.sink.facts]
        assert kinds == [EscalationEnded, RoomRequested, TakeoverStarted]
        assert r.sink.facts[0].outcome == "accepted"
        (opened,) = r.slack.of(OpenRoom)
        assert opened.resume is False and opened.agent_id == room.agent_id
        assert r.slack.resolved()[offer_id].outcome == "accepted"
        assert r.domain.mode(sid) == "takeover"
        assert r.domain.events_after(sid, 0)[-1].type == "agent_joined"
        assert r.agent(room.agent_id).load == 1


async def test_an_exhausted_escalation_the_customer_never_heard_of_is_told(autojump_clock):
    async with running(present=()) as h:
        sid = await h.customer("c1")
        await h.escalate(sid)
        await h.settle()
        crash = until(h.sink.facts, EscalationEnded)
    async with restarted(crash) as r:
        (told,) = r.sink.facts
        assert isinstance(told, BotReplied) and told.kind == "no_agent_available"
        assert r.domain.mode(sid) == "bot"
        assert r.domain.stats().by_outcome["exhausted"] == 1


async def test_a_closed_session_cancels_the_escalation_it_left_behind(autojump_clock):
    async with running() as h:
        sid = await h.customer("c1")
        await h.escalate(sid)
        offer = await h.slack.next_offer()
        await h.settle()
        before = list(h.sink.facts)
        await h.domain.close_session(sid)
        await h.settle()
        crash = [*before, *of(h.sink.facts, SessionEnded)]  # the escalation's end never made it
    async with restarted(crash) as r:
        assert [type(f) for f in r.sink.facts] == [OfferEnded, EscalationEnded]
        assert r.sink.facts[0].outcome == "withdrawn"
        assert (r.sink.facts[1].outcome, r.sink.facts[1].reason) == ("cancelled", "customer_left")
        assert r.slack.resolved()[offer.offer_id].outcome == "withdrawn"
        assert r.domain.mode(sid) == "closed" and r.slack.offers() == []
        stats = r.domain.stats()
        assert (stats.by_outcome["cancelled"], stats.by_outcome["searching"]) == (1, 0)


async def test_clicks_on_offers_that_ended_before_the_restart_are_too_late(autojump_clock):
    async with running() as h:
        sid = await h.customer("c1")
        await h.escalate(sid)
        first = await h.slack.next_offer()
        await h.domain.deliver(OfferAnswered(first.offer_id, first.agent_id, False))
        pending = await h.slack.next_offer()
        await h.settle()
        crash = list(h.sink.facts)
    async with restarted(crash) as r:
        await r.domain.deliver(OfferAnswered(pending.offer_id, pending.agent_id, True))
        await r.domain.deliver(OfferAnswered(first.offer_id, first.agent_id, True))
        await r.settle()
        assert {c.offer_id for c in r.slack.of(TellTooLate)} == {pending.offer_id, first.offer_id}
        assert r.domain.mode(sid) == "searching" and of(r.sink.facts, EscalationEnded) == []


# --- takeovers -----------------------------------------------------------------------------------


async def test_an_open_takeover_comes_back_with_its_room_and_relays_once(autojump_clock):
    async with running() as h:
        sid, room = await accepted_takeover(h)
        await h.domain.deliver(RoomMessagePosted(room.room_id, room.agent_id, "Hi, I'm here", "m1"))
        seq = await h.domain.customer_says(sid, "my order is late")
        await h.settle()
        crash = list(h.sink.facts)
        events = h.domain.events_after(sid, 0)
    async with restarted(crash) as r:
        # what may not have reached the room before the crash goes again, marked as such
        (resent,) = r.slack.relays()
        assert resent.resent and resent.post_id == f"{room.takeover_id}-{seq}"
        assert (resent.room_id, resent.line.text) == (room.room_id, "my order is late")
        assert r.slack.of(ResolveOffer)[-1].outcome == "accepted"
        # Slack redelivering a message seen before the crash changes nothing
        await r.domain.deliver(RoomMessagePosted(room.room_id, room.agent_id, "Hi, I'm here", "m1"))
        await r.domain.deliver(RoomMessagePosted(room.room_id, room.agent_id, "Found it", "m2"))
        new_seq = await r.domain.customer_says(sid, "thanks")
        await r.settle()
        after = r.domain.events_after(sid, len(events))
        assert [(e.type, e.text) for e in after] == [
            ("agent_message", "Found it"),
            ("customer_message", "thanks"),
        ]
        relay = r.slack.relays()[-1]
        assert (relay.post_id, relay.resent) == (f"{room.takeover_id}-{new_seq}", False)
        await r.domain.deliver(EndTakeoverRequested(room.room_id, room.agent_id))
        await r.settle()
        assert r.domain.mode(sid) == "bot"
        assert r.slack.closed_rooms() == [CloseRoom(room.takeover_id, room.room_id)]
        agent = r.agent(room.agent_id)
        assert (agent.load, agent.ended, agent.accepted) == (0, 1, 1)
        assert agent.first_response_median_s == 0.0  # counted once, before the crash
        (ended,) = of(r.sink.facts, TakeoverEnded)
        assert ended.text == r.texts.agent_left_text and ended.seq == new_seq + 1


async def test_room_messages_the_stopped_daemon_never_recorded_are_read_back(autojump_clock):
    async with running() as h:
        sid, room = await accepted_takeover(h)
        await trio.sleep(100)
        said = RoomMessagePosted(room.room_id, room.agent_id, "Hi, I'm here", "m1")
        await h.domain.deliver(said)
        await h.settle()
        crash = list(h.sink.facts)
        heard_at = of(crash, AgentMessaged)[-1].at
    # Slack delivered two more before the crash, which the journal never got
    lost = [
        RoomMessagePosted(room.room_id, room.agent_id, "Are you there?", "m2"),
        RoomMessagePosted(room.room_id, "U0COLLEAGUE", "I can help too", "m3"),
    ]
    history = {room.room_id: [said, *lost]}
    async with restarted(crash, room_messages=history) as r:
        (fetch,) = r.slack.of(FetchRoomMessages)
        assert (fetch.room_id, fetch.oldest) == (room.room_id, heard_at - 60.0)
        events = r.domain.events_after(sid, 0)
        assert [(e.type, e.text) for e in events[-3:]] == [
            ("agent_message", "Hi, I'm here"),
            ("agent_message", "Are you there?"),
            ("agent_message", "I can help too"),
        ]
        assert [f.message_id for f in of(r.sink.facts, AgentMessaged)] == ["m2", "m3"]
        await r.domain.deliver(lost[0])  # Slack's own redelivery later changes nothing
        await r.settle()
        assert len(r.domain.events_after(sid, 0)) == len(events)


async def test_a_room_opening_cut_short_is_resumed_for_the_same_takeover(autojump_clock):
    async with running() as h:
        h.slack.hold_rooms = True
        sid = await h.customer("c1")
        await h.escalate(sid)
        offer = await h.slack.next_offer()
        await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        await h.settle()
        waiting = await h.domain.customer_says(sid, "still there?")
        await h.settle()
        crash = list(h.sink.facts)
        (requested,) = of(crash, RoomRequested)
        (first_try,) = h.slack.of(OpenRoom)
    async with restarted(crash) as r:
        (again,) = r.slack.of(OpenRoom)
        assert again.resume and again.takeover_id == requested.takeover_id
        assert again.transcript == first_try.transcript
        assert len(again.transcript) == requested.transcript_lines
        (started,) = of(r.sink.facts, TakeoverStarted)
        assert started.takeover_id == requested.takeover_id and started.room_id is not None
        (relay,) = r.slack.relays()  # the line said while the room was opening follows it
        assert (relay.line.text, relay.post_id) == (
            "still there?",
            f"{started.takeover_id}-{waiting}",
        )
        assert r.domain.mode(sid) == "takeover"


async def test_what_the_agent_says_while_a_resumed_room_is_routed_reaches_the_customer(
    autojump_clock,
):
    async with running() as h:
        h.slack.hold_rooms = True
        sid = await h.customer("c1")
        await h.escalate(sid)
        offer = await h.slack.next_offer()
        await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        await h.settle()
        crash = list(h.sink.facts)
    async with restarted(crash, hold_rooms=True) as r:
        # the agent, invited before the crash, talks while the restarted opening runs
        await r.domain.deliver(RoomMessagePosted("C0001", offer.agent_id, "Hello?", "m1"))
        await r.domain.deliver(RoomMessagePosted("C0001", offer.agent_id, "Hello?", "m1"))
        assert r.domain.events_after(sid, 0)[-1].type == "searching"
        r.slack.release_rooms()  # Slack answers the resumed OpenRoom with that room
        await r.settle()
        assert [(e.type, e.text) for e in r.domain.events_after(sid, 0)][-2:] == [
            ("agent_joined", None),
            ("agent_message", "Hello?"),
        ]


async def test_a_room_opening_cut_short_after_the_customer_left_is_closed_with_a_note(
    autojump_clock,
):
    async with running() as h:
        h.slack.hold_rooms = True
        sid = await h.customer("c1")
        await h.escalate(sid)
        offer = await h.slack.next_offer()
        await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        await h.settle()
        await h.domain.close_session(sid)
        await h.settle()
        crash = list(h.sink.facts)
    async with restarted(crash) as r:
        (opened,) = r.slack.of(OpenRoom)
        room = r.slack.rooms[opened.takeover_id]
        assert r.slack.closed_rooms() == [
            CloseRoom(opened.takeover_id, room.room_id, CUSTOMER_LEFT_NOTE)
        ]
        (ended,) = of(r.sink.facts, TakeoverEnded)
        assert (ended.by, ended.seq) == ("customer", None)
        assert r.agent(offer.agent_id).load == 0


async def test_a_takeover_recorded_without_a_room_is_ended(autojump_clock):
    async with running() as h:
        h.slack.hold_rooms = True
        sid = await h.customer("c1")
        await h.escalate(sid)
        offer = await h.slack.next_offer()
        await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        await h.settle()
        (held,) = h.slack.of(OpenRoom)
        held.reply.fail(RuntimeError("slack said no"))  # the room cannot be opened
        await h.settle()
        crash = until(h.sink.facts, TakeoverStarted)
    async with restarted(crash) as r:
        (ended,) = of(r.sink.facts, TakeoverEnded)
        assert ended.by == "failed"
        told = of(r.sink.facts, BotReplied)[-1]
        assert told.kind == "no_agent_available"
        assert r.domain.mode(sid) == "bot" and r.agent(offer.agent_id).load == 0


async def test_recent_outcomes_are_sent_to_slack_again_and_old_ones_are_not(autojump_clock):
    async with running() as h:
        old_sid, old_room = await accepted_takeover(h, "c-old")
        await h.domain.customer_says(old_sid, "an old line")
        await h.domain.deliver(EndTakeoverRequested(old_room.room_id, old_room.agent_id))
        await h.settle()
        await trio.sleep(RESEND_WINDOW_S + 1)
        sid, room = await accepted_takeover(h, "c-new")
        await h.domain.customer_says(sid, "a new line")
        await h.domain.deliver(EndTakeoverRequested(room.room_id, room.agent_id))
        await h.settle()
        crash = list(h.sink.facts)
    async with restarted(crash) as r:
        assert r.slack.of(CloseRoom) == [
            CloseRoom(room.takeover_id, room.room_id, None, resent=True)
        ]
        assert r.slack.relays() == []  # relays are sent again only for rooms still open
        assert r.slack.of(PostOffer) == [] and r.sink.facts == []


async def test_agent_stats_and_the_escalation_log_come_back(autojump_clock):
    async with running() as h:
        _, room = await accepted_takeover(h)
        await trio.sleep(7)
        await h.domain.deliver(RoomMessagePosted(room.room_id, room.agent_id, "hello", "m1"))
        await trio.sleep(20)
        await h.domain.deliver(EndTakeoverRequested(room.room_id, room.agent_id))
        other = await h.customer("c2")
        await h.escalate(other)
        await h.slack.next_offer()
        await trio.sleep(45)
        await h.slack.next_offer()
        await h.settle()
        crash = list(h.sink.facts)
        before = h.domain.stats()
    async with restarted(crash, present=()) as r:
        after = r.domain.stats()
        keep = ("offered", "accepted", "ignored", "missed", "ended", "load")
        for old, new in zip(before.agents, after.agents, strict=True):
            assert [getattr(old, k) for k in keep] == [getattr(new, k) for k in keep]
            assert (old.first_response_median_s, old.takeover_median_s) == (
                new.first_response_median_s,
                new.takeover_median_s,
            )
        finished = [e for e in before.escalations if e.outcome is not None]
        assert len(finished) == 1 and finished == [
            e for e in after.escalations if e.outcome is not None
        ]
        assert after.by_outcome == before.by_outcome
        assert of(crash, AgentMessaged)[0].text == "hello"
