"""Live chat first (`bot.live_chat_first`): a new session's first message goes to a person at
once during business hours; out of hours the bot answers as usual."""

from __future__ import annotations

import trio
import trio.testing

from actors.facts import EscalationEnded, EscalationStarted
from actors.ports import OfferAnswered, PostOffer
from actors.settings import BotSettings
from tests.actors.harness import running
from tests.actors.office import OPENS_AT, office


async def test_in_hours_the_first_message_escalates_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with office() as h:
        await trio.sleep(OPENS_AT)
        session = await h.customer("cust-1")
        await h.domain.customer_says(session, "What are your opening hours?")
        offer = await h.slack.next_offer()
        [(posted_at, _)] = h.slack.timed(PostOffer)
        assert posted_at == OPENS_AT  # at once: no bot answer first
        assert offer.last_message == "What are your opening hours?"
        [started] = h.sink.of_type(EscalationStarted)
        assert (started.trigger, started.session_id) == ("live_chat_first", session)
        assert h.event_types(session) == ["customer_message", "searching"]
        assert h.domain.mode(session) == "searching"

        # the search goes on as any other: the next message does not start a second one
        await h.domain.customer_says(session, "hello?")
        await h.settle()
        assert len(h.sink.of_type(EscalationStarted)) == 1
        await h.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
        await h.settle()
        assert h.domain.mode(session) == "takeover"


async def test_out_of_hours_the_bot_answers_and_a_session_opened_later_escalates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with office() as h:
        early = await h.customer("early-bird")
        await h.domain.customer_says(early, "Do you ship to Spain?")
        await h.settle()
        events = h.domain.events_after(early, 0)
        assert [(e.type, e.text) for e in events] == [
            ("customer_message", "Do you ship to Spain?"),
            ("bot_message", "You said: Do you ship to Spain?"),
        ]
        assert h.sink.of_type(EscalationStarted) == []  # no escalation, no closed-hours text

        await trio.sleep(OPENS_AT - trio.current_time() + 1.0)  # 09:30:01 in Paris: open
        # the session that started out of hours is not new any more: the bot goes on
        await h.domain.customer_says(early, "And to Portugal?")
        await h.settle()
        assert h.event_types(early)[-1] == "bot_message"
        assert h.sink.of_type(EscalationStarted) == []

        fresh = await h.customer("late-riser")
        await h.domain.customer_says(fresh, "Hi!")
        await h.slack.next_offer()
        [(posted_at, _)] = h.slack.timed(PostOffer)
        assert posted_at == OPENS_AT + 1.0
        [started] = h.sink.of_type(EscalationStarted)
        assert (started.session_id, started.trigger) == (fresh, "live_chat_first")


async def test_after_nobody_answered_the_bot_takes_the_following_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with office(max_tries=2) as h:
        await trio.sleep(OPENS_AT)
        session = await h.customer()
        seq = await h.domain.customer_says(session, "Where is my parcel?")
        told = await h.domain.wait_events(session, seq + 1)  # after "searching"
        assert [e.type for e in told] == ["no_agent_available"]
        assert trio.current_time() == OPENS_AT + 60.0  # both agents missed their 30 s offer
        [ended] = h.sink.of_type(EscalationEnded)
        assert (ended.outcome, ended.reason) == ("exhausted", "max_tries")

        await h.domain.customer_says(session, "Where is my parcel?")
        await h.settle()
        assert h.event_types(session)[-1] == "bot_message"
        assert len(h.sink.of_type(EscalationStarted)) == 1


async def test_every_new_session_of_a_returning_customer_escalates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with office() as h:
        await trio.sleep(OPENS_AT)
        first = await h.customer("cust-7")
        await h.domain.customer_says(first, "one")
        await h.slack.next_offer()
        await h.domain.close_session(first)
        second = await h.customer("cust-7")
        await h.domain.customer_says(second, "two")
        await h.slack.next_offer()
        triggers = [(e.session_id, e.trigger) for e in h.sink.of_type(EscalationStarted)]
        assert triggers == [(first, "live_chat_first"), (second, "live_chat_first")]


async def test_off_by_default_and_switched_on_by_a_reload(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as h:  # always open, live chat first off
        session = await h.customer()
        await h.domain.customer_says(session, "What time is it?")
        await h.settle()
        assert h.event_types(session) == ["customer_message", "bot_message"]

        h.domain.apply_settings(h.routing, BotSettings(live_chat_first=True))
        later = await h.customer()
        await h.domain.customer_says(later, "What time is it?")
        await h.slack.next_offer()
        assert h.event_types(later) == ["customer_message", "searching"]
        assert h.sink.of_type(EscalationStarted)[0].trigger == "live_chat_first"
