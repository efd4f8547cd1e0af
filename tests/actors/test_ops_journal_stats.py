"""What operations read from the journal: write+fsync latency per batch, running and failed."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import trio

from actors.histogram import FSYNC_BOUNDS
from actors.journal import JournalActor, JournalFailed


async def test_each_batch_write_is_timed_and_running_is_reported(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path / "j", fsync="always")
    assert journal.statistics().running is False
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        with trio.fail_after(10):
            for n in range(3):
                await journal.append({"type": "note", "n": n})
        stats = journal.statistics()
        assert stats.running and not stats.failed
        assert stats.write_seconds.bounds == FSYNC_BOUNDS
        assert stats.write_seconds.count == stats.batches == 3
        assert stats.write_seconds.sum > 0
        nursery.cancel_scope.cancel()
    assert journal.statistics().running is False


async def test_a_failed_write_shows_as_failed(tmp_path: Path) -> None:
    def broken_fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "simulated disk error")
        os.fsync(fd)

    journal = JournalActor(tmp_path / "j", fsync="always", fsync_fn=broken_fsync)
    refused = False
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            with trio.fail_after(10):
                await journal.append({"type": "note"})
    except* JournalFailed:
        refused = True
    assert refused
    stats = journal.statistics()
    assert stats.failed and not stats.running
    assert stats.write_seconds.count == 0  # a failed write is not a latency sample
