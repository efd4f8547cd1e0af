"""Agent hygiene through the domain: auto-away after consecutive misses, idle takeovers ended.

Timed under the autojump clock; every time asserted is exact virtual time.
"""

from __future__ import annotations

import trio
from structlog.testing import capture_logs

from actors.facts import CustomerMessaged, OfferEnded, TakeoverEnded
from actors.hygiene import (
    EndIdle,
    Hygiene,
    HygieneRules,
    HygieneState,
    Observed,
    SetAway,
    hygiene_step,
)
from actors.ports import (
    CloseRoom,
    EndTakeoverRequested,
    OfferAnswered,
    PresenceChanged,
    ResolveOffer,
    RoomMessagePosted,
)
from actors.session_takeover import IDLE_ENDER, IDLE_ROOM_NOTE
from tests.actors.harness import EPOCH
from tests.actors.ops_rig import OpsRig, ops_domain


async def _miss_one(rig: OpsRig) -> float:
    """A customer escalates; the one offer is missed at its deadline. Returns the miss time."""
    session = await rig.customer()
    await rig.domain.customer_says(session, "human please")
    offer = await rig.slack.next_offer()
    assert offer.agent_id == "U01"
    resolved = await rig.slack.next(ResolveOffer)
    assert (resolved.offer_id, resolved.outcome) == (offer.offer_id, "missed")
    return trio.current_time()


async def test_an_agent_missing_offers_in_a_row_is_set_away_and_told(autojump_clock) -> None:
    async with ops_domain(("U01",), auto_away_after_misses=2, offer_timeout_s=30) as rig:
        start = trio.current_time()
        await _miss_one(rig)
        assert rig.agent("U01").available and rig.told_away == []
        await _miss_one(rig)
        await rig.settle()
        assert rig.told_away == [(start + 60.0, "U01", 2)]  # at the second deadline, exactly
        stats = rig.agent("U01")
        assert (stats.missed, stats.available, stats.active) == (2, False, False)

        session = await rig.customer()  # nobody available now: no offer at all
        await rig.domain.customer_says(session, "human please")
        await rig.settle()
        assert len(rig.slack.offers()) == 2
        assert [t for t, _, _ in rig.events(session)][-1] == "no_agent_available"

        await rig.domain.deliver(PresenceChanged("U01", True))  # the agent is back
        await rig.settle()
        assert rig.agent("U01").available
        again = await rig.customer()
        await rig.domain.customer_says(again, "human please")
        assert (await rig.slack.next_offer()).agent_id == "U01"


async def test_an_accept_or_ignore_between_misses_resets_the_count(autojump_clock) -> None:
    async with ops_domain(("U01",), auto_away_after_misses=2, offer_timeout_s=30) as rig:
        await _miss_one(rig)
        session = await rig.customer()
        await rig.domain.customer_says(session, "human please")
        offer = await rig.slack.next_offer()
        await rig.domain.deliver(OfferAnswered(offer.offer_id, "U01", accepted=False))
        await rig.slack.next(ResolveOffer)
        await _miss_one(rig)
        await rig.settle()
        assert rig.told_away == [] and rig.agent("U01").available


async def test_auto_away_zero_never_sets_anyone_away(autojump_clock) -> None:
    async with ops_domain(("U01",), auto_away_after_misses=0, offer_timeout_s=30) as rig:
        for _ in range(4):
            await _miss_one(rig)
        await rig.settle()
        assert rig.told_away == [] and rig.agent("U01").available


async def _taken_over(rig: OpsRig) -> tuple[str, str]:
    session = await rig.customer()
    await rig.domain.customer_says(session, "human please")
    offer = await rig.slack.next_offer()
    await rig.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, accepted=True))
    while "agent_joined" not in [t for t, _, _ in rig.events(session)]:
        await rig.settle()
    room = next(iter(rig.slack.rooms.values()))
    return session, room.room_id


