"""Random interleavings (hypothesis) of escalations, clicks, deadlines, presence, departures and
ends against the running domain under a mock clock, checking the invariants after every step."""

from __future__ import annotations

from dataclasses import dataclass

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from actors.facts import TakeoverEnded, TakeoverStarted
from actors.ports import (
    EndTakeoverRequested,
    OfferAnswered,
    PresenceChanged,
    RoomMessagePosted,
)
from tests.actors.harness import Harness, running
from tests.actors.invariants import check_all_ended, check_invariants

AGENTS = ("U01", "U02", "U03", "U04")
CUSTOMERS = 5
MAX_CHATS = 2
TIMEOUT = 30.0


@dataclass(frozen=True)
class Op:
    kind: str
    a: int = 0
    b: int = 0


escalate = st.builds(Op, st.just("escalate"), st.integers(0, CUSTOMERS - 1))
presence = st.builds(
    Op, st.just("presence"), st.integers(0, len(AGENTS) - 1), st.booleans().map(int)
)
ops = st.one_of(
    escalate,
    escalate,
    presence,
    st.builds(Op, st.just("accept"), st.integers(0, 7)),
    st.builds(Op, st.just("accept_as"), st.integers(0, 7), st.integers(0, len(AGENTS) - 1)),
    st.builds(Op, st.just("ignore"), st.integers(0, 7)),
    st.builds(Op, st.just("stale"), st.integers(0, 40), st.booleans().map(int)),
    st.builds(Op, st.just("wait"), st.sampled_from([0, 1, 5, 15, 29, 30, 31, 45, 90])),
    presence,
    st.builds(Op, st.just("leave"), st.integers(0, CUSTOMERS - 1)),
    st.builds(Op, st.just("end"), st.integers(0, 7)),
    st.builds(Op, st.just("say"), st.integers(0, CUSTOMERS - 1)),
)


class Driver:
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.sessions: dict[int, str] = {}

    def live_offers(self) -> list[tuple[str, str]]:
        resolved = self.h.slack.resolved()
        return [
            (o.offer_id, o.agent_id) for o in self.h.slack.offers() if o.offer_id not in resolved
        ]

    def open_rooms(self) -> list[tuple[str, str]]:
        facts = self.h.sink.facts
        ended = {f.takeover_id for f in facts if isinstance(f, TakeoverEnded)}
        return [
            (f.room_id, f.agent.id)
            for f in facts
            if isinstance(f, TakeoverStarted) and f.room_id and f.takeover_id not in ended
        ]

    async def session(self, customer: int) -> str:
        session = self.sessions.get(customer)
        if session is None or self.h.domain.mode(session) == "closed":
            session = await self.h.customer(f"cust{customer}")
            self.sessions[customer] = session
        return session

    async def apply(self, op: Op) -> None:
        domain = self.h.domain
        match op.kind:
            case "escalate":
                await domain.customer_says(await self.session(op.a), "a human please")
            case "say":
                await domain.customer_says(await self.session(op.a), "hello")
            case "accept" | "ignore" | "accept_as":
                live = self.live_offers()
                if live:
                    offer_id, agent_id = live[op.a % len(live)]
                    if op.kind == "accept_as":
                        agent_id = AGENTS[op.b]
                    await domain.deliver(OfferAnswered(offer_id, agent_id, op.kind != "ignore"))
            case "stale":
                offers = self.h.slack.offers()
                if offers:
                    offer = offers[op.a % len(offers)]
                    await domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, bool(op.b)))
            case "wait":
                await trio.sleep(op.a)
            case "presence":
                await domain.deliver(PresenceChanged(AGENTS[op.a], bool(op.b)))
            case "leave":
                session = self.sessions.get(op.a)
                if session is not None:
                    await domain.close_session(session)
            case "end":
                rooms = self.open_rooms()
                if rooms:
                    room_id, agent_id = rooms[op.a % len(rooms)]
                    await domain.deliver(RoomMessagePosted(room_id, agent_id, "bye", f"m{op.a}"))
                    await domain.deliver(EndTakeoverRequested(room_id, agent_id))
            case _:
                raise AssertionError(op.kind)


async def run_interleaving(present: tuple[str, ...], steps: list[Op]) -> None:
    with capture_logs() as logs:
        async with running(
            AGENTS,
            present=present,
            offer_timeout_s=TIMEOUT,
            max_tries=3,
            max_chats_per_agent=MAX_CHATS,
        ) as h:
            driver = Driver(h)
            for op in steps:
                await driver.apply(op)
                await h.settle()
                check_invariants(h.domain, h.sink.facts, MAX_CHATS)
            # let every chain run out: each offer ends within the timeout
            await trio.sleep(TIMEOUT * 3 * CUSTOMERS * 2)
            check_invariants(h.domain, h.sink.facts, MAX_CHATS)
            check_all_ended(h.sink.facts)
    failures = [e for e in logs if e["event"] in ("actor_message_failed", "actor_crashed")]
    assert failures == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sets(st.sampled_from(AGENTS)).map(lambda agents: tuple(sorted(agents))),
    st.lists(ops, min_size=1, max_size=60),
)
def test_random_interleavings_keep_the_invariants(
    present: tuple[str, ...], steps: list[Op]
) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(run_interleaving, present, steps, clock=clock)
