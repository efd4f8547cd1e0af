"""Memory of idle customer sessions and of pending escalations, in one process.

    python benchmarks/idle_memory.py [--sessions 10000 100000] [--escalations 10000]

Each measurement runs in a fresh child process (so RSS belongs to it alone) holding a running
`Domain` (the actors of the daemon) with the shipped knowledge-base bot, a Slack port that answers
at once and a fact sink that keeps nothing (the journal's memory does not grow per session):

- bare: N trio tasks each waiting on its own memory channel, the floor an actor cannot go under;
- sessions: N sessions opened through `Domain.open_session` (each greeted, as the daemon does),
  then left idle; the process's RSS in total and per session;
- escalations: N sessions that asked for a person while the only agent holds an offer that never
  ends, so N-1 escalations wait in the dispatcher's queue; bytes per pending escalation are
  counted on top of the idle session.

The garbage collector is frozen after start-up (`gc.freeze()`), as the daemon does, so that
spawning 100,000 sessions does not rescan the ones already made.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parent))

from domain_rig import ROOT, AutoSlack, CountingSink

from actors.domain import Domain
from actors.knowledge_bot import KnowledgeBot, load_knowledge_base
from actors.ports import PresenceChanged
from actors.settings import BotSettings, RoutingSettings

MIB = 1024 * 1024


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


async def bare(n: int) -> dict[str, float]:
    before = rss()
    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        keep = []
        for _ in range(n):
            send, receive = trio.open_memory_channel[object](16)
            keep.append(send)
            nursery.start_soon(receive.receive)
        await trio.testing.wait_all_tasks_blocked()
        spawn_s = time.perf_counter() - started
        after = rss()
        nursery.cancel_scope.cancel()
    return {"rss_mib": after / MIB, "bytes_each": (after - before) / n, "spawn_s": spawn_s}


def _domain(slack: AutoSlack, agents: tuple[str, ...], offer_timeout_s: float) -> Domain:
    texts = BotSettings()
    kb = load_knowledge_base(ROOT / "knowledge_base.yaml")
    bot = KnowledgeBot(kb, texts.handoff_phrases, greeting=texts.greeting)
    return Domain(
        routing=RoutingSettings(agents=agents, offer_timeout_s=offer_timeout_s),
        bot_settings=texts,
        bot=bot,
        slack=slack.send,
        sink=CountingSink(),
        agents=agents,
        greeting=texts.greeting,
    )


async def sessions(n: int, escalate: bool) -> dict[str, float]:
    slack = AutoSlack()
    agents = ("U0AGENT1",)
    domain = _domain(slack, agents, offer_timeout_s=86_400)
    result: dict[str, float] = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        await domain.deliver(PresenceChanged(agents[0], True))
        await trio.testing.wait_all_tasks_blocked()
        gc.freeze()
        before = rss()
        started = time.perf_counter()
        ids = [
            (await domain.open_session(f"c{i}", f"Customer {i}", None)).session_id for i in range(n)
        ]
        await trio.testing.wait_all_tasks_blocked()
        result["spawn_s"] = time.perf_counter() - started
        idle = rss()
        result["rss_mib"] = idle / MIB
        result["bytes_each"] = (idle - before) / n
        if escalate:
            started = time.perf_counter()
            for session_id in ids:
                await domain.customer_says(session_id, "I want to talk to a human please")
            await trio.testing.wait_all_tasks_blocked()
            result["escalate_s"] = time.perf_counter() - started
            pending = rss()
            stats = domain.stats()
            result["searching"] = stats.by_outcome["searching"]
            result["rss_mib"] = pending / MIB
            result["bytes_per_escalation"] = (pending - idle) / n
            result["bytes_session_and_escalation"] = (pending - before) / n
        nursery.cancel_scope.cancel()
    return result


def child(kind: str, n: int) -> None:
    if kind == "bare":
        out = trio.run(bare, n)
    else:
        out = trio.run(sessions, n, kind == "escalations")
    print(json.dumps(out))


def measure(kind: str, n: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--escalations", type=int, nargs="+", default=[10_000])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    print(f"{'what':44} {'N':>8} {'RSS MiB':>9} {'bytes each':>11} {'spawn s':>8}")
    for n in args.sessions:
        base = measure("bare", n)
        print(f"{'bare trio task + channel (baseline)':44} {n:>8} {base['rss_mib']:>9.1f} "
              f"{base['bytes_each']:>11.0f} {base['spawn_s']:>8.2f}")  # fmt: skip
        got = measure("sessions", n)
        print(f"{'idle session (Domain.open_session)':44} {n:>8} {got['rss_mib']:>9.1f} "
              f"{got['bytes_each']:>11.0f} {got['spawn_s']:>8.2f}"
              f"   {got['bytes_each'] / base['bytes_each']:.2f}x a bare task")  # fmt: skip
    for n in args.escalations:
        got = measure("escalations", n)
        print(f"{'pending escalation (on top of its session)':44} {n:>8} {got['rss_mib']:>9.1f} "
              f"{got['bytes_per_escalation']:>11.0f} {got['escalate_s']:>8.2f}"
              f"   searching={got['searching']:.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
