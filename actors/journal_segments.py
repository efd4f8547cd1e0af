"""Journal files: naming, atomic writes, snapshot files and the segment writer.

Owns everything that touches the journal directory except recovery's scan. Names sort by LSN:
`segment-<first lsn, 20 digits>.jrn` holds records from that LSN on (every record in a segment has
an LSN below the next segment's first); `snapshot-<covered lsn>.snap` holds one `_snapshot` frame.
Everything here is blocking and runs in a worker thread (`trio.to_thread.run_sync`); the
`SegmentWriter` guards its state with a lock because snapshots remove segments from another thread.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "FsyncFn",
    "SegmentWriter",
    "corrupt_name",
    "fsync_dir",
    "list_journal",
    "segment_name",
    "snapshot_name",
    "write_atomically",
]

FsyncFn = Callable[[int], None]

_SEGMENT = re.compile(r"^segment-(\d{20})\.jrn$")
_SNAPSHOT = re.compile(r"^snapshot-(\d{20})\.snap$")


def segment_name(first_lsn: int) -> str:
    return f"segment-{first_lsn:020d}.jrn"


def snapshot_name(lsn: int) -> str:
    return f"snapshot-{lsn:020d}.snap"


def list_journal(directory: Path) -> tuple[list[tuple[int, Path]], list[tuple[int, Path]]]:
    """(segments, snapshots) as (lsn, path) pairs sorted by LSN; other files are ignored."""
    segments: list[tuple[int, Path]] = []
    snapshots: list[tuple[int, Path]] = []
    for entry in directory.iterdir():
        if m := _SEGMENT.match(entry.name):
            segments.append((int(m[1]), entry))
        elif m := _SNAPSHOT.match(entry.name):
            snapshots.append((int(m[1]), entry))
    return sorted(segments), sorted(snapshots)


def corrupt_name(path: Path) -> Path:
    """A free name beside `path` for keeping a damaged file: `<name>.corrupt`, `.corrupt.1`, ..."""
    candidate = path.with_name(path.name + ".corrupt")
    n = 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.corrupt.{n}")
    return candidate


def fsync_dir(directory: Path, fsync: FsyncFn) -> None:
    """Make renames, creations and removals in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomically(path: Path, data: bytes | Sequence[bytes | bytearray], fsync: FsyncFn) -> None:
    """Replace `path` with `data` (or its parts one after the other) all at once: temp file,
    fsync, rename, directory fsync."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for part in (data,) if isinstance(data, bytes) else data:
            _write_all(fd, part)
        fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent, fsync)


class SegmentWriter:
    """Appends batches of frames to the current segment; rolls it at a size limit or on request.

    `segments` are the segment files left by recovery (the last one is reopened for appending).
    """

    def __init__(
        self,
        directory: Path,
        segments: list[tuple[int, Path]],
        *,
        segment_bytes: int,
        fsync: FsyncFn,
    ) -> None:
        self._directory = directory
        self._segments = list(segments)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = segments[-1][1].stat().st_size if segments else 0
        self._roll_requested = False

    @property
    def segment_count(self) -> int:
        """Read by the event loop: no lock, since a write holds it for a whole fsync."""
        return len(self._segments)

    def write(self, data: bytes, first_lsn: int, *, sync: bool) -> None:
        """Append `data` (frames from `first_lsn` on) to the current segment; fsync if `sync`."""
        with self._lock:
            if not self._segments or (
                self._size > 0 and (self._roll_requested or self._size >= self._segment_bytes)
            ):
                self._start_segment(first_lsn)
            elif self._fd is None:
                self._fd = os.open(self._segments[-1][1], os.O_WRONLY | os.O_APPEND)
            assert self._fd is not None
            self._roll_requested = False
            _write_all(self._fd, data)
            self._size += len(data)
            if sync:
                self._fsync(self._fd)

    def _start_segment(self, first_lsn: int) -> None:
        if self._fd is not None:
            self._fsync(self._fd)  # a closed segment is complete on disk before the next exists
            os.close(self._fd)
            self._fd = None
        path = self._directory / segment_name(first_lsn)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fsync_dir(self._directory, self._fsync)
        self._segments.append((first_lsn, path))
        self._size = 0

    def request_roll(self) -> None:
        """Start a new segment with the next batch (after a snapshot, so old ones can go)."""
        with self._lock:
            self._roll_requested = True

    def remove_covered(self, lsn: int) -> list[Path]:
        """Delete closed segments whose records all have LSN <= `lsn`; return what was removed."""
        removed: list[Path] = []
        with self._lock:
            while len(self._segments) > 1 and self._segments[1][0] - 1 <= lsn:
                removed.append(self._segments.pop(0)[1])
        for path in removed:
            path.unlink(missing_ok=True)
        if removed:
            fsync_dir(self._directory, self._fsync)
        return removed

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
