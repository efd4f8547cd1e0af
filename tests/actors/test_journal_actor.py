"""The JournalActor: group commit, durability before return, fsync modes, shutdown and failures."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from actors.journal import (
    JournalActor,
    JournalClosed,
    JournalFailed,
    RecordInvalid,
    Recovery,
)
from actors.settings import JournalSettings


class GatedFsync:
    """An fsync seam: data fsyncs from call number `hold_from` on wait for `gate`; logs the order."""

    def __init__(self, hold_from: int = 1, fail: bool = False) -> None:
        self.gate = threading.Event()
        self.started = trio.Event()
        self.events: list[str] = []
        self.data_calls = 0
        self._hold_from = hold_from
        self._fail = fail

    def __call__(self, fd: int) -> None:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.fsync(fd)  # directory fsyncs pass straight through
            return
        self.data_calls += 1
        if self._fail:
            raise OSError(errno.EIO, "simulated disk error")
        if self.data_calls >= self._hold_from:
            self.events.append("fsync_started")
            trio.from_thread.run_sync(self.started.set)
            self.gate.wait()
        os.fsync(fd)
        self.events.append("fsync_done")


def _segment_files(path: Path) -> list[Path]:
    return sorted(path.glob("segment-*.jrn"))


async def _recover(path: Path) -> Recovery:
    journal = JournalActor(path)
    async with trio.open_nursery() as nursery:
        recovery: Recovery = await nursery.start(journal.run)
        nursery.cancel_scope.cancel()
    return recovery


async def test_append_returns_only_after_its_fsync(tmp_path: Path) -> None:
    seam = GatedFsync()
    journal = JournalActor(tmp_path, fsync_fn=seam)
    returned: list[int] = []
    done = trio.Event()

    async def appender() -> None:
        returned.append(await journal.append({"type": "customer_message", "text": "hi"}))
        seam.events.append("append_returned")
        done.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        nursery.start_soon(appender)
        try:
            await seam.started.wait()
            await trio.testing.wait_all_tasks_blocked()
            assert returned == []  # written, not yet synced: the appender still waits
            assert journal.statistics().last_durable_lsn == 0
            assert b"customer_message" in _segment_files(tmp_path)[0].read_bytes()
        finally:
            seam.gate.set()
        with trio.fail_after(10):
            await done.wait()
        assert returned == [1]
        assert seam.events == ["fsync_started", "fsync_done", "append_returned"]
        nursery.cancel_scope.cancel()


async def test_group_commit_batches_concurrent_appenders(tmp_path: Path) -> None:
    seam = GatedFsync()
    journal = JournalActor(tmp_path, fsync="batch", fsync_fn=seam)
    lsns: list[int] = []

    async def appender(i: int) -> None:
        lsns.append(await journal.append({"type": "agent_message", "i": i}))

    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        async with trio.open_nursery() as writers:
            try:
                writers.start_soon(appender, 0)
                await seam.started.wait()  # the first record is being synced...
                for i in range(1, 100):
                    writers.start_soon(appender, i)
                await trio.testing.wait_all_tasks_blocked()  # ...while the 99 others queue
                queued = journal.statistics().queued
            finally:
                seam.gate.set()
        stats = journal.statistics()
        nursery.cancel_scope.cancel()
    assert queued == 100  # not yet durable: the one being synced and the 99 behind it
    assert sorted(lsns) == list(range(1, 101))
    assert (stats.appended, stats.durable, stats.last_durable_lsn) == (100, 100, 100)
    assert stats.fsyncs == stats.batches == 2 < stats.appended
    assert (stats.max_batch, stats.mean_batch) == (99, 50.0)
    assert stats.bytes_written == sum(p.stat().st_size for p in _segment_files(tmp_path))
    assert len((await _recover(tmp_path)).records) == 100


@pytest.mark.parametrize(("mode", "fsyncs"), [("always", 100), ("off", 0)])
async def test_fsync_modes(tmp_path: Path, mode: Any, fsyncs: int) -> None:
    seam = GatedFsync()
    seam.gate.set()
    journal = JournalActor(tmp_path, fsync=mode, fsync_fn=seam)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        async with trio.open_nursery() as writers:
            for i in range(100):
                writers.start_soon(journal.append, {"type": "agent_message", "i": i})
        stats = journal.statistics()
        nursery.cancel_scope.cancel()
    assert stats.fsyncs == seam.data_calls == fsyncs
    if mode == "always":
        assert stats.batches == 100 and stats.max_batch == 1
    recovered = (await _recover(tmp_path)).records
    assert sorted(e.record["i"] for e in recovered) == list(range(100))


async def test_append_nowait_then_wait_durable(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        first = journal.append_nowait({"type": "bot_message", "n": 1})
        second = journal.append_nowait({"type": "bot_message", "n": 2})
        assert (first, second) == (1, 2)
        await journal.wait_durable(second)
        assert journal.statistics().last_durable_lsn == 2
        await journal.wait_durable(first)  # already durable: returns at once
        with pytest.raises(ValueError, match="not been appended"):
            await journal.wait_durable(3)
        nursery.cancel_scope.cancel()


async def test_cancellation_flushes_what_was_queued(tmp_path: Path) -> None:
    seam = GatedFsync()
    journal = JournalActor(tmp_path, fsync_fn=seam)
    outcomes: list[int] = []

    async def waiter(lsn: int) -> None:
        await journal.wait_durable(lsn)
        outcomes.append(lsn)

    async with trio.open_nursery() as outer, trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        try:
            lsns = [journal.append_nowait({"type": "customer_message", "n": 0})]
            await seam.started.wait()  # the first record is being synced when the stop comes
            lsns += [
                journal.append_nowait({"type": "customer_message", "n": n}) for n in range(1, 50)
            ]
            for lsn in lsns:
                outer.start_soon(waiter, lsn)
            await trio.testing.wait_all_tasks_blocked()
            assert journal.statistics().queued == 50
            nursery.cancel_scope.cancel()
        finally:
            seam.gate.set()
    assert sorted(outcomes) == lsns
    stats = journal.statistics()
    assert (stats.last_durable_lsn, stats.batches, stats.queued) == (50, 2, 0)
    with pytest.raises(JournalClosed):
        journal.append_nowait({"type": "customer_message"})
    assert [e.record["n"] for e in (await _recover(tmp_path)).records] == list(range(50))


async def test_shutdown_is_bounded_when_the_disk_hangs(tmp_path: Path, autojump_clock: Any) -> None:
    seam = GatedFsync(hold_from=2)
    journal = JournalActor(tmp_path, fsync_fn=seam, shutdown_grace_s=5.0)
    failures: list[str] = []

    async def waiter(lsn: int) -> None:
        try:
            await journal.wait_durable(lsn)
        except JournalClosed as e:
            failures.append(str(e))

    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            await journal.append({"type": "customer_message", "n": 0})
            pending = journal.append_nowait({"type": "customer_message", "n": 1})
            outer.start_soon(waiter, pending)
            start = trio.current_time()
            nursery.cancel_scope.cancel()
        assert trio.current_time() - start == 5.0
    assert failures == ["the journal stopped before lsn 2 was durable"]
    seam.gate.set()  # let the abandoned worker thread finish


async def test_a_failed_fsync_fails_appenders_and_stops_the_journal(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path, fsync_fn=GatedFsync(fail=True))
    with pytest.RaisesGroup(pytest.RaisesExc(JournalFailed, match="simulated disk error")):
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            with pytest.raises(JournalFailed, match="nothing after lsn 0 is durable"):
                await journal.append({"type": "customer_message"})
    with pytest.raises(JournalFailed):
        journal.append_nowait({"type": "customer_message"})


async def test_bad_records_are_refused_without_using_an_lsn(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        with pytest.raises(RecordInvalid):
            await journal.append({"type": "x", "when": object()})
        with pytest.raises(RecordInvalid):
            journal.append_nowait({"no": "type"})
        assert await journal.append({"type": "x"}) == 1
        nursery.cancel_scope.cancel()


async def test_not_running_means_closed(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path)
    with pytest.raises(JournalClosed, match="not running"):
        journal.append_nowait({"type": "x"})
    with pytest.raises(JournalClosed):
        await journal.snapshot({})


async def test_lsns_continue_after_a_restart(tmp_path: Path) -> None:
    for expected in (1, 2, 3):
        journal = JournalActor(tmp_path)
        async with trio.open_nursery() as nursery:
            recovery = await nursery.start(journal.run)
            assert recovery.report.last_lsn == expected - 1
            assert await journal.append({"type": "x"}) == expected
            nursery.cancel_scope.cancel()


async def test_built_from_settings(tmp_path: Path) -> None:
    settings = JournalSettings(path=str(tmp_path / "j"), fsync="always", snapshot_every=100)
    seam = GatedFsync()
    seam.gate.set()
    journal = JournalActor.from_settings(settings, fsync_fn=seam)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        async with trio.open_nursery() as writers:
            for _ in range(3):
                writers.start_soon(journal.append, {"type": "x"})
        assert journal.statistics().fsyncs == seam.data_calls == 3  # "always": one per record
        nursery.cancel_scope.cancel()
    assert (tmp_path / "j").is_dir()
    with pytest.raises(ValueError, match="fsync"):
        JournalActor(tmp_path, fsync="sometimes")  # type: ignore[arg-type]
