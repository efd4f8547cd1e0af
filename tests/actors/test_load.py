"""1,000 concurrent escalations against 50 agents (mock clock): all reach an outcome, invariants hold."""

from __future__ import annotations

import random

import trio
import trio.testing

from actors.facts import EscalationEnded
from actors.ports import EndTakeoverRequested, OfferAnswered, OfferView, OpenRoom, PresenceChanged
from tests.actors.harness import Harness, running
from tests.actors.invariants import check_all_ended, check_invariants

AGENTS = tuple(f"U{n:03d}" for n in range(50))
ESCALATIONS = 1_000
MAX_CHATS = 3


async def simulated_agents(h: Harness, rng: random.Random, nursery: trio.Nursery) -> None:
    """Every offer: accept (45%), ignore (30%) or let it be missed; takeovers last 1-10 min."""

    async def answer(offer: OfferView) -> None:
        roll = rng.random()
        await trio.sleep(rng.uniform(0, 50))
        if roll < 0.45:
            await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        elif roll < 0.75:
            await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, False))

    async def end_takeovers() -> None:
        while True:
            room = await h.slack.next(OpenRoom)
            nursery.start_soon(end_later, room)

    async def end_later(room: OpenRoom) -> None:
        await trio.sleep(rng.uniform(60, 600))
        opened = h.slack.rooms[room.takeover_id]
        await h.domain.deliver(EndTakeoverRequested(opened.room_id, room.agent_id))

    async def presence_flaps() -> None:
        while True:
            await trio.sleep(rng.uniform(5, 30))
            await h.domain.deliver(PresenceChanged(rng.choice(AGENTS), rng.random() < 0.7))

    nursery.start_soon(end_takeovers)
    nursery.start_soon(presence_flaps)
    while True:
        nursery.start_soon(answer, await h.slack.next_offer())


async def test_a_thousand_escalations_fifty_agents(autojump_clock: trio.testing.MockClock) -> None:
    rng = random.Random(20261125)
    async with running(AGENTS, offer_timeout_s=45, max_tries=3, max_chats_per_agent=MAX_CHATS) as h:
        sessions = [await h.customer(f"c{i}") for i in range(ESCALATIONS)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(simulated_agents, h, rng, nursery)
            for session in sessions:
                nursery.start_soon(h.escalate, session)
            with trio.fail_after(3 * 3600):  # virtual seconds
                while len(h.sink.of_type(EscalationEnded)) < ESCALATIONS:
                    await trio.sleep(300)
                    check_invariants(h.domain, h.sink.facts, MAX_CHATS)
            nursery.cancel_scope.cancel()
        await h.settle()
        check_invariants(h.domain, h.sink.facts, MAX_CHATS)
        check_all_ended(h.sink.facts)
        stats = h.domain.stats()
        assert stats.by_outcome["searching"] == 0
        assert stats.by_outcome["accepted"] + stats.by_outcome["exhausted"] == ESCALATIONS
        assert stats.by_outcome["accepted"] > 100
        assert max(a.load for a in stats.agents) <= MAX_CHATS
