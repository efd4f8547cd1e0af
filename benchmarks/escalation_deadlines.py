"""1,000 concurrent escalations against 100 agents with 5 s offer timeouts, on the real clock.

    python benchmarks/escalation_deadlines.py [--escalations 1000] [--agents 100] [--timeout 5]
        [--accept 0.3] [--ignore 0.2] [--seed 1]

One process runs the daemon's actors (`Domain`, shipped knowledge-base bot) with a Slack port that
answers at once, and simulated agents that answer each offer after 0.5-4.5 s: accept, ignore, or
(the rest) never answer, so the offer's deadline fires. Accepted takeovers end 5-20 s later. All
escalations start at once. The run ends when every escalation has an outcome.

Deadline lateness of a missed offer = when the escalation recorded `OfferEnded(missed)` minus the
offer's deadline (`OfferMade.expires_at`); the domain's wall clock is trio's clock here, so the
difference is exact. Baseline measured in the same run: the lateness of a probe task that sleeps
50 ms in a loop, i.e. how late the busy event loop wakes any sleeper.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import psutil
import trio
from hdrh.histogram import HdrHistogram

sys.path.insert(0, str(Path(__file__).resolve().parent))

from domain_rig import ROOT, AutoSlack, CountingSink

from actors.domain import Domain
from actors.facts import EscalationEnded, Fact, OfferEnded, OfferMade
from actors.knowledge_bot import KnowledgeBot, load_knowledge_base
from actors.ports import (
    EndTakeoverRequested,
    OfferAnswered,
    OpenRoom,
    PostOffer,
    PresenceChanged,
    RoomOpened,
    SlackCommand,
)
from actors.settings import BotSettings, RoutingSettings

EPOCH = 1_800_000_000.0


class World:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.expires: dict[str, float] = {}
        self.lateness = HdrHistogram(1, 3_600_000_000, 3)  # µs
        self.probe = HdrHistogram(1, 3_600_000_000, 3)
        self.outcomes: dict[str, int] = {}
        self.offer_outcomes: dict[str, int] = {}
        self.ended = 0
        self.all_ended = trio.Event()
        self.work_send, self.work_receive = trio.open_memory_channel[SlackCommand](100_000)
        self.domain: Domain | None = None

    def on_fact(self, fact: Fact) -> None:
        match fact:
            case OfferMade(offer_id=offer_id, expires_at=expires_at):
                self.expires[offer_id] = expires_at
            case OfferEnded(offer_id=offer_id, outcome=outcome, at=at):
                self.offer_outcomes[outcome] = self.offer_outcomes.get(outcome, 0) + 1
                if outcome == "missed":
                    late_us = (at - self.expires[offer_id]) * 1e6
                    self.lateness.record_value(max(1, round(late_us)))
            case EscalationEnded(outcome=outcome):
                self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
                self.ended += 1
                if self.ended == self.args.escalations:
                    self.all_ended.set()
            case _:
                pass

    def on_command(self, command: SlackCommand, now: float) -> None:
        if isinstance(command, PostOffer | OpenRoom):
            self.work_send.send_nowait(command)

    async def agents(self) -> None:
        async with trio.open_nursery() as nursery:
            async for command in self.work_receive:
                if isinstance(command, PostOffer):
                    nursery.start_soon(self.answer, command)
                else:
                    nursery.start_soon(self.end_takeover, command)

    async def answer(self, command: PostOffer) -> None:
        offer, args = command.offer, self.args
        roll = self.rng.random()
        await trio.sleep(self.rng.uniform(0.5, args.timeout - 0.5))
        if roll < args.accept + args.ignore:
            assert self.domain is not None
            accepted = roll < args.accept
            await self.domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, accepted))

    async def end_takeover(self, command: OpenRoom) -> None:
        room: RoomOpened = await command.reply.receive()
        await trio.sleep(self.rng.uniform(5, 20))
        assert self.domain is not None
        await self.domain.deliver(EndTakeoverRequested(room.room_id, command.agent_id))

    async def probe_loop(self) -> None:
        while True:
            due = trio.current_time() + 0.05
            await trio.sleep_until(due)
            self.probe.record_value(max(1, round((trio.current_time() - due) * 1e6)))


class ObservedSlack(AutoSlack):
    """AutoSlack that also lets the simulated agents see the room's answer."""

    def __init__(self, world: World) -> None:
        super().__init__(on_command=world.on_command)


async def run(args: argparse.Namespace) -> None:
    world = World(args)
    slack = ObservedSlack(world)
    agents = tuple(f"U{n:04d}" for n in range(args.agents))
    texts = BotSettings()
    kb = load_knowledge_base(ROOT / "knowledge_base.yaml")
    domain = Domain(
        routing=RoutingSettings(
            agents=agents, offer_timeout_s=args.timeout, max_tries=3, max_chats_per_agent=3
        ),
        bot_settings=texts,
        bot=KnowledgeBot(kb, texts.handoff_phrases, greeting=texts.greeting),
        slack=slack.send,
        sink=CountingSink(on_fact=world.on_fact),
        agents=agents,
        wall_clock=lambda: EPOCH + trio.current_time(),
        greeting=texts.greeting,
    )
    world.domain = domain
    process = psutil.Process()
    async with trio.open_nursery() as nursery:
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        for agent_id in agents:
            await domain.deliver(PresenceChanged(agent_id, True))
        sessions = [
            (await domain.open_session(f"c{i}", f"Customer {i}", None)).session_id
            for i in range(args.escalations)
        ]
        nursery.start_soon(world.agents)
        nursery.start_soon(world.probe_loop)
        cpu0, t0 = process.cpu_times(), time.perf_counter()
        async with trio.open_nursery() as burst:
            for session_id in sessions:
                burst.start_soon(domain.customer_says, session_id, "I want to talk to a human")
        with trio.fail_after(3_600):
            await world.all_ended.wait()
        elapsed = time.perf_counter() - t0
        cpu1 = process.cpu_times()
        nursery.cancel_scope.cancel()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    stats_searching = domain.stats().by_outcome.get("searching", 0)

    def ms(h: HdrHistogram, p: float) -> float:
        return h.get_value_at_percentile(p) / 1000

    print(f"{args.escalations} escalations, {args.agents} agents, offer timeout {args.timeout} s, "
          f"shares accept {args.accept} / ignore {args.ignore} / miss {1 - args.accept - args.ignore:.2f}")  # fmt: skip
    print(f"  all reached an outcome in {elapsed:.1f} s: {dict(sorted(world.outcomes.items()))}, "
          f"still searching: {stats_searching}")  # fmt: skip
    print(
        f"  offers: {sum(world.offer_outcomes.values())} {dict(sorted(world.offer_outcomes.items()))}"
    )
    print(f"  process CPU {cpu:.1f} s = {cpu / elapsed:.2f} cores over the run")
    for name, h in (("missed-offer deadline lateness", world.lateness),
                    ("baseline: 50 ms sleep lateness", world.probe)):  # fmt: skip
        print(f"  {name:32} n={h.get_total_count():>6}  p50 {ms(h, 50):7.3f} ms  "
              f"p99 {ms(h, 99):7.3f} ms  p99.9 {ms(h, 99.9):7.3f} ms  max {h.get_max_value() / 1000:7.3f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--escalations", type=int, default=1_000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--accept", type=float, default=0.3)
    parser.add_argument("--ignore", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    trio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
