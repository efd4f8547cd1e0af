"""How long a journal snapshot blocks the event loop: whole-state packing against the packer.

The state is shaped like the relay load test's after a quarter of an hour: `--customers`
customers, each with one session, `--lines` transcript lines and as many customer events. A
snapshot is due every `--every` records, so between two snapshots about that many lines and
events are appended. Measured, in one process and one run:

- baseline: `msgpack.packb(encode_state(state))`, what snapshots did before (one step, no
  checkpoint: the loop is blocked for all of it);
- packer, cold: the first snapshot with `SnapshotPacker` (everything is new);
- packer, steady: a snapshot after `--every` more lines and events (spread over the customers).

For each: the longest the loop went without running another task (a ticker task records the
longest gap between its wake-ups), and the snapshot's total time. Rounds alternate; medians.

    python benchmarks/snapshot_stall.py [--customers 300] [--lines 2000] [--every 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.durable_state import CustomerState, DurableState, SessionState
from actors.messages import CustomerEvent
from actors.ports import TranscriptLine
from actors.snapshot_packer import SnapshotPacker
from actors.state_codec import encode_state

TEXT = "Hi, my order {n} has not arrived yet and the tracking page shows nothing."


def grow(state: DurableState, per_customer: int, start: int) -> None:
    for n, customer in enumerate(state.customers.values()):
        session = state.sessions[f"s{n}"]
        for i in range(start, start + per_customer):
            line = TranscriptLine(
                "customer", customer.customer_id, "Ada", TEXT.format(n=i), 1e9 + i
            )
            customer.lines.append(line)
            session.events.append(
                CustomerEvent(i + 1, "customer_message", line.text, None, line.at)
            )


def relay_state(customers: int, lines: int) -> DurableState:
    state = DurableState()
    for n in range(customers):
        state.customers[f"c{n}"] = CustomerState(f"c{n}", "Ada", "ada@example.com")
        state.sessions[f"s{n}"] = SessionState(f"s{n}", f"c{n}", "d" * 64, 1e9)
    grow(state, lines, 0)
    return state


async def timed(work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """(longest loop stall, total seconds) of `work` with a ticker task alongside."""
    longest = 0.0
    done = False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await trio.lowlevel.checkpoint()
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        started = time.perf_counter()
        await work()
        total = time.perf_counter() - started
        await trio.lowlevel.checkpoint()  # the ticker notes the gap the work left
        done = True
    return longest, total


async def one_round(customers: int, lines: int, every: int) -> dict[str, tuple[float, float]]:
    state = relay_state(customers, lines)

    async def baseline() -> bytes:
        return msgpack.packb(encode_state(state), use_bin_type=True)

    packer = SnapshotPacker()

    async def packed() -> list[bytes | bytearray]:
        return await packer.capture(state).finish()  # parts: the journal's thread writes them

    results = {"baseline (whole state)": await timed(baseline)}
    results["packer, cold"] = await timed(packed)
    grow(state, max(1, every // (2 * customers)), lines)  # a line and an event per record
    results["packer, steady"] = await timed(packed)
    results["baseline, same state"] = await timed(baseline)
    assert b"".join(await packed()) == await baseline()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--lines", type=int, default=2000, help="lines (and events) each")
    parser.add_argument("--every", type=int, default=50_000, help="records between snapshots")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [
        trio.run(one_round, args.customers, args.lines, args.every) for _ in range(args.rounds)
    ]
    print(
        f"{args.customers} customers x {args.lines} lines and events; "
        f"{args.every} records between snapshots; medians of {args.rounds} rounds"
    )
    print(f"{'snapshot':<24} {'longest stall':>14} {'total':>10}")
    for name in rounds[0]:
        stall = statistics.median(r[name][0] for r in rounds)
        total = statistics.median(r[name][1] for r in rounds)
        print(f"{name:<24} {stall * 1e3:>11.1f} ms {total * 1e3:>7.0f} ms")
    base = statistics.median(r["baseline, same state"][0] for r in rounds)
    steady = statistics.median(r["packer, steady"][0] for r in rounds)
    print(f"steady-state stall: {steady / base:.3f}x the whole-state packing's")


if __name__ == "__main__":
    main()
