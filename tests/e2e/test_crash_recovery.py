"""kill -9 under load: the daemon as a subprocess (Slack's side in its own emulator process, which
survives like Slack would), customers and agents at work, SIGKILL at random moments, restarts.

Checked afterwards (`crash_rig.audit`): every message answered 202 is in its session's events at
its seq, once, in order; every search reached an outcome after the restarts; no agent message
reached the customer twice; no customer line was posted twice in a room, no offer DM twice, no
room got two headers, no takeover two rooms; no daemon logged an error. The CI run kills three
times; `--run-slow` runs fifty kill points. `CRASH_SEED=n` replays a run.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import httpx
import pytest
import trio
import yaml

from actors.journal import JournalActor
from tests.e2e.crash_rig import ROOT, Agents, Customer, Stack, audit, searching, summary


async def _settled(stack: Stack, people: list[Customer]) -> None:
    """Wait (polling the processes, under the caller's deadline) until no search is left, every
    customer who saw `searching` has seen its outcome (a room may take a while to fill with a
    long transcript, at Slack's pace of a post a second), and neither Slack nor the daemon has
    changed for three seconds."""
    while True:
        stats = (await stack.chat("GET", "/api/stats")).json()
        waiting = [p for p in people if p.session_id and searching(await p.events(stack))]
        if not stats["escalations"]["searching"] and not waiting:
            break
        await trio.sleep(0.5)
    quiet_since, last = trio.current_time(), None
    while trio.current_time() - quiet_since < 3.0:
        await trio.sleep(0.5)
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
            await _settled(stack, people)  # the agents go on answering the last offers
            stop_agents.set()
            await _settled(stack, people)
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


async def _journal_with(path: Path, records: list[dict[str, object]]) -> None:
    journal = JournalActor(path, fsync="off")
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for record in records:
            await journal.append(record)
        nursery.cancel_scope.cancel()


_SESSION = {
    "type": "session_started",
    "schema": 1,
    "session_id": "s1",
    "customer_id": "c1",
    "name": "",
    "email": "",
    "token_digest": "d",
    "at": 1.0,
}


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("newer_record", "journal record 2: session_ended: schema 7 is newer"),
        ("flipped_bit", "journal.path"),
    ],
)
async def test_a_journal_it_cannot_trust_stops_the_daemon_with_exit_2(
    tmp_path: Path, damage: str, says: str
) -> None:
    journal = tmp_path / "journal"
    newer = {"type": "session_ended", "schema": 7, "session_id": "s1", "seq": 1, "at": 2.0}
    with trio.fail_after(60):
        await _journal_with(
            journal, [_SESSION, newer, _SESSION] if damage == "newer_record" else [_SESSION] * 3
        )
        if damage == "flipped_bit":  # the middle record: valid records follow, not a torn tail
            (segment,) = journal.glob("segment-*.jrn")
            data = bytearray(segment.read_bytes())
            data[len(data) // 2] ^= 0x01
            segment.write_bytes(bytes(data))
        settings = tmp_path / "daemon.yaml"
        settings.write_text(
            yaml.safe_dump(
                {
                    "http": {"port": 0},
                    "emulator": {"port": 0},
                    "journal": {"path": str(journal)},
                    "log": {"format": "json"},
                }
            )
        )
        done = await trio.run_process(
            [sys.executable, "run.py", "--settings", str(settings)],
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    last = done.stderr.decode().strip().splitlines()[-1]
    assert done.returncode == 2, done.stderr.decode()[-2000:]
    assert last.startswith("takeover: journal.path: ") and says in last
