"""The journal sink on a real journal directory: durable facts, shared fsyncs, snapshots, and a
domain restored from what a crash leaves on disk."""

from __future__ import annotations

import shutil
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from actors.domain import Domain
from actors.durable_state import DurableState
from actors.facts import CustomerMessaged, SessionStarted
from actors.journal import JournalActor, RecordInvalid, Recovery
from actors.journal_sink import JournalSink
from actors.ports import OfferAnswered, PresenceChanged, ResolveOffer, RoomMessagePosted
from actors.restore import RestoreError, rebuild
from actors.settings import BotSettings, RoutingSettings
from actors.state_codec import encode_state
from tests.actors.harness import AGENTS, FakeSlack, ScriptedBot, wall_clock


async def recover(path: Path) -> Recovery:
    journal = JournalActor(path, fsync="off")
    async with trio.open_nursery() as nursery:
        recovery: Recovery = await nursery.start(journal.run)
        nursery.cancel_scope.cancel()
    return recovery


@asynccontextmanager
async def domain_on(
    journal: JournalActor, state: DurableState | None = None
) -> AsyncIterator[tuple[Domain, JournalSink, FakeSlack]]:
    """A running journal, its sink and a domain recording through it (restored from `state`)."""
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        sink = JournalSink(journal, state)
        slack = FakeSlack()
        domain = Domain(
            routing=RoutingSettings(agents=AGENTS),
            bot_settings=BotSettings(),
            bot=ScriptedBot(),
            slack=slack.send,
            sink=sink,
            agents=AGENTS,
            wall_clock=wall_clock,
            recovered=state,
        )
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        for agent in AGENTS:
            await domain.deliver(PresenceChanged(agent, True))
        yield domain, sink, slack
        nursery.cancel_scope.cancel()


def session_fact(n: int) -> SessionStarted:
    return SessionStarted(f"s{n}", f"c{n}", "", "", "digest", 1.0)


async def test_record_returns_once_durable_and_concurrent_writers_share_fsyncs(
    tmp_path: Path,
) -> None:
    held, entered = threading.Event(), threading.Event()
    calls = 0

    def fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        entered.set()
        held.wait()

    journal = JournalActor(tmp_path, fsync="batch", fsync_fn=fsync)
    done: list[int] = []
    sink = JournalSink(journal)

    async def write(n: int) -> None:
        await sink.record(session_fact(n))
        done.append(n)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            held.set()  # recovery and the first segment's directory fsyncs go through
            await nursery.start(journal.run)
            held.clear()
            entered.clear()
            async with trio.open_nursery() as writers:
                writers.start_soon(write, 0)
                await trio.to_thread.run_sync(entered.wait)  # the first batch is in its fsync
                for n in range(1, 20):
                    writers.start_soon(write, n)
                await trio.testing.wait_all_tasks_blocked()
                assert done == [] and journal.statistics().queued == 20
                assert len(sink.state.sessions) == 20  # folded in LSN order as appended
                held.set()
            stats = journal.statistics()
            assert (stats.durable, stats.batches, stats.max_batch) == (20, 2, 19)
            nursery.cancel_scope.cancel()
    assert sink.statistics().recorded == 20


async def test_a_domain_comes_back_from_what_a_crash_leaves_on_disk(tmp_path: Path) -> None:
    live_dir, crash_dir = tmp_path / "live", tmp_path / "crash"
    with trio.fail_after(30):
        async with domain_on(JournalActor(live_dir, fsync="off")) as (domain, sink, slack):
            ada = (await domain.open_session("ada", "Ada", None)).session_id
            await domain.customer_says(ada, "hello")
            await domain.customer_says(ada, "a human please")
            offer = await slack.next_offer()
            await domain.deliver(OfferAnswered(offer.offer_id, offer.agent_id, True))
            await slack.next(ResolveOffer)  # sent once the takeover is recorded
            room = next(iter(slack.rooms.values())).room_id
            await domain.deliver(RoomMessagePosted(room, offer.agent_id, "Hi Ada", "m1"))
            assert await sink.snapshot() is not None
            bob = (await domain.open_session("bob", None, None)).session_id
            await domain.customer_says(bob, "human")
            await slack.next_offer()
            await trio.testing.wait_all_tasks_blocked()
            expected = encode_state(sink.state)
            seen = {sid: domain.events_after(sid, 0) for sid in (ada, bob)}
            await trio.to_thread.run_sync(shutil.copytree, live_dir, crash_dir)
        recovery = await recover(crash_dir)
        assert recovery.report.snapshot_lsn > 0 and recovery.records
        state = rebuild(recovery.snapshot, recovery.records)
        assert encode_state(state) == expected
        async with domain_on(JournalActor(crash_dir, fsync="off"), state) as (again, _, slack2):
            for sid, events in seen.items():
                assert again.events_after(sid, 0) == events
            assert again.mode(ada) == "takeover" and again.mode(bob) == "searching"
            await slack2.next_offer()  # bob's chain goes on


async def test_snapshots_are_taken_when_due(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path, fsync="off", snapshot_every=10)
    sink = JournalSink(journal)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            async with trio.open_nursery() as snapshots:
                await snapshots.start(sink.run_snapshots)
                n = 0
                while sink.statistics().snapshots < 2:  # each record lets the snapshots run
                    await sink.record(session_fact(n))
                    n += 1
                    assert n < 2_000
                snapshots.cancel_scope.cancel()
            assert 20 <= sink.statistics().last_snapshot_lsn <= n  # 10 and 10 more were due
            await sink.record(session_fact(n))
            assert await sink.snapshot() == n + 1  # at shutdown: everything
            assert await sink.snapshot() is None  # nothing new since
            nursery.cancel_scope.cancel()
        recovery = await recover(tmp_path)
    assert recovery.report.snapshot_lsn == n + 1 and recovery.records == ()
    assert encode_state(rebuild(recovery.snapshot, ())) == encode_state(sink.state)


async def test_a_record_this_version_cannot_read_stops_the_restore_at_its_lsn(
    tmp_path: Path,
) -> None:
    journal = JournalActor(tmp_path, fsync="off")
    bad: dict[str, Any] = {"type": "customer_messaged", "schema": 1, "session_id": "s0"}
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            sink = JournalSink(journal)
            await sink.record(session_fact(0))
            await sink.record(CustomerMessaged("s0", "c0", 1, "hi", 2.0))
            await journal.append(bad)
            nursery.cancel_scope.cancel()
        recovery = await recover(tmp_path)
    with pytest.raises(RestoreError, match="journal record 3: customer_messaged: field") as raised:
        rebuild(recovery.snapshot, recovery.records)
    assert raised.value.lsn == 3
    with pytest.raises(RestoreError, match="the snapshot cannot be read: snapshot: 'customers'"):
        rebuild({"schema": 1}, ())


async def test_a_fact_the_journal_refuses_changes_nothing(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path, fsync="off")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            sink = JournalSink(journal)
            await sink.record(session_fact(0))
            with pytest.raises(RecordInvalid):
                await sink.record(CustomerMessaged("s0", "c0", 1, "bad \ud800 text", 2.0))
            assert sink.state.facts == 1 and sink.state.sessions["s0"].events == []
            assert journal.statistics().last_lsn == 1
            nursery.cancel_scope.cancel()
