"""kill -9 under load: the daemon as a subprocess (Slack's side in its own emulator process, which
survives like Slack would), customers and agents at work, SIGKILL at random moments, restarts.

Checked afterwards (`crash_rig.audit`): every message answered 202 is in its session's events at
its seq, once, in order; every search reached an outcome after the restarts; no agent message
reached the customer twice; no customer line was posted twice in a room, no offer DM twice, no
room got two headers. The CI run kills three times; `--run-slow` runs fifty kill points.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import httpx
import pytest
import trio

from tests.e2e.crash_rig import Agents, Customer, Stack, audit, summary


async def _settled(stack: Stack) -> None:
    """Wait (polling the processes, under the caller's deadline) until no search is left and
    neither Slack nor the daemon changes for a second."""
    while True:
        stats = (await stack.chat("GET", "/api/stats")).json()
        if not stats["escalations"]["searching"]:
            break
        await trio.sleep(0.25)
    quiet_since, last = trio.current_time(), None
    while trio.current_time() - quiet_since < 1.0:
        await trio.sleep(0.25)
        now = (
            (await stack.emu("GET", "/_emu/changes", params={"wait": "0"}))["version"],
            (await stack.chat("GET", "/api/stats")).text,
        )
        if now != last:
            quiet_since, last = trio.current_time(), now


async def crash_run(tmp: Path, *, kills: int, customers: int, seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
        stack = Stack(tmp, nursery, http)
        try:
            await stack.start_emulator()
            await stack.start_daemon()
            stop_customers, stop_agents = trio.Event(), trio.Event()
            people = [Customer(f"c{n}") for n in range(customers)]
            for person in people:
                nursery.start_soon(person.run, stack, random.Random(rng.random()), stop_customers)
            agents = Agents(stack, random.Random(rng.random()))
            nursery.start_soon(agents.run, stop_agents)
            for _ in range(kills):
                await trio.sleep(rng.uniform(0.3, 5.0))  # a random moment under load
                await stack.kill_daemon()
                await stack.start_daemon()
            await trio.sleep(1.0)
            stop_customers.set()
            await _settled(stack)  # the agents go on answering the last offers
            stop_agents.set()
            await _settled(stack)
            problems = await audit(stack, people, agents)
            seen = summary(stack, people, agents)
            print(f"crash run, seed {seed}, {kills} kills:", seen)
            assert problems == [], f"seed {seed}: " + "\n".join(problems)
            assert seen["messages_acked"] > 5 * customers and agents.texts and agents.decided
            assert await stack.stop_daemon() == 0  # a clean SIGTERM after all that
        finally:
            await stack.close()
            nursery.cancel_scope.cancel()


SEED = int(os.environ.get("CRASH_SEED", "0")) or random.randrange(1, 1_000_000)


async def test_kill_9_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with trio.fail_after(90):
        await crash_run(tmp_path, kills=3, customers=4, seed=SEED)


@pytest.mark.slow
async def test_fifty_kill_points(tmp_path: Path) -> None:
    with trio.fail_after(900):
        await crash_run(tmp_path, kills=50, customers=8, seed=SEED)
