"""The chain (design §2.2, §2.3, §2.5): order, exclusions, max tries, exhausted, waiting, capacity."""

from __future__ import annotations

import trio
import trio.testing

from actors.facts import EscalationEnded, EscalationStarted, TakeoverStarted
from actors.ports import (
    ConfirmPresence,
    EndTakeoverRequested,
    OfferAnswered,
    OfferView,
    OpenRoom,
    PresenceChanged,
)
from tests.actors.harness import Harness, running


async def answer(h: Harness, offer: OfferView, accepted: bool) -> None:
    await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, accepted))


async def test_fewest_chats_first(autojump_clock: trio.testing.MockClock) -> None:
    async with running(("U01", "U02"), max_tries=1) as h:
        a = await h.customer("a")
        await h.escalate(a)
        offer = await h.slack.next_offer()
        assert offer.agent_id == "U01"  # equal load and idle time: by id
        await trio.sleep(5)
        await answer(h, offer, True)  # U01: one chat, idle since 5
        await h.slack.next(OpenRoom)

        await trio.sleep(1)
        c = await h.customer("c")
        await h.escalate(c)
        offer = await h.slack.next_offer()
        assert offer.agent_id == "U02"
        await trio.sleep(44)
        await answer(h, offer, False)  # U02: no chat, idle since 50

        await trio.sleep(10)
        b = await h.customer("b")
        await h.escalate(b)
        offer = await h.slack.next_offer()
        assert offer.agent_id == "U02"  # fewer chats beats having been idle longer


async def test_ties_go_to_the_agent_idle_longest(autojump_clock: trio.testing.MockClock) -> None:
    async with running(("U01", "U02", "U03"), max_tries=1) as h:
        order = []
        for customer, answered_at in (("a", 10), ("c", 20), ("d", 30), ("b", 40)):
            session = await h.customer(customer)
            await h.escalate(session)
            offer = await h.slack.next_offer()
            order.append(offer.agent_id)
            await trio.sleep_until(answered_at)
            await answer(h, offer, False)
        # U03 had never had an offer; then U01's last offer ended first (t=10)
        assert order == ["U01", "U02", "U03", "U01"]


async def test_ignored_or_missed_agents_are_not_offered_again_then_exhausted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(("U01", "U02"), max_tries=5) as h:
        session = await h.customer()
        await h.escalate(session)
        first = await h.slack.next_offer()
        await trio.sleep(1)
        await answer(h, first, False)
        second = await h.slack.next_offer()
        await trio.sleep(100)
        assert [o.agent_id for o in h.slack.offers()] == ["U01", "U02"]
        [ended] = h.sink.of_type(EscalationEnded)
        assert (ended.outcome, ended.reason, ended.at - 1_800_000_000) == (
            "exhausted",
            "all_tried",
            46,
        )
        assert h.slack.resolved()[second.offer_id].outcome == "missed"
        last = h.domain.events_after(session, 0)[-1]
        assert (last.type, last.text) == ("no_agent_available", h.texts.no_agent_text)
        assert h.domain.mode(session) == "bot"
        # back with the bot: it answers, and a new request starts a new escalation
        seq = await h.domain.customer_says(session, "hello again")
        reply = h.domain.events_after(session, seq)[0]
        assert (reply.type, reply.text) == ("bot_message", "You said: hello again")
        await h.escalate(session)
        assert len(h.sink.of_type(EscalationStarted)) == 2


async def test_max_tries(autojump_clock: trio.testing.MockClock) -> None:
    async with running(("U01", "U02", "U03", "U04"), max_tries=2) as h:
        session = await h.customer()
        await h.escalate(session)
        for t in (1, 2):
            offer = await h.slack.next_offer()
            await trio.sleep_until(t)
            await answer(h, offer, False)
        await h.settle()
        [ended] = h.sink.of_type(EscalationEnded)
        assert (ended.outcome, ended.reason) == ("exhausted", "max_tries")
        assert len(h.slack.offers()) == 2
        assert h.event_types(session)[-1] == "no_agent_available"
        assert trio.current_time() == 2


