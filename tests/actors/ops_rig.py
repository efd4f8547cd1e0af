"""A running domain wired as the daemon wires it for operations: facts go through a `FactTap` to
the escalation history and the hygiene actor. Slack is the harness's `FakeSlack`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
import trio.testing

from actors.domain import Domain
from actors.fact_tap import FactTap
from actors.facts import MemoryFactSink
from actors.history import EscalationHistory
from actors.hygiene import Hygiene, HygieneRules
from actors.ports import PresenceChanged
from actors.settings import BotSettings, RoutingSettings
from actors.stats import AgentStats
from tests.actors.harness import FakeSlack, ScriptedBot, wall_clock

__all__ = ["OpsRig", "ops_domain"]


@dataclass
class OpsRig:
    domain: Domain
    slack: FakeSlack
    sink: MemoryFactSink
    history: EscalationHistory
    hygiene: Hygiene
    texts: BotSettings
    told_away: list[tuple[float, str, int]] = field(default_factory=list)
    open_hours: list[bool] = field(default_factory=lambda: [True])

    async def settle(self) -> None:
        await trio.testing.wait_all_tasks_blocked()

    async def customer(self, customer_id: str | None = None) -> str:
        return (await self.domain.open_session(customer_id, "Ada", None)).session_id

    def agent(self, agent_id: str) -> AgentStats:
        return next(a for a in self.domain.stats().agents if a.id == agent_id)

    def events(self, session_id: str) -> list[tuple[str, str | None, float]]:
        return [(e.type, e.text, e.at) for e in self.domain.events_after(session_id, 0)]


@asynccontextmanager
async def ops_domain(
    agents: tuple[str, ...] = ("U01", "U02"),
    *,
    present: tuple[str, ...] | None = None,
    offer_timeout_s: float = 30.0,
    max_tries: int = 3,
    auto_away_after_misses: int = 0,
    idle_takeover_end_s: float = 0.0,
) -> AsyncIterator[OpsRig]:
    routing = RoutingSettings(
        agents=agents,
        offer_timeout_s=offer_timeout_s,
        max_tries=max_tries,
        auto_away_after_misses=auto_away_after_misses,
        idle_takeover_end_s=idle_takeover_end_s,
    )
    texts = BotSettings()
    slack = FakeSlack()
    sink = MemoryFactSink()
    told: list[tuple[float, str, int]] = []
    open_hours = [True]
    domain: Domain | None = None

    async def deliver(fact: object) -> None:
        assert domain is not None
        await domain.deliver(fact)  # type: ignore[arg-type]

    def available() -> tuple[str, ...]:
        assert domain is not None
        return tuple(a.id for a in domain.stats().agents if a.available)

    history = EscalationHistory(available=available)
    hygiene = Hygiene(
        HygieneRules.from_settings(routing),
        deliver=deliver,
        tell_away=lambda agent, misses: told.append((trio.current_time(), agent, misses)),
    )
    domain = Domain(
        routing=routing,
        bot_settings=texts,
        bot=ScriptedBot(),
        slack=slack.send,
        sink=FactTap(sink, history.observe, hygiene.observe),
        agents=agents,
        is_open=lambda: open_hours[0],
        wall_clock=wall_clock,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        await nursery.start(hygiene.run)
        for agent_id in agents if present is None else present:
            await domain.deliver(PresenceChanged(agent_id, True))
        rig = OpsRig(domain, slack, sink, history, hygiene, texts, told, open_hours)
        await rig.settle()
        yield rig
        nursery.cancel_scope.cancel()
