"""Snapshot + replay equals replay from the start, and a crash at any moment restores the domain.

A rich scripted history is replayed from scratch and from a snapshot taken after every one of
its facts: the durable states, and the domains built from them (stats, events, transcripts,
modes), must be equal. Then hypothesis crashes random interleavings (the same operations as the
routing property test) at random points, restarts from a random snapshot point, checks the
restored domain against the live one and runs it to the end under the routing invariants.
"""

from __future__ import annotations

import copy
import typing

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from actors.domain import Domain
from actors.durable_state import DurableState
from actors.facts import Fact, MemoryFactSink, SessionStarted
from actors.ports import EndTakeoverRequested, OfferAnswered, RoomMessagePosted
from actors.settings import RoutingSettings
from actors.state_codec import (
    SnapshotDecodeError,
    SnapshotSchemaTooNew,
    decode_state,
    encode_state,
)
from tests.actors.harness import FakeSlack, Harness, running
from tests.actors.invariants import check_all_ended, check_invariants
from tests.actors.restore_harness import replay, restarted, restored_domain, through_msgpack
from tests.actors.test_properties import AGENTS, CUSTOMERS, MAX_CHATS, TIMEOUT, Driver, Op, ops


def session_ids(facts: list[Fact]) -> list[str]:
    return [f.session_id for f in facts if isinstance(f, SessionStarted)]


def observed(domain: Domain, sessions: list[str]) -> dict[str, object]:
    """What the customers and the stats page see."""
    return {
        sid: (domain.events_after(sid, 0), domain.transcript(sid), domain.mode(sid))
        for sid in sessions
    }


def domain_of(state: DurableState, agents: tuple[str, ...]) -> Domain:
    """A domain built from `state`, not started (nothing resumed, nothing recorded)."""
    routing = RoutingSettings(agents=agents, max_chats_per_agent=MAX_CHATS)
    return restored_domain(state, FakeSlack(), MemoryFactSink(), routing)


async def rich_history(h: Harness) -> None:
    """Greetings, bot answers, every offer outcome, takeovers both ways, ends, closes, a returning
    customer, closed hours, a lead."""
    d = h.domain
    ada = await h.customer("ada")
    await d.customer_says(ada, "hello")
    await d.customer_says(ada, "unsure about sizes")  # low confidence: escalates
    first = await h.slack.next_offer()
    await d.deliver(OfferAnswered(first.offer_id, first.agent_id, False))  # ignored
    second = await h.slack.next_offer()
    await trio.sleep(45)  # missed
    third = await h.slack.next_offer()
    await d.customer_says(ada, "anyone?")  # still looking
    await d.deliver(OfferAnswered(third.offer_id, third.agent_id, True))
    await h.settle()
    room = h.slack.rooms[next(iter(h.slack.rooms))]
    await d.deliver(RoomMessagePosted(room.room_id, third.agent_id, "Hi Ada", "m1"))
    await d.deliver(RoomMessagePosted(room.room_id, "U0OTHER", "a colleague", "m2"))
    await d.customer_says(ada, "my parcel")
    await trio.sleep(12)
    await d.deliver(EndTakeoverRequested(room.room_id, third.agent_id))
    bob = await h.customer("bob")
    await h.escalate(bob)
    pending = await h.slack.next_offer()
    await d.close_session(bob)  # withdrawn, cancelled
    again = await h.customer("ada")  # a returning customer, the same transcript
    await d.customer_says(again, "back again")
    await d.leave_lead(again, "ada@example.com", "Do you ship abroad?")
    h.open_hours[0] = False
    await h.escalate(again)  # closed hours
    h.open_hours[0] = True
    await h.settle()
    assert second.agent_id != first.agent_id and pending.offer_id


async def test_snapshot_plus_replay_equals_replay_from_the_start_at_every_point(autojump_clock):
    async with running(greeting="Welcome!", max_tries=5) as h:
        await rich_history(h)
        facts = list(h.sink.facts)
        live = observed(h.domain, session_ids(facts))
        live_stats = h.domain.stats()
    assert {type(f) for f in facts} == set(typing.get_args(Fact))  # every kind of fact
    full = replay(facts)
    expected = encode_state(full)
    assert expected["facts"] == len(facts) and full.anomalies == 0
    reference = domain_of(full, h.routing.agents)
    assert observed(reference, session_ids(facts)) == live
    assert reference.stats().by_outcome == live_stats.by_outcome
    for k in range(len(facts) + 1):
        state = replay(facts, snapshot_after=k)
        assert encode_state(state) == expected, f"snapshot after {k} facts"
        rebuilt = domain_of(state, h.routing.agents)
        assert rebuilt.stats() == reference.stats()
        assert observed(rebuilt, session_ids(facts)) == observed(reference, session_ids(facts))
        assert rebuilt.leads() == reference.leads() != ()


