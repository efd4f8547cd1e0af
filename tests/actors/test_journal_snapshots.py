"""Journal snapshots: snapshot + replay equals replay from the start; fallback, pruning, due signal."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
import trio.testing

from actors.journal import JournalActor, RecordInvalid, Recovery


def _fold(state: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """A stand-in for the domain: transcripts per session plus a counter."""
    transcripts = {k: list(v) for k, v in state.get("transcripts", {}).items()}
    transcripts.setdefault(record["session"], []).append(record["text"])
    return {"transcripts": transcripts, "count": state.get("count", 0) + 1}


def _replay(recovery: Recovery) -> dict[str, Any]:
    state = dict(recovery.snapshot or {})
    for entry in recovery.records:
        state = _fold(state, entry.record)
    return state


async def _recover(path: Path, **options: Any) -> Recovery:
    journal = JournalActor(path, **options)
    async with trio.open_nursery() as nursery:
        recovery: Recovery = await nursery.start(journal.run)
        nursery.cancel_scope.cancel()
    return recovery


def _listing(path: Path) -> tuple[list[Path], list[str]]:
    return sorted(path.glob("segment-*.jrn")), sorted(p.name for p in path.glob("snapshot-*.snap"))


def _record(rng: random.Random, n: int) -> dict[str, Any]:
    return {"type": "customer_message", "session": f"S{rng.randrange(5)}", "text": f"m{n}"}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_snapshot_plus_replay_equals_replay_from_the_start(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    records = [_record(rng, n) for n in range(300)]
    with_snapshots, plain = tmp_path / "snap", tmp_path / "plain"
    points = set(rng.sample(range(300), 4))
    for path, snapshot_at in ((with_snapshots, points), (plain, set())):
        journal = JournalActor(path, fsync="off", segment_bytes=1_000)
        state: dict[str, Any] = {}
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            for n, record in enumerate(records):
                await journal.append(record)
                state = _fold(state, record)
                if n in snapshot_at:
                    await journal.snapshot(state)
            nursery.cancel_scope.cancel()
    snapped, full = await _recover(with_snapshots), await _recover(plain)
    assert full.snapshot is None and len(full.records) == 300
    assert snapped.snapshot is not None
    assert snapped.report.snapshot_lsn == max(points) + 1
    assert len(snapped.records) == 300 - snapped.report.snapshot_lsn
    assert _replay(snapped) == _replay(full) == state


async def test_old_segments_and_snapshots_are_removed_once_covered(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path, fsync="off", segment_bytes=300)
    state: dict[str, Any] = {}
    rng = random.Random(7)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for round_ in range(3):
            for n in range(30):
                record = _record(rng, round_ * 30 + n)
                await journal.append(record)
                state = _fold(state, record)
            await journal.snapshot(state)
        segments, snapshots = _listing(tmp_path)
        stats = journal.statistics()
        nursery.cancel_scope.cancel()
    # two snapshots are kept (so a damaged newest one can fall back); segments covered by the
    # older of the two are gone
    assert snapshots == ["snapshot-00000000000000000060.snap", "snapshot-00000000000000000090.snap"]
    assert int(segments[0].name[8:28]) <= 61 and int(segments[1].name[8:28]) > 61
    assert stats.segments == len(segments)
    assert (stats.snapshot_lsn, stats.snapshots_written) == (90, 3)
    recovery = await _recover(tmp_path)
    assert recovery.records == () and _replay(recovery) == state


async def test_a_damaged_snapshot_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path, fsync="off", segment_bytes=300)
    state: dict[str, Any] = {}
    rng = random.Random(9)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for n in range(100):
            record = _record(rng, n)
            await journal.append(record)
            state = _fold(state, record)
            if n in (39, 79):
                await journal.snapshot(state)
        nursery.cancel_scope.cancel()
    newest = tmp_path / "snapshot-00000000000000000080.snap"
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    newest.write_bytes(bytes(raw))
    recovery = await _recover(tmp_path)
    assert recovery.report.snapshot_lsn == 40
    assert recovery.report.skipped_snapshots == (newest.name,)
    assert [e.lsn for e in recovery.records] == list(range(41, 101))
    assert _replay(recovery) == state


async def test_snapshot_at_an_explicit_lsn(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for n in range(5):
            await journal.append({"type": "x", "n": n})
        assert await journal.snapshot({"upto": 3}, lsn=3) == 3
        with pytest.raises(ValueError, match="outside"):
            await journal.snapshot({}, lsn=2)  # older than the last snapshot
        with pytest.raises(ValueError, match="outside"):
            await journal.snapshot({}, lsn=6)  # not appended yet
        with pytest.raises(RecordInvalid):
            await journal.snapshot({"bad": object()})
        nursery.cancel_scope.cancel()
    recovery = await _recover(tmp_path)
    assert recovery.snapshot == {"upto": 3}
    assert [e.record["n"] for e in recovery.records] == [3, 4]


async def test_the_owner_is_told_when_a_snapshot_is_due(tmp_path: Path) -> None:
    journal = JournalActor(tmp_path, snapshot_every=10)
    due: list[int] = []

    async def owner() -> None:
        while True:
            await journal.wait_snapshot_due()
            due.append(journal.statistics().last_lsn)
            await journal.snapshot({"n": journal.statistics().last_lsn})

    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        nursery.start_soon(owner)
        for _ in range(9):
            await journal.append({"type": "x"})
        await trio.testing.wait_all_tasks_blocked()
        assert due == []
        for _ in range(12):
            await journal.append({"type": "x"})
            await trio.testing.wait_all_tasks_blocked()
        assert due == [10, 20]
        nursery.cancel_scope.cancel()

    # a journal that starts with enough unsnapshotted records is due at once
    journal = JournalActor(tmp_path, snapshot_every=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        with trio.fail_after(5):
            await journal.wait_snapshot_due()
        nursery.cancel_scope.cancel()


async def test_a_packed_snapshot_is_the_same_file_as_a_mapping_snapshot(tmp_path: Path) -> None:
    state = {"transcripts": {"S1": ["a", "b"]}, "count": 2, "big": list(range(70_000))}
    written: dict[str, bytes] = {}
    for way in ("mapping", "packed"):
        journal = JournalActor(tmp_path / way, fsync="off")
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            for n in range(3):
                await journal.append(_record(random.Random(n), n))
            if way == "mapping":
                await journal.snapshot(state, lsn=2)
            else:
                await journal.snapshot_packed([msgpack.packb(state, use_bin_type=True)], lsn=2)
            nursery.cancel_scope.cancel()
        (snapshot,) = (tmp_path / way).glob("snapshot-*.snap")
        written[way] = snapshot.read_bytes()
        recovery = await _recover(tmp_path / way)
        assert recovery.snapshot == state and len(recovery.records) == 1
    assert written["packed"] == written["mapping"]
