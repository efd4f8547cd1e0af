"""Journal recovery: from the files on disk to the latest valid snapshot and the records after it.

Owns startup's reading of the journal directory (blocking; the actor runs it in a worker thread):
- the newest snapshot that reads back intact wins; a damaged one is skipped (logged, reported) and
  the one before it is used, which is why the actor keeps two snapshots and their segments;
- segments after the snapshot are scanned and their LSNs must run on without a gap;
- a damaged or torn end of the LAST segment is cut off (the file is truncated) and reported;
- any other damage, a gap or a record out of order raises `JournalCorrupt` with file and offset,
  and nothing is changed on disk. With `repair=True` the damaged segment is kept beside as
  `<name>.corrupt`, rewritten with its valid records plus `_gap` records standing for the LSNs
  lost, and the report says what was dropped. Later startups read the `_gap` records as known
  holes, so a repaired journal starts cleanly.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from actors.journal_errors import JournalCorrupt, UnsupportedVersion
from actors.journal_framing import (
    GAP_TYPE,
    SNAPSHOT_TYPE,
    VERSION,
    BadRegion,
    Frame,
    encode_body,
    scan,
)
from actors.journal_segments import FsyncFn, corrupt_name, list_journal, write_atomically

__all__ = [
    "MAX_SNAPSHOT_BYTES",
    "Dropped",
    "JournalEntry",
    "RecoveredJournal",
    "Recovery",
    "RecoveryReport",
    "TornTail",
    "recover",
]

MAX_SNAPSHOT_BYTES = 2**32 - 1

log = structlog.get_logger("journal")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One replayed record: its LSN and the record exactly as it was appended."""

    lsn: int
    record: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.record["type"])


@dataclass(frozen=True, slots=True)
class TornTail:
    """The damaged end of the last segment, cut off at `offset` (`bytes_cut` bytes removed)."""

    segment: str
    offset: int
    bytes_cut: int
    reason: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A damaged byte range [offset, end) of a segment that a repair left out."""

    segment: str
    offset: int
    end: int
    reason: str


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    snapshot_lsn: int
    snapshot_file: str | None
    skipped_snapshots: tuple[str, ...]
    segments_scanned: int
    records: int
    last_lsn: int
    torn_tail: TornTail | None = None
    dropped: tuple[Dropped, ...] = ()
    lost_lsns: tuple[tuple[int, int], ...] = ()
    moved_aside: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Recovery:
    """What startup hands the owner: the snapshot state (or None) and the records after it."""

    snapshot: dict[str, Any] | None
    records: tuple[JournalEntry, ...]
    report: RecoveryReport


@dataclass(frozen=True, slots=True)
class RecoveredJournal:
    """Recovery plus what the actor needs to carry on writing."""

    recovery: Recovery
    segments: list[tuple[int, Path]]
    next_lsn: int


@dataclass
class _Segment:
    """One segment's verdict: kept pieces (for a rewrite), problems, tail, losses."""

    path: Path
    pieces: list[bytes] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    lost: list[tuple[int, int]] = field(default_factory=list)
    tail: BadRegion | None = None
    size: int = 0


def _load_snapshot(lsn: int, path: Path) -> dict[str, Any] | None:
    raw = path.read_bytes()
    found = scan(raw, max_payload=MAX_SNAPSHOT_BYTES)
    if len(found.frames) != 1 or found.bad:
        return None
    body = found.frames[0].body
    if body["v"] != VERSION:
        raise UnsupportedVersion(f"snapshot schema version {body['v']}", path=str(path), offset=0)
    state = body.get("state")
    if body["type"] != SNAPSHOT_TYPE or body["lsn"] != lsn or not isinstance(state, dict):
        return None
    return state


def _span(frame: Frame, path: Path) -> tuple[int, int]:
    """The LSNs a frame stands for: one record, or a `_gap` record's whole hole."""
    body = frame.body
    if body["v"] != VERSION:
        raise UnsupportedVersion(
            f"record schema version {body['v']}", path=str(path), offset=frame.offset
        )
    hi: int = body["lsn"]
    lo = body.get("from", hi) if body["type"] == GAP_TYPE else hi
    if type(lo) is not int or lo > hi:
        raise JournalCorrupt("malformed gap record", path=str(path), offset=frame.offset)
    return lo, hi


def _gap_frame(lo: int, hi: int) -> bytes:
    return encode_body({"v": VERSION, "lsn": hi, "type": GAP_TYPE, "from": lo})


