"""Dispatcher routing-decision latency with 500 agents and 1,000 waiting escalations.

    python benchmarks/dispatcher_decisions.py [--agents 500] [--waiting 1000] [--messages 20000]

Every agent is active and held by an escalation's pending offer, and `--waiting` more escalations
wait in the queue. A seeded stream of the dispatcher's messages then flows, as a busy daemon would
send them: offers end (accepted, ignored, missed) and free their agent for the head of the queue,
ignored and missed escalations ask again for their next agent, new escalations arrive to keep the
queue at `--waiting`, takeovers end, presence flaps, waiting escalations are cancelled.

Measured per message into HdrHistograms, as wall time (`perf_counter_ns`: includes being
preempted by other processes on a shared machine) and as the thread's CPU time (`thread_time_ns`:
the cost of the decision itself):
- `dispatch(state, msg, now)`: the pure routing decision;
- `Dispatcher.handle(msg)`: the actor's whole handling (decision, answers to escalations'
  mailboxes, forwarding to agents' actors, sweeping), on a second run of the same stream.
Baseline in the same run: sorting the full chain of available agents (`routing.chain`), what a
naive dispatcher would do per decision.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import trio
from hdrh.histogram import HdrHistogram

sys.path.insert(0, str(Path(__file__).resolve().parent))

import domain_rig  # noqa: F401  (puts the project on sys.path)

from actors.dispatcher import Dispatcher
from actors.messages import (
    CancelRequest,
    DispatcherMsg,
    OfferFinished,
    OfferStarted,
    RequestAgent,
    TakeoverFinished,
)
from actors.ports import PresenceChanged
from actors.routing import (
    Assign,
    DispatchState,
    Exhaust,
    RoutingRules,
    WithdrawFrom,
    chain,
    dispatch,
)

MAX_CHATS = 3


class Stream:
    """The simulated world around the dispatcher: decides the next message from its effects."""

    def __init__(self, agents: list[str], waiting: int, seed: int, box: object) -> None:
        self.rng = random.Random(seed)
        self.agents = agents
        self.target_waiting = waiting
        self.box = box
        self.ids = itertools.count(1)
        self.offering: dict[str, str] = {}  # agent -> escalation
        self.escalations: dict[str, tuple[frozenset[str], int]] = {}  # id -> (excluded, tries)
        self.queued: set[str] = set()
        self.loads: dict[str, int] = dict.fromkeys(agents, 0)
        self.away: set[str] = set()
        self.follow: list[DispatcherMsg] = []
        self.now = 0.0

    def request(self, escalation_id: str | None = None) -> RequestAgent:
        if escalation_id is None:
            escalation_id = f"e{next(self.ids)}"
            self.escalations[escalation_id] = (frozenset(), 0)
        excluded, tries = self.escalations[escalation_id]
        self.queued.add(escalation_id)
        return RequestAgent(escalation_id, excluded, tries, self.now, self.box)  # type: ignore[arg-type]

    def apply(self, effects: list[Assign | Exhaust | WithdrawFrom]) -> None:
        for effect in effects:
            match effect:
                case Assign(escalation_id, agent_id, _):
                    self.queued.discard(escalation_id)
                    self.offering[agent_id] = escalation_id
                    self.follow.append(OfferStarted(escalation_id, f"o{escalation_id}", agent_id))
                case Exhaust(escalation_id, _, _):
                    self.queued.discard(escalation_id)
                    self.escalations.pop(escalation_id, None)
                case WithdrawFrom(escalation_id, agent_id):
                    if self.offering.get(agent_id) == escalation_id:
                        del self.offering[agent_id]
                        self.follow.append(
                            OfferFinished(escalation_id, "o", agent_id, "withdrawn", 1.0)
                        )
                        self.follow.append(self.request(escalation_id))

    def next(self) -> DispatcherMsg:
        self.now += 0.001
        if self.follow:
            return self.follow.pop(0)
        if len(self.queued) < self.target_waiting:
            return self.request()
        roll = self.rng.random()
        if roll < 0.6 and self.offering:
            agent_id = self.rng.choice(list(self.offering))
            escalation_id = self.offering.pop(agent_id)
            outcome = self.rng.choices(["accepted", "ignored", "missed"], [3, 3, 4])[0]
            if outcome == "accepted":
                self.loads[agent_id] += 1
                self.escalations.pop(escalation_id, None)
            else:
                excluded, tries = self.escalations[escalation_id]
                self.escalations[escalation_id] = (excluded | {agent_id}, tries + 1)
                self.follow.append(self.request(escalation_id))
            return OfferFinished(escalation_id, f"o{escalation_id}", agent_id, outcome, 5.0)  # type: ignore[arg-type]
        if roll < 0.8:
            loaded = [a for a, n in self.loads.items() if n > 0]
            if loaded:
                agent_id = self.rng.choice(loaded)
                self.loads[agent_id] -= 1
                return TakeoverFinished(agent_id, "t", 60.0)
        if roll < 0.9 and self.queued:
            escalation_id = self.rng.choice(sorted(self.queued))
            self.queued.discard(escalation_id)
            self.escalations.pop(escalation_id, None)
            return CancelRequest(escalation_id)
        agent_id = self.rng.choice(self.agents)
        if agent_id in self.away:
            self.away.discard(agent_id)
            return PresenceChanged(agent_id, True)
        self.away.add(agent_id)
        if agent_id in self.offering:
            pass  # the dispatcher answers WithdrawFrom; `apply` follows it up
        return PresenceChanged(agent_id, False)


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, 10_000_000_000, 3)  # ns


def _fill(n_agents: int, waiting: int, seed: int, box: object) -> tuple[DispatchState, Stream]:
    """Every agent active and offering to one escalation; `waiting` more queued."""
    agents = [f"U{n:05d}" for n in range(n_agents)]
    rules = RoutingRules(max_tries=3, max_chats_per_agent=MAX_CHATS)
    state = DispatchState.initial(rules, tuple(agents), now=0.0)
    stream = Stream(agents, waiting, seed, box)
    for agent_id in agents:
        state, effects = dispatch(state, PresenceChanged(agent_id, True), 0.0)
    while len(stream.offering) < n_agents or stream.follow:
        msg = stream.next() if stream.follow else stream.request()
        state, effects = dispatch(state, msg, stream.now)
        stream.apply(effects)
    while len(stream.queued) < waiting:
        state, effects = dispatch(state, stream.request(), stream.now)
        stream.apply(effects)
    assert len(state.waiting) == waiting, len(state.waiting)
    return state, stream


def _report(name: str, h: HdrHistogram) -> None:
    def ms(p: float) -> float:
        return h.get_value_at_percentile(p) / 1e6

    print(f"  {name:24} n={h.get_total_count():>7}  p50 {ms(50):7.3f} ms  p99 {ms(99):7.3f} ms  "
          f"p99.9 {ms(99.9):7.3f} ms  max {h.get_max_value() / 1e6:7.3f} ms")  # fmt: skip


def bench_pure(n_agents: int, waiting: int, messages: int, seed: int) -> None:
    state, stream = _fill(n_agents, waiting, seed, object())
    by_type: dict[str, HdrHistogram] = {}
    wall, cpu = _histogram(), _histogram()
    queue_sizes = []
    wall_ns: Callable[[], int] = time.perf_counter_ns
    cpu_ns: Callable[[], int] = time.thread_time_ns
    for _ in range(messages):
        msg = stream.next()
        c0, t0 = cpu_ns(), wall_ns()
        state, effects = dispatch(state, msg, stream.now)
        elapsed, used = wall_ns() - t0, cpu_ns() - c0
        stream.apply(effects)
        wall.record_value(max(1, elapsed))
        cpu.record_value(max(1, used))
        by_type.setdefault(type(msg).__name__, _histogram()).record_value(max(1, used))
        queue_sizes.append(len(state.waiting))
    print(f"pure dispatch(): {n_agents} agents, waiting queue "
          f"{min(queue_sizes)}-{max(queue_sizes)} (mean {sum(queue_sizes) / len(queue_sizes):.0f})")  # fmt: skip
    _report("all, wall time", wall)
    _report("all, CPU time", cpu)
    for name in sorted(by_type):
        _report(f"{name}, CPU", by_type[name])
    baseline = _histogram()
    for _ in range(2_000):
        excluded = frozenset(stream.rng.sample(stream.agents, 2))
        c0 = cpu_ns()
        chain(state.agents, state.rules, excluded)
        baseline.record_value(max(1, cpu_ns() - c0))
    _report("baseline: chain sort, CPU", baseline)
    p99_total = cpu.get_value_at_percentile(99)
    p99_base = baseline.get_value_at_percentile(99)
    print(f"  decision CPU p99 = {p99_total / p99_base:.2f}x one full chain sort")


async def bench_actor(n_agents: int, waiting: int, messages: int, seed: int) -> None:
    escalation_send, escalation_receive = trio.open_memory_channel[object](10_000_000)
    state, stream = _fill(n_agents, waiting, seed, escalation_send)
    agent_boxes = {a: trio.open_memory_channel[object](10_000_000) for a in stream.agents}
    dispatcher = Dispatcher(
        state.rules,
        {a: send for a, (send, _) in agent_boxes.items()},  # type: ignore[misc]
    )
    dispatcher.state = state
    for msg in [w for w in state.waiting]:
        dispatcher._boxes[msg.escalation_id] = escalation_send  # type: ignore[assignment]
    for agent in state.agents.values():
        if agent.holder is not None:
            dispatcher._boxes[agent.holder] = escalation_send  # type: ignore[assignment]
    wall, cpu = _histogram(), _histogram()
    for _ in range(messages):
        msg = stream.next()
        before = dispatcher.state
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        await dispatcher.handle(msg)
        elapsed, used = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
        # replay the pure step to learn the effects the actor just sent
        _, effects = dispatch(before, msg, stream.now)
        stream.apply(effects)
        wall.record_value(max(1, elapsed))
        cpu.record_value(max(1, used))
        while True:
            try:
                escalation_receive.receive_nowait()
            except trio.WouldBlock:
                break
    print(f"Dispatcher.handle() (actor, answers and forwarding): {n_agents} agents")
    _report("all, wall time", wall)
    _report("all, CPU time", cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--waiting", type=int, default=1_000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    bench_pure(args.agents, args.waiting, args.messages, args.seed)
    trio.run(bench_actor, args.agents, args.waiting, args.messages, args.seed)


if __name__ == "__main__":
    main()
