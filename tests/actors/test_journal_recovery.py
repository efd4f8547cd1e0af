"""Journal recovery: torn tails are cut, damage in the middle stops startup, repair keeps what it can."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs

from actors.journal import (
    JournalActor,
    JournalCorrupt,
    Recovery,
    UnsupportedVersion,
)
from actors.journal_framing import encode_body


async def _recover(path: Path, **options: Any) -> Recovery:
    """Start a journal on `path` and stop it; a startup error comes out bare, not in a group."""
    journal = JournalActor(path, **options)
    try:
        async with trio.open_nursery() as nursery:
            recovery: Recovery = await nursery.start(journal.run)
            nursery.cancel_scope.cancel()
    except ExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    return recovery


async def _write(path: Path, records: list[dict[str, Any]], **options: Any) -> None:
    journal = JournalActor(path, fsync="off", **options)  # what is on disk matters, not when
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for record in records:
            await journal.append(record)
        nursery.cancel_scope.cancel()


def _records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"type": "customer_message", "seq": i, "text": f"message {i}"}
        for i in range(start, start + n)
    ]


def _segments(path: Path) -> list[Path]:
    return sorted(path.glob("segment-*.jrn"))


def _files(path: Path) -> list[Path]:
    return sorted(path.iterdir())


def _offsets(raw: bytes) -> list[int]:
    """Start offsets of the frames in a clean segment."""
    offsets, pos = [], 0
    while pos < len(raw):
        offsets.append(pos)
        pos += 8 + int.from_bytes(raw[pos : pos + 4], "little")
    return offsets


async def test_empty_directory_is_created_and_recovers_nothing(tmp_path: Path) -> None:
    recovery = await _recover(tmp_path / "journal" / "deep")
    assert recovery.snapshot is None
    assert recovery.records == ()
    assert recovery.report.last_lsn == 0
    assert (tmp_path / "journal" / "deep").is_dir()


async def test_records_come_back_in_order_with_their_lsns(tmp_path: Path) -> None:
    records = _records(20)
    await _write(tmp_path, records)
    recovery = await _recover(tmp_path)
    assert [e.record for e in recovery.records] == records
    assert [e.lsn for e in recovery.records] == list(range(1, 21))
    assert recovery.records[0].type == "customer_message"
    assert recovery.report.torn_tail is None


async def test_truncation_at_every_byte_of_the_last_record_keeps_all_earlier(
    tmp_path: Path,
) -> None:
    records = _records(5)
    source = tmp_path / "source"
    await _write(source, records)
    (segment,) = _segments(source)
    raw = segment.read_bytes()
    last = _offsets(raw)[-1]
    for cut in range(last, len(raw)):
        journal_dir = tmp_path / f"cut{cut}"
        journal_dir.mkdir()
        (journal_dir / segment.name).write_bytes(raw[:cut])
        with capture_logs() as logs:
            recovery = await _recover(journal_dir)
        assert [e.record for e in recovery.records] == records[:4], cut
        if cut == last:
            assert recovery.report.torn_tail is None
            continue
        tail = recovery.report.torn_tail
        assert tail is not None and (tail.offset, tail.bytes_cut) == (last, cut - last)
        assert (journal_dir / segment.name).stat().st_size == last
        cut_events = [e for e in logs if e["event"] == "journal_tail_cut"]
        assert cut_events[0]["offset"] == last and cut_events[0]["bytes_cut"] == cut - last
        # the journal carries on after the cut: the next record takes the lost one's LSN
        await _write(journal_dir, [records[4]])
        assert [e.record for e in (await _recover(journal_dir)).records] == records


async def test_a_corrupt_last_record_is_a_tail(tmp_path: Path) -> None:
    await _write(tmp_path, _records(3))
    (segment,) = _segments(tmp_path)
    raw = bytearray(segment.read_bytes())
    raw[-3] ^= 0x10
    segment.write_bytes(bytes(raw))
    recovery = await _recover(tmp_path)
    assert [e.lsn for e in recovery.records] == [1, 2]
    assert recovery.report.torn_tail is not None
    assert recovery.report.torn_tail.reason == "checksum mismatch"


async def test_a_flipped_bit_in_a_middle_record_refuses_to_start(tmp_path: Path) -> None:
    await _write(tmp_path, _records(5))
    (segment,) = _segments(tmp_path)
    raw = segment.read_bytes()
    offsets = _offsets(raw)
    for pos in range(offsets[2], offsets[3]):
        damaged = bytearray(raw)
        damaged[pos] ^= 0x04
        segment.write_bytes(bytes(damaged))
        with pytest.raises(JournalCorrupt) as caught:
            await _recover(tmp_path)
        assert caught.value.offset == offsets[2], pos
        assert caught.value.path == str(segment)
        assert f"offset {offsets[2]}" in str(caught.value)
        assert segment.read_bytes() == bytes(damaged)  # refusing changes nothing on disk
        assert [p.name for p in _files(tmp_path)] == [segment.name]


async def test_repair_keeps_the_valid_records_and_reports_the_loss(tmp_path: Path) -> None:
    records = _records(5)
    await _write(tmp_path, records)
    (segment,) = _segments(tmp_path)
    raw = bytearray(segment.read_bytes())
    offsets = _offsets(bytes(raw))
    raw[offsets[2] + 12] ^= 0x01
    segment.write_bytes(bytes(raw))

    recovery = await _recover(tmp_path, repair=True)
    assert [e.lsn for e in recovery.records] == [1, 2, 4, 5]
    assert [e.record for e in recovery.records] == records[:2] + records[3:]
    report = recovery.report
    assert report.lost_lsns == ((3, 3),)
    assert [(d.segment, d.offset, d.end) for d in report.dropped] == [
        (segment.name, offsets[2], offsets[3])
    ]
    assert report.moved_aside == (segment.name + ".corrupt",)
    assert (tmp_path / (segment.name + ".corrupt")).read_bytes() == bytes(raw)

    # the repaired journal starts cleanly without the flag and keeps counting after lsn 5
    await _write(tmp_path, _records(1, start=5))
    again = await _recover(tmp_path)
    assert [e.lsn for e in again.records] == [1, 2, 4, 5, 6]
    assert again.report.lost_lsns == ()


async def test_damage_at_the_end_of_an_older_segment_is_not_a_tail(tmp_path: Path) -> None:
    await _write(tmp_path, _records(40), segment_bytes=300)
    segments = _segments(tmp_path)
    assert len(segments) > 2
    first = segments[0]
    raw = bytearray(first.read_bytes())
    last = _offsets(bytes(raw))[-1]
    first.write_bytes(bytes(raw[: last + 5]))  # torn, but a later segment exists
    with pytest.raises(JournalCorrupt) as caught:
        await _recover(tmp_path)
    assert caught.value.offset == last
    recovery = await _recover(tmp_path, repair=True)
    lost_lsn = len(_offsets(bytes(raw)))
    assert recovery.report.lost_lsns == ((lost_lsn, lost_lsn),)
    assert [e.lsn for e in recovery.records] == [n for n in range(1, 41) if n != lost_lsn]


async def test_a_missing_segment_is_reported_as_missing_records(tmp_path: Path) -> None:
    await _write(tmp_path, _records(40), segment_bytes=300)
    segments = _segments(tmp_path)
    segments[1].unlink()
    with pytest.raises(JournalCorrupt, match=r"records \d+\.\.\d+ are missing") as caught:
        await _recover(tmp_path)
    assert caught.value.path == str(segments[2])
    first_missing, after = int(segments[1].name[8:28]), int(segments[2].name[8:28])
    repaired = await _recover(tmp_path, repair=True)
    assert repaired.report.lost_lsns == ((first_missing, after - 1),)
    assert [e.lsn for e in repaired.records] == [
        n for n in range(1, 41) if not first_missing <= n < after
    ]
    again = await _recover(tmp_path)  # the hole is now known: a clean start
    assert again.report.lost_lsns == () and again.records == repaired.records


async def test_damage_the_snapshot_covers_does_not_stop_startup(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path, fsync="off", segment_bytes=300)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for record in _records(40):
            await journal.append(record)
        await journal.snapshot({"upto": 40})
        await journal.append(_records(1, start=40)[0])
        nursery.cancel_scope.cancel()
    first = _segments(tmp_path)[0]
    raw = bytearray(first.read_bytes())
    raw[_offsets(bytes(raw))[1] + 10] ^= 0x01
    first.write_bytes(bytes(raw))
    recovery = await _recover(tmp_path)
    assert recovery.snapshot == {"upto": 40}
    assert [e.lsn for e in recovery.records] == [41]


async def test_segments_roll_at_the_size_limit_and_sort_by_first_lsn(tmp_path: Path) -> None:
    await _write(tmp_path, _records(30), segment_bytes=200)
    segments = _segments(tmp_path)
    firsts = [int(p.name[8:28]) for p in segments]
    assert len(segments) > 3
    assert firsts[0] == 1 and firsts == sorted(firsts)
    for path in segments:
        assert _offsets(path.read_bytes())  # no empty segment
    recovery = await _recover(tmp_path)
    assert [e.lsn for e in recovery.records] == list(range(1, 31))


async def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    await _write(tmp_path, _records(2))
    (segment,) = _segments(tmp_path)
    future = encode_body({"v": 2, "lsn": 3, "type": "customer_message"})
    segment.write_bytes(segment.read_bytes() + future)
    with pytest.raises(UnsupportedVersion, match="schema version 2"):
        await _recover(tmp_path)