async def test_nobody_available_is_exhausted_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(present=()) as h:
        session = await h.customer()
        await h.escalate(session)
        await h.settle()
        assert h.event_types(session) == ["customer_message", "searching", "no_agent_available"]
        [ended] = h.sink.of_type(EscalationEnded)
        assert (ended.outcome, ended.reason) == ("exhausted", "nobody_available")
        assert h.slack.offers() == []
        assert trio.current_time() == 0


async def test_closed_hours_answer_with_the_closed_text(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:
        h.open_hours[0] = False
        session = await h.customer()
        await h.escalate(session)
        await h.settle()
        events = h.domain.events_after(session, 0)
        assert [(e.type, e.text) for e in events[1:]] == [
            ("no_agent_available", h.texts.closed_text)
        ]
        [ended] = h.sink.of_type(EscalationEnded)
        assert (ended.outcome, ended.reason) == ("closed", "closed_hours")
        assert h.slack.offers() == []
        assert h.domain.stats().by_outcome["closed"] == 1


async def test_busy_agents_make_escalations_wait_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(("U01",)) as h:
        sessions = []
        for t, name in ((0, "a"), (1, "b"), (2, "c")):
            await trio.sleep_until(t)
            sessions.append(await h.customer(name))
            await h.escalate(sessions[-1])
        offer_a = await h.slack.next_offer()
        await h.settle()
        assert len(h.slack.offers()) == 1  # b and c wait: U01 holds a's offer
        await trio.sleep_until(10)
        await answer(h, offer_a, False)
        offer_b = await h.slack.next_offer()
        assert (offer_b.customer_id, trio.current_time()) == ("b", 10)
        await trio.sleep_until(20)
        await answer(h, offer_b, False)
        offer_c = await h.slack.next_offer()
        assert (offer_c.customer_id, trio.current_time()) == ("c", 20)
        await h.settle()
        waited = {e.session_id: e.waited_s for e in h.domain.stats().escalations}
        assert [waited[s] for s in sessions] == [0, 9, 18]


async def test_presence_is_confirmed_before_each_offer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(("U01", "U02")) as h:
        h.slack.present["U01"] = False  # the view says active, Slack says away
        session = await h.customer()
        await h.escalate(session)
        offer = await h.slack.next_offer()
        assert offer.agent_id == "U02" and trio.current_time() == 0
        assert [c.agent_id for c in h.slack.of(ConfirmPresence)] == ["U01", "U02"]
        await h.settle()
        u01 = h.agent("U01")
        assert (u01.offered, u01.active, u01.available) == (0, False, False)


async def test_capacity_is_never_exceeded(autojump_clock: trio.testing.MockClock) -> None:
    async with running(("U01",), max_chats_per_agent=1) as h:
        a = await h.customer("a")
        await h.escalate(a)
        offer = await h.slack.next_offer()
        await answer(h, offer, True)
        room = await h.slack.next(OpenRoom)
        await h.settle()
        b = await h.customer("b")
        await h.escalate(b)
        await h.settle()
        assert h.event_types(b)[-1] == "no_agent_available"
        assert h.agent("U01").load == 1 and not h.agent("U01").available
        [started] = h.sink.of_type(TakeoverStarted)
        assert started.room_id is not None
        await h.domain.deliver(EndTakeoverRequested(started.room_id, "U01"))
        await h.settle()
        assert h.agent("U01").load == 0
        c = await h.customer("c")
        await h.escalate(c)
        assert (await h.slack.next_offer()).customer_id == "c"
        assert room.customer_id == "a"


async def test_many_escalations_never_overload_agents(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(("U01", "U02"), max_chats_per_agent=2) as h:
        sessions = [await h.customer(f"c{i}") for i in range(10)]
        async with trio.open_nursery() as nursery:
            for s in sessions:
                nursery.start_soon(h.escalate, s)

        async def accept_all() -> None:
            while True:
                offer = await h.slack.next_offer()
                await answer(h, offer, True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept_all)
            await trio.sleep(1000)
            nursery.cancel_scope.cancel()
        stats = h.domain.stats()
        assert sorted(a.load for a in stats.agents) == [2, 2]
        assert stats.by_outcome["accepted"] == 4
        assert stats.by_outcome["exhausted"] == 6
        await h.domain.deliver(PresenceChanged("U01", True))  # no change, nothing breaks