# --- crashes at random points ------------------------------------------------------------------


def _counts(stats: object) -> list[tuple[object, ...]]:
    return [
        (a.id, a.offered, a.accepted, a.ignored, a.missed, a.withdrawn, a.pending, a.ended, a.load)
        for a in stats.agents  # type: ignore[attr-defined]
    ]


async def crash_and_restart(present: tuple[str, ...], steps: list[Op], snapshot_at: float) -> None:
    with capture_logs() as logs:
        async with running(
            AGENTS, present=present, offer_timeout_s=TIMEOUT, max_chats_per_agent=MAX_CHATS
        ) as h:
            driver = Driver(h)
            for op in steps:
                await driver.apply(op)
                await h.settle()
            facts = list(h.sink.facts)  # the journal as the crash left it
            sessions = session_ids(facts)
            live, live_stats = observed(h.domain, sessions), h.domain.stats()
            nursery_cancel = True
        assert nursery_cancel
        k = int(len(facts) * snapshot_at)
        assert encode_state(replay(facts, snapshot_after=k)) == encode_state(replay(facts))
        rebuilt = domain_of(replay(facts, snapshot_after=k), AGENTS)
        assert observed(rebuilt, sessions) == live
        assert _counts(rebuilt.stats()) == _counts(live_stats)
        assert rebuilt.stats().by_outcome == live_stats.by_outcome
        async with restarted(
            facts,
            agents=AGENTS,
            snapshot_after=k,
            offer_timeout_s=TIMEOUT,
            max_chats_per_agent=MAX_CHATS,
        ) as r:
            for sid, (events, transcript, _) in live.items():  # nothing seen is lost or doubled
                assert r.domain.events_after(sid, 0)[: len(events)] == events
                assert r.domain.transcript(sid)[: len(transcript)] == transcript
            await trio.sleep(TIMEOUT * 3 * CUSTOMERS * 2)  # every chain runs out
            everything = [*facts, *r.sink.facts]
            check_invariants(r.domain, everything, MAX_CHATS)
            check_all_ended(everything)
    failures = [e for e in logs if e["event"] in ("actor_message_failed", "actor_crashed")]
    assert failures == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sets(st.sampled_from(AGENTS)).map(lambda agents: tuple(sorted(agents))),
    st.lists(ops, min_size=1, max_size=40),
    st.floats(0, 1),
)
def test_a_crash_at_any_point_restores_what_was_seen_and_every_escalation_ends(
    present: tuple[str, ...], steps: list[Op], snapshot_at: float
) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(crash_and_restart, present, steps, snapshot_at, clock=clock)


# --- snapshots this version cannot read ---------------------------------------------------------


async def test_a_snapshot_with_a_bad_value_is_refused_naming_where(autojump_clock):
    async with running() as h:
        sid = await h.customer("c1")
        await h.domain.customer_says(sid, "hello")
        await h.settle()
        good = through_msgpack(replay(list(h.sink.facts)))
    assert decode_state(good) is not None
    broken = copy.deepcopy(good)
    broken["sessions"][0][9][0][1] = "shouted"  # the first event's type
    with pytest.raises(
        SnapshotDecodeError, match=r"snapshot sessions: \[0\]: events\[0\]: expected one of"
    ):
        decode_state(broken)
    broken = copy.deepcopy(good)
    broken["customers"][0][3][0] = ["customer", "c1", "Ada", "hello"]  # a line lacking its time
    with pytest.raises(
        SnapshotDecodeError,
        match=r"snapshot customers: \[0\]: lines\[0\]: expected 5 items, got 4",
    ):
        decode_state(broken)
    with pytest.raises(SnapshotSchemaTooNew, match="snapshot schema 2 is newer than 1"):
        decode_state({**good, "schema": 2})
    with pytest.raises(SnapshotDecodeError, match="'agents' is missing"):
        decode_state({k: v for k, v in good.items() if k != "agents"})