def _check_segment(
    path: Path, *, last: bool, snapshot_lsn: int, expected: int, entries: list[JournalEntry]
) -> tuple[_Segment, int]:
    raw = path.read_bytes()
    found = scan(raw)
    seg = _Segment(path, size=len(raw))
    seg.tail = found.tail if last else None
    items: list[Frame | BadRegion] = sorted(
        [*found.frames, *(b for b in found.bad if b is not seg.tail)],
        key=lambda item: item.offset if isinstance(item, Frame) else item.start,
    )
    damage: BadRegion | None = None
    for item in items:
        if isinstance(item, BadRegion):
            damage = item
            continue
        lo, hi = _span(item, path)
        if damage is not None:
            if lo > snapshot_lsn + 1:  # the damaged bytes held records the snapshot lacks
                seg.problems.append((damage.start, f"damaged record ({damage.reason})"))
                seg.dropped.append(Dropped(path.name, damage.start, damage.end, damage.reason))
            damage = None
        if hi <= snapshot_lsn and expected == snapshot_lsn + 1:
            seg.pieces.append(raw[item.offset : item.end])  # covered by the snapshot
            continue
        if lo < expected:
            seg.problems.append((item.offset, f"record {hi} out of order, expected {expected}"))
            seg.dropped.append(Dropped(path.name, item.offset, item.end, "out of order"))
            continue
        if lo > expected:
            seg.problems.append((item.offset, f"records {expected}..{lo - 1} are missing"))
            seg.lost.append((expected, lo - 1))
            seg.pieces.append(_gap_frame(expected, lo - 1))
        seg.pieces.append(raw[item.offset : item.end])
        if item.body["type"] != GAP_TYPE:
            record = {k: v for k, v in item.body.items() if k not in ("v", "lsn")}
            entries.append(JournalEntry(hi, record))
        expected = hi + 1
    if damage is not None:  # damage at the end of a segment that is not the last one
        seg.problems.append((damage.start, f"damaged record ({damage.reason})"))
        seg.dropped.append(Dropped(path.name, damage.start, damage.end, damage.reason))
    return seg, expected


def _repair(seg: _Segment, fsync: FsyncFn) -> str:
    aside = corrupt_name(seg.path)
    try:
        os.link(seg.path, aside)
    except OSError:
        shutil.copyfile(seg.path, aside)
    write_atomically(seg.path, b"".join(seg.pieces), fsync)
    return aside.name


def _cut_tail(seg: _Segment, fsync: FsyncFn) -> TornTail:
    assert seg.tail is not None
    fd = os.open(seg.path, os.O_WRONLY)
    try:
        os.ftruncate(fd, seg.tail.start)
        fsync(fd)
    finally:
        os.close(fd)
    return TornTail(seg.path.name, seg.tail.start, seg.size - seg.tail.start, seg.tail.reason)


def recover(directory: Path, *, repair: bool, fsync: FsyncFn) -> RecoveredJournal:
    """Read the journal in `directory` (created if missing); see the module docstring."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.tmp"):
        leftover.unlink()
    segments, snapshots = list_journal(directory)

    state: dict[str, Any] | None = None
    snapshot_lsn, snapshot_file, skipped = 0, None, []
    for lsn, path in reversed(snapshots):
        state = _load_snapshot(lsn, path)
        if state is not None:
            snapshot_lsn, snapshot_file = lsn, path.name
            break
        skipped.append(path.name)
        log.warning("journal_snapshot_skipped", file=path.name, reason="damaged")

    relevant = [
        i
        for i in range(len(segments))
        if i + 1 == len(segments) or segments[i + 1][0] - 1 > snapshot_lsn
    ]
    entries: list[JournalEntry] = []
    checked: list[_Segment] = []
    expected = snapshot_lsn + 1
    for i in relevant:
        seg, expected = _check_segment(
            segments[i][1],
            last=i + 1 == len(segments),
            snapshot_lsn=snapshot_lsn,
            expected=expected,
            entries=entries,
        )
        checked.append(seg)

    problems = [(seg, p) for seg in checked for p in seg.problems]
    if problems and not repair:
        seg, (offset, message) = problems[0]
        raise JournalCorrupt(
            f"{message}; {len(problems)} problem(s) in the journal, start with repair (python run.py --repair-journal) to keep "
            "the valid records",
            path=str(seg.path),
            offset=offset,
        )

    torn: TornTail | None = None
    moved: list[str] = []
    for seg in checked:
        if seg.problems:
            moved.append(_repair(seg, fsync))
            log.error(
                "journal_segment_repaired",
                segment=seg.path.name,
                moved_to=moved[-1],
                dropped=[(d.offset, d.end, d.reason) for d in seg.dropped],
                lost_lsns=seg.lost,
            )
        elif seg.tail is not None:
            torn = _cut_tail(seg, fsync)
            log.warning(
                "journal_tail_cut",
                segment=torn.segment,
                offset=torn.offset,
                bytes_cut=torn.bytes_cut,
                reason=torn.reason,
            )
        if seg.problems and seg.tail is not None:
            size = seg.size
            torn = TornTail(seg.path.name, seg.tail.start, size - seg.tail.start, seg.tail.reason)

    last_lsn = expected - 1
    report = RecoveryReport(
        snapshot_lsn=snapshot_lsn,
        snapshot_file=snapshot_file,
        skipped_snapshots=tuple(skipped),
        segments_scanned=len(checked),
        records=len(entries),
        last_lsn=last_lsn,
        torn_tail=torn,
        dropped=tuple(d for seg in checked for d in seg.dropped),
        lost_lsns=tuple(span for seg in checked for span in seg.lost),
        moved_aside=tuple(moved),
    )
    log.info(
        "journal_recovered",
        snapshot_lsn=snapshot_lsn,
        records=len(entries),
        last_lsn=last_lsn,
        segments=len(checked),
    )
    live = [s for s in segments if s[1].exists()]
    return RecoveredJournal(Recovery(state, tuple(entries), report), live, last_lsn + 1)
