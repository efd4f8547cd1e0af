"""Races (design §2.4): one escalation never goes to two agents, one offer has one outcome."""

from __future__ import annotations

from collections import Counter

import trio
import trio.testing

from actors.facts import EscalationEnded, OfferEnded, TakeoverEnded, TakeoverStarted
from actors.ports import OfferAnswered, OpenRoom, TellTooLate
from tests.actors.harness import running


async def test_accept_racing_the_deadline_has_one_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcomes: Counter[str] = Counter()
    for _ in range(30):  # trio shuffles the order of tasks woken at the same instant
        async with running(("U01", "U02"), offer_timeout_s=10) as h:
            session = await h.customer()
            await h.escalate(session)
            offer = await h.slack.next_offer()
            await trio.sleep_until(offer.expires_at - 1_800_000_000)
            await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
            await h.settle()
            ended = [f for f in h.sink.of_type(OfferEnded) if f.offer_id == offer.offer_id]
            assert len(ended) == 1
            outcome = ended[0].outcome
            outcomes[outcome] += 1
            too_late = h.slack.of(TellTooLate)
            if outcome == "accepted":
                assert too_late == [] and h.agent("U01").load == 1
                assert len(h.slack.offers()) == 1
            else:
                assert outcome == "missed"
                assert [(t.offer_id, t.agent_id) for t in too_late] == [(offer.offer_id, "U01")]
                assert h.agent("U01").load == 0 and h.slack.offers()[-1].agent_id == "U02"
    assert set(outcomes) <= {"accepted", "missed"}


async def test_two_clicks_on_accept_give_one_owner(autojump_clock: trio.testing.MockClock) -> None:
    async with running() as h:
        session = await h.customer()
        await h.escalate(session)
        offer = await h.slack.next_offer()
        click = OfferAnswered(offer.offer_id, offer.agent_id, True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.domain.deliver, click)
            nursery.start_soon(h.domain.deliver, click)
        await h.slack.next(OpenRoom)
        await h.settle()
        assert [f.outcome for f in h.sink.of_type(OfferEnded)] == ["accepted"]
        assert len(h.sink.of_type(TakeoverStarted)) == 1
        assert h.slack.of(TellTooLate) == [TellTooLate(offer.offer_id, offer.agent_id)]
        assert h.agent(offer.agent_id).load == 1


async def test_accepts_from_different_agents_give_one_owner(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(("U01", "U02")) as h:
        session = await h.customer()
        await h.escalate(session)
        first = await h.slack.next_offer()
        await trio.sleep(2)
        await h.domain.deliver(OfferAnswered(first.offer_id, "U01", False))
        second = await h.slack.next_offer()
        assert second.agent_id == "U02"
        # U01 changes their mind on the ended offer, U02 accepts theirs, U01 clicks U02's DM
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.domain.deliver, OfferAnswered(first.offer_id, "U01", True))
            nursery.start_soon(h.domain.deliver, OfferAnswered(second.offer_id, "U02", True))
            nursery.start_soon(h.domain.deliver, OfferAnswered(second.offer_id, "U01", True))
        await h.settle()
        [ended] = h.sink.of_type(EscalationEnded)
        assert (ended.outcome, ended.agent_id) == ("accepted", "U02")
        [started] = h.sink.of_type(TakeoverStarted)
        assert started.agent.id == "U02"
        assert sorted((t.offer_id, t.agent_id) for t in h.slack.of(TellTooLate)) == sorted(
            [(first.offer_id, "U01"), (second.offer_id, "U01")]
        )
        assert (h.agent("U01").load, h.agent("U02").load) == (0, 1)
        # the escalation has ended: any later click is told it is too late
        await h.domain.deliver(OfferAnswered(second.offer_id, "U02", True))
        await h.settle()
        assert h.slack.of(TellTooLate)[-1] == TellTooLate(second.offer_id, "U02")
        assert len(h.sink.of_type(TakeoverStarted)) == 1


async def test_accept_racing_the_customer_leaving(autojump_clock: trio.testing.MockClock) -> None:
    for _ in range(20):
        async with running(("U01",)) as h:
            session = await h.customer()
            await h.escalate(session)
            offer = await h.slack.next_offer()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    h.domain.deliver, OfferAnswered(offer.offer_id, offer.agent_id, True)
                )
                nursery.start_soon(h.domain.close_session, session)
            await h.settle()
            [ended] = h.sink.of_type(OfferEnded)
            assert ended.outcome in ("accepted", "withdrawn")
            if ended.outcome == "accepted":  # the takeover ends at once: the customer left
                assert [f.by for f in h.sink.of_type(TakeoverEnded)] == ["customer"]
            assert h.agent("U01").load == 0
            assert h.domain.stats().by_outcome["searching"] == 0
