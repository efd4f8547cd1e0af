"""Each offer outcome (design §2.4) through the domain's ports, at exact virtual times."""

from __future__ import annotations

import trio
import trio.testing

from actors.facts import EscalationEnded, OfferEnded, OfferMade
from actors.ports import (
    OfferAnswered,
    OpenRoom,
    PresenceChanged,
    ResolveOffer,
)
from tests.actors.harness import EPOCH, running


async def test_accept_gives_the_customer_the_agent_and_a_room(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        session = await h.customer("cust-1", "Ada")
        await h.domain.customer_says(session, "Where is my parcel?")
        await h.escalate(session, "let me talk to a human please")
        offer = await h.slack.next_offer()
        assert trio.current_time() == 0
        assert offer.customer_id == "cust-1" and offer.customer_name == "Ada"
        assert offer.last_message == "let me talk to a human please"
        assert [line.speaker for line in offer.excerpt] == ["customer", "bot", "customer", "bot"]
        assert offer.expires_at == EPOCH + 45

        await trio.sleep(12)
        await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        room = await h.slack.next(OpenRoom)
        await h.settle()

        assert room.agent_id == offer.agent_id and room.customer_id == "cust-1"
        assert room.transcript[0].text == "Where is my parcel?"
        resolve = h.slack.resolved()[offer.offer_id]
        assert (resolve.outcome, resolve.room_name) == ("accepted", "swivl_user_cust-1")
        events = h.domain.events_after(session, 0)
        joined = events[-1]
        assert joined.type == "agent_joined" and joined.at == EPOCH + 12
        assert joined.agent is not None and joined.agent.display_name == f"agent-{offer.agent_id}"
        assert h.domain.mode(session) == "takeover"
        stats = h.agent(offer.agent_id)
        assert (stats.offered, stats.accepted, stats.load) == (1, 1, 1)
        assert stats.time_to_accept_median_s == 12
        [ended] = h.sink.of_type(EscalationEnded)
        assert (ended.outcome, ended.agent_id) == ("accepted", offer.agent_id)


async def test_ignore_counts_and_moves_to_the_next_agent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        session = await h.customer()
        await h.escalate(session)
        first = await h.slack.next_offer()
        await trio.sleep(5)
        await h.domain.deliver(OfferAnswered(first.offer_id, first.agent_id, False))
        second = await h.slack.next_offer()
        assert trio.current_time() == 5
        assert second.agent_id != first.agent_id
        assert h.slack.resolved()[first.offer_id].outcome == "ignored"
        assert second.expires_at == EPOCH + 5 + 45
        await h.settle()
        assert h.agent(first.agent_id).ignored == 1
        assert h.agent(first.agent_id).pending == 0
        assert h.agent(second.agent_id).pending == 1


async def test_no_answer_is_missed_exactly_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(offer_timeout_s=30) as h:
        session = await h.customer()
        await h.escalate(session)
        first = await h.slack.next_offer()
        resolve = await h.slack.next(ResolveOffer)
        assert trio.current_time() == 30
        assert (resolve.offer_id, resolve.outcome) == (first.offer_id, "missed")
        second = await h.slack.next_offer()
        assert trio.current_time() == 30 and second.agent_id != first.agent_id
        await h.settle()
        assert h.agent(first.agent_id).missed == 1
        missed = [f for f in h.sink.of_type(OfferEnded) if f.outcome == "missed"]
        assert [f.at for f in missed] == [EPOCH + 30]


async def test_accept_just_before_the_deadline_wins(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(offer_timeout_s=30) as h:
        session = await h.customer()
        await h.escalate(session)
        offer = await h.slack.next_offer()
        await trio.sleep(29.999)
        await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        await h.slack.next(OpenRoom)
        await trio.sleep(60)
        assert [f.outcome for f in h.sink.of_type(OfferEnded)] == ["accepted"]
        assert h.slack.offers() == [offer]


async def test_withdrawn_when_the_customer_leaves(autojump_clock: trio.testing.MockClock) -> None:
    async with running() as h:
        session = await h.customer()
        await h.escalate(session)
        offer = await h.slack.next_offer()
        await trio.sleep(20)
        await h.domain.close_session(session)
        resolve = await h.slack.next(ResolveOffer)
        assert trio.current_time() == 20
        assert (resolve.offer_id, resolve.outcome) == (offer.offer_id, "withdrawn")
        await trio.sleep(100)
        assert len(h.slack.offers()) == 1  # nobody else is offered a customer who left
        stats = h.agent(offer.agent_id)
        assert (stats.withdrawn, stats.ignored, stats.missed, stats.pending) == (1, 0, 0, 0)
        [ended] = h.sink.of_type(EscalationEnded)
        assert (ended.outcome, ended.reason) == ("cancelled", "customer_left")
        assert h.event_types(session)[-1] == "closed"


async def test_withdrawn_when_the_agent_goes_away(autojump_clock: trio.testing.MockClock) -> None:
    async with running(("U01", "U02")) as h:
        session = await h.customer()
        await h.escalate(session)
        first = await h.slack.next_offer()
        await trio.sleep(15)
        await h.domain.deliver(PresenceChanged(first.agent_id, False))
        second = await h.slack.next_offer()
        assert trio.current_time() == 15 and second.agent_id != first.agent_id
        assert h.slack.resolved()[first.offer_id].outcome == "withdrawn"
        await h.settle()
        away = h.agent(first.agent_id)
        assert (away.withdrawn, away.missed, away.ignored) == (1, 0, 0)
        assert not away.available and not away.active
        # nobody blamed: once back, the agent may be offered the same escalation again
        await h.domain.deliver(PresenceChanged(first.agent_id, True))
        await h.domain.deliver(OfferAnswered(second.offer_id, second.agent_id, False))
        third = await h.slack.next_offer()
        assert third.agent_id == first.agent_id


async def test_every_offer_made_is_recorded_before_it_is_posted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        session = await h.customer()
        await h.escalate(session)
        offer = await h.slack.next_offer()
        [made] = h.sink.of_type(OfferMade)
        assert (made.offer_id, made.agent_id, made.expires_at) == (
            offer.offer_id,
            offer.agent_id,
            offer.expires_at,
        )


async def test_a_settings_reload_applies_to_the_next_offer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        first_session = await h.customer()
        await h.escalate(first_session)
        first = await h.slack.next_offer()
        h.domain.apply_settings(h.routing.model_copy(update={"offer_timeout_s": 10.0}), h.texts)
        resolve = await h.slack.next(ResolveOffer)
        assert (resolve.offer_id, trio.current_time()) == (first.offer_id, 45)  # made before
        second = await h.slack.next_offer()
        assert second.expires_at == EPOCH + 45 + 10
        await h.slack.next(ResolveOffer)
        assert trio.current_time() == 55
