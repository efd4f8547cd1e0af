"""Durable appends per second: group commit (`fsync: batch`) against one fsync per record
(`fsync: always`, the baseline), with 1, 10 and 100 concurrent writers, on this machine's disk.

Each writer loops `await journal.append(record)` (returns once the record is durable) for
`--seconds`; modes alternate within each round (ABBA order) so both see the same disk weather.
Rates are the median over rounds; the ratio is the median of the per-round ratios (each round's
group-commit rate over the same round's fsync-per-record rate). Run from the project root:

    python benchmarks/journal_appends.py [--seconds 3] [--rounds 3] [--dir PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.journal import FsyncMode, JournalActor
from actors.log import configure_logging

_MODES: tuple[FsyncMode, ...] = ("always", "batch")
RECORD = {
    "type": "customer_message",
    "session": "S-4f9c2a",
    "customer": "C-1b7e",
    "text": "Hi, my order 12345 has not arrived yet and the tracking page shows nothing. " * 2,
    "at": 1_764_000_000.123,
}


async def _measure(
    directory: Path, mode: FsyncMode, writers: int, seconds: float
) -> dict[str, float]:
    journal = JournalActor(directory, fsync=mode)
    done = 0

    async def writer(deadline: float) -> None:
        nonlocal done
        while trio.current_time() < deadline:
            await journal.append(RECORD)
            done += 1

    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        start = trio.current_time()
        async with trio.open_nursery() as pool:
            for _ in range(writers):
                pool.start_soon(writer, start + seconds)
        elapsed = trio.current_time() - start
        stats = journal.statistics()
        nursery.cancel_scope.cancel()
    return {"rate": done / elapsed, "fsyncs": stats.fsyncs / elapsed, "batch": stats.mean_batch}


async def main(seconds: float, rounds: int, base: Path | None) -> None:
    print(f"{seconds:g} s per run, median of {rounds} rounds, record of {len(str(RECORD))} chars")
    print(f"{'writers':>7} {'mode':>6} {'appends/s':>10} {'fsyncs/s':>9} {'mean batch':>10}")
    for writers in (1, 10, 100):
        results: dict[str, list[dict[str, float]]] = {"always": [], "batch": []}
        for round_ in range(rounds):
            for mode in _MODES if round_ % 2 == 0 else _MODES[::-1]:  # ABBA: no order bias
                directory = Path(tempfile.mkdtemp(prefix="journal-bench-", dir=base))
                try:
                    results[mode].append(await _measure(directory, mode, writers, seconds))
                finally:
                    shutil.rmtree(directory)
        medians = {}
        for label, runs in results.items():
            median = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
            medians[label] = median["rate"]
            print(
                f"{writers:>7} {label:>6} {median['rate']:>10.0f} {median['fsyncs']:>9.0f}"
                f" {median['batch']:>10.1f}"
            )
        ratios = sorted(
            b["rate"] / a["rate"] for a, b in zip(results["always"], results["batch"], strict=True)
        )
        print(
            f"{writers:>7} group commit {statistics.median(ratios):.1f}x fsync per record"
            f" (median of per-round ratios; range {ratios[0]:.1f}x-{ratios[-1]:.1f}x)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the journals")
    args = parser.parse_args()
    configure_logging("warning")
    trio.run(main, args.seconds, args.rounds, args.dir)
