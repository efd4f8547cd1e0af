"""The durable journal: the JournalActor, sole owner of the journal files, and its public face.

Owns appending records with group commit, snapshots and the journal's statistics; recovery is in
journal_recovery.py, the byte format in journal_framing.py, the files in journal_segments.py and
the errors in journal_errors.py (all re-exported here). Usage, from the composition root:

    journal = JournalActor.from_settings(settings.journal)
    recovery = await nursery.start(journal.run)        # snapshot state + records to replay
    lsn = await journal.append({"type": "customer_message", ...})   # returns once durable

Records are maps with a string "type"; the keys "v" and "lsn" belong to the journal. Fsync modes:
`always` (one write+fsync per record), `batch` (group commit: what queues while a write+fsync runs
goes in the next one), `off` (write, no fsync: survives a crash of the process, not of the machine).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgpack
import structlog
import trio

from actors.histogram import FSYNC_BOUNDS, Histogram, HistogramSnapshot
from actors.journal_errors import (
    JournalClosed,
    JournalCorrupt,
    JournalError,
    JournalFailed,
    RecordInvalid,
    UnsupportedVersion,
)
from actors.journal_framing import (
    SNAPSHOT_TYPE,
    VERSION,
    encode_record,
    frame_header,
    pack_body,
)
from actors.journal_recovery import (
    MAX_SNAPSHOT_BYTES,
    Dropped,
    JournalEntry,
    Recovery,
    RecoveryReport,
    TornTail,
    recover,
)
from actors.journal_segments import FsyncFn, SegmentWriter, list_journal, snapshot_name
from actors.journal_segments import write_atomically as _write_atomically

if TYPE_CHECKING:
    from actors.settings import JournalSettings

__all__ = [
    "Dropped",
    "FsyncMode",
    "JournalActor",
    "JournalClosed",
    "JournalCorrupt",
    "JournalEntry",
    "JournalError",
    "JournalFailed",
    "JournalStatistics",
    "RecordInvalid",
    "Recovery",
    "RecoveryReport",
    "TornTail",
    "UnsupportedVersion",
]

FsyncMode = Literal["always", "batch", "off"]
_MAX_BATCH_BYTES = 8 * 1024 * 1024

log = structlog.get_logger("journal")


@dataclass(frozen=True, slots=True)
class JournalStatistics:
    """Counters since the actor started.

    `queued` counts records appended but not yet durable (the batch being written included);
    `fsyncs` counts data fsyncs only, not the directory fsyncs of new files; `mean_batch` and
    `max_batch` are in records per write. `write_seconds`: how long each batch's write (with its
    fsync, per the mode) took; `running` and `failed` say whether appends are being taken.
    """

    appended: int
    durable: int
    queued: int
    batches: int
    fsyncs: int
    bytes_written: int
    last_lsn: int
    last_durable_lsn: int
    mean_batch: float
    max_batch: int
    segments: int
    snapshot_lsn: int
    snapshots_written: int
    write_seconds: HistogramSnapshot
    running: bool
    failed: bool


class JournalActor:
    """Appends records durably with group commit; recovers and snapshots the journal directory."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: FsyncMode = "batch",
        snapshot_every: int = 50_000,
        segment_bytes: int = 64 * 1024 * 1024,
        repair: bool = False,
        fsync_fn: FsyncFn = os.fsync,
        shutdown_grace_s: float = 5.0,
    ) -> None:
        if fsync not in ("always", "batch", "off"):
            raise ValueError(f"fsync must be always, batch or off, not {fsync!r}")
        if snapshot_every < 1 or segment_bytes < 1:
            raise ValueError("snapshot_every and segment_bytes must be positive")
        self._path = Path(path)
        self._mode: FsyncMode = fsync
        self._snapshot_every = snapshot_every
        self._segment_bytes = segment_bytes
        self._repair = repair
        self._fsync_fn = fsync_fn
        self._grace = shutdown_grace_s
        self._writer: SegmentWriter | None = None
        self._open = False
        self._stopped = False
        self._failure: JournalError | None = None
        self._queue: list[tuple[int, bytes]] = []
        self._next_lsn = 1
        self._durable_lsn = 0
        self._work = trio.Event()
        self._committed = trio.Event()
        self._snapshot_due = trio.Event()
        self._snapshot_lock = trio.Lock()
        self._snapshot_lsn = 0
        self._retained: list[int] = []
        self._appended = self._durable = self._batches = self._fsyncs = self._bytes = 0
        self._max_batch = self._snapshots_written = 0
        self._write_seconds = Histogram(FSYNC_BOUNDS)

    @classmethod
    def from_settings(cls, settings: JournalSettings, **overrides: Any) -> JournalActor:
        """Build from the `journal` settings section; keyword overrides (e.g. `repair`) win."""
        options: dict[str, Any] = {
            "fsync": settings.fsync,
            "snapshot_every": settings.snapshot_every,
        }
        return cls(settings.path, **(options | overrides))

    async def run(
        self, *, task_status: trio.TaskStatus[Recovery] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Recover, report `Recovery` through `task_status.started`, then write until cancelled."""
        try:
            found = await trio.to_thread.run_sync(
                partial(recover, self._path, repair=self._repair, fsync=self._fsync_fn)
            )
        except OSError as e:
            raise JournalFailed(f"cannot read the journal in {self._path}: {e}") from e
        self._writer = SegmentWriter(
            self._path, found.segments, segment_bytes=self._segment_bytes, fsync=self._fsync_fn
        )
        self._next_lsn = found.next_lsn
        self._durable_lsn = found.next_lsn - 1
        self._snapshot_lsn = found.recovery.report.snapshot_lsn
        self._retained = [self._snapshot_lsn] if found.recovery.report.snapshot_file else []
        self._open = True
        if self._durable_lsn - self._snapshot_lsn >= self._snapshot_every:
            self._snapshot_due.set()
        abandoned = False
        try:
            task_status.started(found.recovery)
            while True:
                while not self._queue:
                    self._work = trio.Event()
                    await self._work.wait()
                await self._commit_next(abandon_on_cancel=False)
        finally:
            self._open = False
            try:
                if self._failure is None:
                    with trio.move_on_after(self._grace, shield=True) as drain:
                        while self._queue and self._failure is None:
                            await self._commit_next(abandon_on_cancel=True)
                    abandoned = drain.cancelled_caught
            finally:
                if not abandoned:  # an abandoned thread may still be writing: leave its fd be
                    self._writer.close()
                self._stopped = True
                self._committed.set()
                log.info("journal_stopped", unflushed=len(self._queue), **self._stat_fields())

    async def _commit_next(self, *, abandon_on_cancel: bool) -> None:
        assert self._writer is not None
        if self._mode == "always":
            count, size = 1, len(self._queue[0][1])
        else:
            count = size = 0
            for _, frame in self._queue:
                if count and size + len(frame) > _MAX_BATCH_BYTES:
                    break
                count, size = count + 1, size + len(frame)
        batch = self._queue[:count]
        data = b"".join(frame for _, frame in batch)
        sync = self._mode != "off"
        started = time.perf_counter()
        try:
            await trio.to_thread.run_sync(
                partial(self._writer.write, data, batch[0][0], sync=sync),
                abandon_on_cancel=abandon_on_cancel,
            )
        except OSError as e:
            self._failure = JournalFailed(
                f"journal write failed, nothing after lsn {self._durable_lsn} is durable: {e}"
            )
            self._committed.set()
            log.error("journal_write_failed", error=str(e), last_durable_lsn=self._durable_lsn)
            raise self._failure from e
        self._write_seconds.observe(time.perf_counter() - started)
        del self._queue[:count]  # only now: a cancelled write leaves its batch queued for the drain
        self._durable_lsn = batch[-1][0]
        self._durable += count
        self._batches += 1
        self._fsyncs += sync
        self._bytes += size
        self._max_batch = max(self._max_batch, count)
        committed, self._committed = self._committed, trio.Event()
        committed.set()

    def append_nowait(self, record: Mapping[str, Any]) -> int:
        """Queue `record` and return its LSN at once; `wait_durable(lsn)` waits for the disk."""
        if self._failure is not None:
            raise self._failure
        if not self._open:
            raise JournalClosed("the journal is not running")
        frame = encode_record(self._next_lsn, record)
        lsn, self._next_lsn = self._next_lsn, self._next_lsn + 1
        self._queue.append((lsn, frame))
        self._appended += 1
        self._work.set()
        if lsn - self._snapshot_lsn >= self._snapshot_every:
            self._snapshot_due.set()
        return lsn

    async def append(self, record: Mapping[str, Any]) -> int:
        """Append `record` and return its LSN once its batch is durable (per the fsync mode)."""
        lsn = self.append_nowait(record)
        await self.wait_durable(lsn)
        return lsn

    async def wait_durable(self, lsn: int) -> None:
        """Wait until every record up to `lsn` is durable; raises if the journal stops first."""
        if lsn >= self._next_lsn:
            raise ValueError(f"lsn {lsn} has not been appended (last is {self._next_lsn - 1})")
        await trio.lowlevel.checkpoint()
        while self._durable_lsn < lsn:
            if self._failure is not None:
                raise self._failure
            if self._stopped:
                raise JournalClosed(f"the journal stopped before lsn {lsn} was durable")
            await self._committed.wait()

    async def wait_snapshot_due(self) -> None:
        """Wait until `snapshot_every` records have been appended since the last snapshot."""
        await self._snapshot_due.wait()

    async def snapshot(self, state: Mapping[str, Any], *, lsn: int | None = None) -> int:
        """Write `state` (covering every record up to `lsn`, default: all appended so far).

        The file is written atomically (temp, fsync, rename, directory fsync) once those records
        are durable. Two snapshots are kept; segments the older one covers are removed.
        """
        covers = self._snapshot_covers(lsn)
        if not isinstance(state, Mapping):
            raise RecordInvalid(f"snapshot state is a mapping, not {type(state).__name__}")
        body = {"v": VERSION, "lsn": covers, "type": SNAPSHOT_TYPE, "state": dict(state)}
        payload = pack_body(body, max_payload=MAX_SNAPSHOT_BYTES)  # framed by the writer thread
        return await self._write_snapshot(covers, [payload], len(payload))

    async def snapshot_packed(self, packed_state: Sequence[bytes | bytearray], *, lsn: int) -> int:
        """`snapshot` of a state already packed as msgpack, in parts (`actors.snapshot_packer`):
        the file is the same as `snapshot(msgpack.unpackb(b"".join(packed_state)), lsn=lsn)`
        writes. The parts are checksummed and written by a worker thread, never joined: the
        loop is not held up however large the state."""
        if isinstance(packed_state, bytes | bytearray):
            raise TypeError("packed_state is a sequence of parts, not one bytes object")
        covers = self._snapshot_covers(lsn)
        payload = [_packed_snapshot_head(covers), *packed_state]
        size = sum(map(len, payload))
        if size > MAX_SNAPSHOT_BYTES:
            raise RecordInvalid(f"encoded size {size} exceeds {MAX_SNAPSHOT_BYTES} bytes")
        return await self._write_snapshot(covers, payload, size)

    def _snapshot_covers(self, lsn: int | None) -> int:
        if not self._open:
            raise JournalClosed("the journal is not running")
        covers = self._next_lsn - 1 if lsn is None else lsn
        if not self._snapshot_lsn <= covers < self._next_lsn:
            raise ValueError(f"lsn {covers} outside {self._snapshot_lsn}..{self._next_lsn - 1}")
        return covers

    async def _write_snapshot(
        self, covers: int, payload: list[bytes | bytearray], size: int
    ) -> int:
        async with self._snapshot_lock:
            if covers:
                await self.wait_durable(covers)
            path = self._path / snapshot_name(covers)
            try:
                await trio.to_thread.run_sync(_write_framed, path, payload, self._fsync_fn)
                self._retained = sorted({*self._retained, covers})[-2:]
                removed = await trio.to_thread.run_sync(self._prune, covers)
            except OSError as e:  # the journal itself goes on; the caller may retry later
                raise JournalFailed(f"cannot write snapshot {path.name}: {e}") from e
            self._snapshot_lsn = max(self._snapshot_lsn, covers)
            self._snapshots_written += 1
            caught_up = self._next_lsn - 1 - self._snapshot_lsn < self._snapshot_every
            if caught_up and self._snapshot_due.is_set():  # never strand a waiter on an old Event
                self._snapshot_due = trio.Event()
        log.info("journal_snapshot_written", lsn=covers, bytes=size, removed=removed)
        return covers

    def _prune(self, newest: int) -> int:
        """Thread side: roll the segment, drop snapshots and segments nobody can need any more."""
        assert self._writer is not None
        self._writer.request_roll()
        _, snapshots = list_journal(self._path)
        stale = [p for n, p in snapshots if n < newest and n not in self._retained]
        for path in stale:
            path.unlink(missing_ok=True)
        segments = self._writer.remove_covered(self._retained[0]) if len(self._retained) > 1 else []
        return len(stale) + len(segments)

    def statistics(self) -> JournalStatistics:
        return JournalStatistics(
            **self._stat_fields(),
            write_seconds=self._write_seconds.snapshot(),
            running=self._open and not self._stopped and self._failure is None,
            failed=self._failure is not None,
        )

    def _stat_fields(self) -> dict[str, Any]:
        return {
            "appended": self._appended,
            "durable": self._durable,
            "queued": len(self._queue),
            "batches": self._batches,
            "fsyncs": self._fsyncs,
            "bytes_written": self._bytes,
            "last_lsn": self._next_lsn - 1,
            "last_durable_lsn": self._durable_lsn,
            "mean_batch": self._durable / self._batches if self._batches else 0.0,
            "max_batch": self._max_batch,
            "segments": self._writer.segment_count if self._writer else 0,
            "snapshot_lsn": self._snapshot_lsn,
            "snapshots_written": self._snapshots_written,
        }


def _write_framed(path: Path, payload: list[bytes | bytearray], fsync: FsyncFn) -> None:
    """Thread side: the frame header, then the payload's parts, written atomically."""
    _write_atomically(path, [frame_header(payload), *payload], fsync)


def _packed_snapshot_head(covers: int) -> bytes:
    """The snapshot body map up to its "state" value, as `pack_body` packs it."""
    packer = msgpack.Packer(use_bin_type=True)
    head = [packer.pack_map_header(4)]
    for key, value in (("v", VERSION), ("lsn", covers), ("type", SNAPSHOT_TYPE)):
        head += [packer.pack(key), packer.pack(value)]
    head.append(packer.pack("state"))
    return b"".join(head)
