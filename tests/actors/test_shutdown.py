"""Clean shutdown: cancelling the domain withdraws in-flight offers, shielded and bounded."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.domain import Domain
from actors.errors import DomainStopped
from actors.facts import EscalationEnded, MemoryFactSink, OfferEnded
from actors.ports import ConfirmPresence, PostOffer, PresenceChanged, ResolveOffer, SlackCommand
from actors.settings import BotSettings, RoutingSettings
from tests.actors.harness import FakeSlack, ScriptedBot, wall_clock


def make_domain(slack: FakeSlack, sink: MemoryFactSink) -> Domain:
    return Domain(
        routing=RoutingSettings(agents=("U01", "U02")),
        bot_settings=BotSettings(),
        bot=ScriptedBot(),
        slack=slack.send,
        sink=sink,
        agents=("U01", "U02"),
        wall_clock=wall_clock,
    )


async def test_cancelling_the_domain_withdraws_pending_offers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slack, sink = FakeSlack(), MemoryFactSink()
    domain = make_domain(slack, sink)
    async with trio.open_nursery() as outer:
        await outer.start(slack.run)
        async with trio.open_nursery() as inner:
            await inner.start(domain.run)
            for agent in ("U01", "U02"):
                await domain.deliver(PresenceChanged(agent, True))
            sessions = [(await domain.open_session(f"c{i}")).session_id for i in range(2)]
            for session in sessions:
                await domain.customer_says(session, "human please")
            offers = [await slack.next_offer() for _ in sessions]
            await trio.sleep(7)
            inner.cancel_scope.cancel()
        resolved = [await slack.next(ResolveOffer) for _ in offers]
        assert trio.current_time() == 7
        assert sorted((r.offer_id, r.outcome) for r in resolved) == sorted(
            (o.offer_id, "withdrawn") for o in offers
        )
        assert sorted(f.offer_id for f in sink.of_type(OfferEnded)) == sorted(
            o.offer_id for o in offers
        )
        # the escalations stay open: a restart resumes them from the journal
        assert sink.of_type(EscalationEnded) == []
        outer.cancel_scope.cancel()


async def test_shutdown_is_bounded_when_slack_is_stuck(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send: trio.MemorySendChannel[SlackCommand]
    send, receive = trio.open_memory_channel[SlackCommand](0)
    sink = MemoryFactSink()
    domain = Domain(
        routing=RoutingSettings(agents=("U01",)),
        bot_settings=BotSettings(),
        bot=ScriptedBot(),
        slack=send,
        sink=sink,
        agents=("U01",),
        wall_clock=wall_clock,
        shutdown_grace_s=5,
    )

    async def slack_that_stalls_after_the_offer() -> None:
        async for command in receive:
            if isinstance(command, ConfirmPresence):
                command.reply.send(True)
            if isinstance(command, PostOffer):
                return  # stops reading: every later command blocks

    async with trio.open_nursery() as outer:
        outer.start_soon(slack_that_stalls_after_the_offer)
        async with trio.open_nursery() as inner:
            await inner.start(domain.run)
            await domain.deliver(PresenceChanged("U01", True))
            session = (await domain.open_session("c")).session_id
            await domain.customer_says(session, "human")
            await trio.sleep(1)
            inner.cancel_scope.cancel()
        assert trio.current_time() == 1 + 5  # bounded by shutdown_grace_s
        assert [f.outcome for f in sink.of_type(OfferEnded)] == ["withdrawn"]


async def test_calls_before_the_domain_runs_are_refused() -> None:
    domain = make_domain(FakeSlack(), MemoryFactSink())
    with pytest.raises(DomainStopped):
        await domain.open_session(None)
