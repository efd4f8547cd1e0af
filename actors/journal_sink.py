"""The domain's `FactSink` on the journal: facts become durable records, and snapshots of them.

Owns `JournalSink`. `record(fact)` encodes the fact (`actors.fact_codec`), appends it to the
`JournalActor` and returns once its batch is durable; appends from many actors that arrive
while a batch is being written share the next write and fsync (group commit), so concurrent
sessions share fsyncs instead of queueing for one each.

The sink also folds every fact into the `DurableState` it was given (the state `rebuild`
produced at startup), in the very order the records get their LSNs: the state always equals
the journal up to its last appended record. A snapshot is that state encoded
(`actors.state_codec`), covering exactly those records, without reading the live actors (whose
state runs ahead of or behind the journal while facts are in flight). It is packed by
`actors.snapshot_packer`: what is new since the last snapshot only, a chunk at a time, so a
snapshot does not stall the loop (one snapshot at a time).

    journal = JournalActor.from_settings(settings.journal)
    recovery = await nursery.start(journal.run)
    state = rebuild(recovery.snapshot, recovery.records)
    sink = JournalSink(journal, state)
    domain = Domain(..., sink=sink, recovered=state)
    nursery.start_soon(sink.run_snapshots)        # every `journal.snapshot_every` records
    ...
    await sink.snapshot()                          # at shutdown, once the domain has stopped
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
import trio

from actors.durable_state import DurableState
from actors.fact_codec import encode_fact
from actors.facts import Fact
from actors.journal import JournalActor, JournalFailed
from actors.snapshot_packer import SnapshotPacker

__all__ = ["JournalSink", "JournalSinkStatistics"]

_log = structlog.get_logger("actors.journal_sink")

SNAPSHOT_RETRY_S = 60.0


@dataclass(frozen=True, slots=True)
class JournalSinkStatistics:
    recorded: int
    snapshots: int
    snapshot_failures: int
    last_snapshot_lsn: int


class JournalSink:
    """A `FactSink` whose `record` returns once the fact's journal record is durable."""

    def __init__(
        self,
        journal: JournalActor,
        state: DurableState | None = None,
        *,
        snapshot_retry_s: float = SNAPSHOT_RETRY_S,
    ) -> None:
        self._journal = journal
        self.state = state if state is not None else DurableState()
        self._retry_s = snapshot_retry_s
        self._recorded = self._snapshots = self._failures = self._snapshot_lsn = 0
        self._snapshotted = trio.Event()
        self._packer = SnapshotPacker()
        self._one_snapshot = trio.Lock()

    async def record(self, fact: Fact) -> None:
        """Append `fact`; returns once it is durable. A fact the journal refuses raises
        `RecordInvalid` and changes nothing; a failed disk raises `JournalFailed`."""
        lsn = self._journal.append_nowait(encode_fact(fact))
        self.state.apply(fact)  # same order as the LSNs: nothing can run in between
        self._recorded += 1
        await self._journal.wait_durable(lsn)

    async def snapshot(self) -> int | None:
        """Snapshot the state (it covers every record appended so far); None when no record
        came since the last one."""
        async with self._one_snapshot:
            covers = self._journal.statistics().last_lsn
            if covers <= self._journal.statistics().snapshot_lsn:
                return None
            capture = self._packer.capture(self.state)  # no checkpoint since `covers` was read
            lsn = await self._journal.snapshot_packed(await capture.finish(), lsn=covers)
        self._snapshots += 1
        self._snapshot_lsn = lsn
        written, self._snapshotted = self._snapshotted, trio.Event()
        written.set()
        _log.info("domain_snapshot_written", lsn=lsn, sessions=len(self.state.sessions))
        return lsn

    async def run_snapshots(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Snapshot whenever the journal says one is due, until cancelled. A failed snapshot
        write is logged and tried again after `snapshot_retry_s` (appends go on meanwhile)."""
        task_status.started()
        while True:
            await self._journal.wait_snapshot_due()
            try:
                await self.snapshot()
            except JournalFailed as e:
                self._failures += 1
                _log.error("domain_snapshot_failed", error=str(e), retry_s=self._retry_s)
                await trio.sleep(self._retry_s)

    async def wait_snapshots(self, count: int) -> None:
        """Wait until `count` snapshots in all have been written by this sink."""
        while self._snapshots < count:
            await self._snapshotted.wait()

    def statistics(self) -> JournalSinkStatistics:
        return JournalSinkStatistics(
            self._recorded, self._snapshots, self._failures, self._snapshot_lsn
        )
