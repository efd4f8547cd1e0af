"""A running domain with real business hours on the mock clock, for the live-chat-first and
lead tests: `office()` is the harness's `running()` with `OpeningHours` wired in as the daemon
wires them (`is_open` and `next_opening` of the wall clock, which follows trio's clock)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from actors.business_hours import OpeningHours
from actors.domain import Domain
from actors.facts import MemoryFactSink
from actors.ports import PresenceChanged
from actors.settings import BotSettings, BusinessHours, RoutingSettings
from tests.actors.harness import FakeSlack, Harness, ScriptedBot, wall_clock

__all__ = ["AGENTS", "OPENS_AT", "PARIS_HOURS", "office"]

# EPOCH is Friday 2027-01-15 08:00 UTC, 09:00 in Paris: the team opens at 09:30 (t = 1800 s).
WEEKDAY = ("09:30-18:00",)
PARIS_HOURS = BusinessHours(
    timezone="Europe/Paris",
    weekly={"mon": WEEKDAY, "tue": WEEKDAY, "wed": WEEKDAY, "thu": WEEKDAY, "fri": WEEKDAY},
)
OPENS_AT = 1800.0
AGENTS = ("U01", "U02")


@asynccontextmanager
async def office(
    *,
    live_chat_first: bool = True,
    hours: BusinessHours = PARIS_HOURS,
    max_tries: int = 2,
    present: tuple[str, ...] = AGENTS,
) -> AsyncIterator[Harness]:
    """A running domain whose opening hours follow the mock clock (through `wall_clock`)."""
    opening = OpeningHours.from_settings(hours)

    def now() -> dt.datetime:
        return dt.datetime.fromtimestamp(wall_clock(), dt.UTC)

    routing = RoutingSettings(agents=AGENTS, offer_timeout_s=30.0, max_tries=max_tries)
    texts = BotSettings(live_chat_first=live_chat_first)
    slack, sink = FakeSlack(), MemoryFactSink()
    domain = Domain(
        routing=routing,
        bot_settings=texts,
        bot=ScriptedBot(),
        slack=slack.send,
        sink=sink,
        agents=AGENTS,
        is_open=lambda: opening.is_open(now()),
        next_opening=lambda: opening.next_opening(now()),
        wall_clock=wall_clock,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        for agent_id in present:
            await domain.deliver(PresenceChanged(agent_id, True))
        harness = Harness(domain, slack, sink, routing, texts)
        await harness.settle()
        yield harness
        nursery.cancel_scope.cancel()