async def test_a_silent_takeover_is_ended_with_notes_at_the_idle_deadline(autojump_clock) -> None:
    async with ops_domain(("U01",), idle_takeover_end_s=300) as rig:
        session, room = await _taken_over(rig)
        joined = trio.current_time()
        await trio.sleep(100)
        await rig.domain.customer_says(session, "are you there?")  # activity moves the deadline
        await trio.sleep(150)
        await rig.domain.deliver(RoomMessagePosted(room, "U01", "yes, one moment", f"{room}:1.0"))
        last = trio.current_time()
        await rig.slack.next(CloseRoom)
        assert last == joined + 250 and trio.current_time() == last + 300
        await rig.settle()  # the session and the agent take in the end after the CloseRoom
        assert trio.current_time() == last + 300
        closed = rig.slack.closed_rooms()
        assert closed == [CloseRoom(closed[0].takeover_id, room, IDLE_ROOM_NOTE)]
        kind, text, at = rig.events(session)[-1]
        assert (kind, text, at) == ("agent_left", rig.texts.idle_end_text, EPOCH + last + 300)
        ended = rig.sink.of_type(TakeoverEnded)
        assert [e.by for e in ended] == ["idle"]
        assert rig.agent("U01").load == 0 and rig.domain.mode(session) == "bot"


async def test_idle_zero_never_ends_a_takeover(autojump_clock) -> None:
    async with ops_domain(("U01",), idle_takeover_end_s=0) as rig:
        session, _ = await _taken_over(rig)
        await trio.sleep(86_400)
        await rig.settle()
        assert rig.slack.closed_rooms() == [] and rig.domain.mode(session) == "takeover"


def test_rules_withdrawn_offers_leave_the_count_and_reloads_apply() -> None:
    rules = HygieneRules(auto_away_after_misses=2)
    state = HygieneState()
    outcomes = ["missed", "withdrawn", "missed"]
    effects = []
    for n, outcome in enumerate(outcomes):
        fact = OfferEnded(f"o{n}", "e1", "U01", outcome, 0.0)  # type: ignore[arg-type]
        state, effects = hygiene_step(state, Observed(fact), 0.0, rules)
    assert effects == [SetAway("U01", 2)] and state.misses["U01"] == 0
    # a reload switching idle ends off stops the watch at its next check
    off = HygieneRules(idle_takeover_end_s=0)
    state, effects = hygiene_step(
        state, Observed(OfferEnded("o9", "e", "U02", "missed", 0)), 0, off
    )
    assert effects == [] and state.misses["U02"] == 1
    assert not any(isinstance(e, EndIdle) for e in effects)


async def test_takeovers_found_open_after_a_restart_are_watched_from_the_start(
    autojump_clock, nursery: trio.Nursery
) -> None:
    delivered: list[tuple[float, object]] = []

    async def deliver(fact: object) -> None:
        delivered.append((trio.current_time(), fact))

    hygiene = Hygiene(HygieneRules(idle_takeover_end_s=300), deliver=deliver)
    hygiene.resume([("t1", "C1", "s1")])
    start = trio.current_time()
    await nursery.start(hygiene.run)
    await trio.sleep(299)
    hygiene.observe(CustomerMessaged("s1", "c1", 3, "hello?", 0.0))  # activity moves it
    await trio.sleep(400)
    assert delivered == [(start + 599, EndTakeoverRequested("C1", IDLE_ENDER))]


async def test_facts_after_the_actor_stopped_are_not_dropped_warnings(autojump_clock) -> None:
    async def deliver(fact: object) -> None:
        raise AssertionError(f"nothing is delivered: {fact}")

    hygiene = Hygiene(HygieneRules(auto_away_after_misses=1), deliver=deliver)
    async with trio.open_nursery() as nursery:
        await nursery.start(hygiene.run)
        nursery.cancel_scope.cancel()
    with capture_logs() as logs:
        hygiene.observe(OfferEnded("o1", "e1", "U1", "withdrawn", 0.0))  # the drain's facts
    assert hygiene.dropped == 0
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == []
