"""Restart cost: the durable state rebuilt from a snapshot plus the records after it, against the
baseline of replaying the whole journal from its first record; and the cost of taking a snapshot.

The history is synthetic but shaped like the daemon's: `--sessions` customers, each greeted, a few
messages answered by the bot, about a third escalating (offers missed, ignored, accepted), the
accepted ones taken over with messages both ways and ended, every session closed. Records start
as msgpack bytes, as the journal hands them over, and both ways pay for unpacking and strict
decoding. The snapshot covers all but the last `--tail` records. The ways alternate in each round
(ABBA order); times are medians over rounds, the ratio the median of per-round ratios.

    python benchmarks/restore_replay.py [--sessions 10000] [--tail 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.fact_codec import encode_fact
from actors.facts import (
    AgentMessaged,
    BotReplied,
    CustomerMessaged,
    EscalationEnded,
    EscalationStarted,
    Fact,
    OfferEnded,
    OfferMade,
    RoomRequested,
    SessionEnded,
    SessionStarted,
    TakeoverEnded,
    TakeoverStarted,
)
from actors.journal import JournalEntry
from actors.ports import AgentProfile
from actors.restore import rebuild
from actors.state_codec import encode_state

AGENTS = [f"U{n:04d}" for n in range(20)]
TEXT = "Hi, my order {n} has not arrived yet and the tracking page shows nothing at all."


def history(sessions: int, rng: random.Random) -> Iterator[Fact]:
    at = 1_764_000_000.0
    for s in range(sessions):
        sid, cid, seq = f"s_{s:08x}", f"c{s}", 0

        def nxt() -> int:
            nonlocal seq
            seq += 1
            return seq

        at += 1.0
        yield SessionStarted(sid, cid, f"Customer {s}", "", f"{s:064x}", at)
        yield BotReplied(sid, cid, nxt(), "bot_message", "Hi! Ask me anything.", at)
        for n in range(rng.randint(1, 4)):
            yield CustomerMessaged(sid, cid, nxt(), TEXT.format(n=n), at)
            yield BotReplied(sid, cid, nxt(), "bot_message", "Here is what I found.", at)
        if rng.random() < 0.35:
            eid = f"e_{s:08x}"
            yield CustomerMessaged(sid, cid, nxt(), "talk to a human", at)
            yield EscalationStarted(eid, sid, cid, "asked", at)
            yield BotReplied(sid, cid, nxt(), "searching", "Let me find someone.", at)
            tried = rng.sample(AGENTS, 3)
            for k, agent in enumerate(tried):
                oid = f"o_{s:08x}{k}"
                yield OfferMade(oid, eid, agent, at, at + 45)
                outcome = "accepted" if k == 2 else rng.choice(["missed", "ignored"])
                at += 5
                yield OfferEnded(oid, eid, agent, outcome, at)
            yield EscalationEnded(eid, sid, "accepted", "accepted", tried[2], 3.0, at)
            tid, room = f"t_{s:08x}", f"C{s:08d}"
            yield RoomRequested(tid, eid, sid, tried[2], oid, 2 * seq, at)
            profile = AgentProfile(tried[2], "Agent", "Agent Smith", "Support", "")
            yield TakeoverStarted(tid, eid, sid, cid, profile, room, "room", nxt(), at)
            for m in range(rng.randint(2, 6)):
                yield AgentMessaged(tid, sid, cid, tried[2], f"{room}:{m}", nxt(), "Sure.", at)
                yield CustomerMessaged(sid, cid, nxt(), TEXT.format(n=m), at)
            yield TakeoverEnded(tid, sid, tried[2], "agent", nxt(), at, "The agent has left.")
        yield SessionEnded(sid, nxt(), at)


def entries(packed: list[bytes]) -> list[JournalEntry]:
    return [JournalEntry(lsn, msgpack.unpackb(raw)) for lsn, raw in enumerate(packed, 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--tail", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    facts = list(history(args.sessions, random.Random(7)))
    packed = [msgpack.packb(encode_fact(f)) for f in facts]
    cut = len(packed) - args.tail
    snapshot_bytes = msgpack.packb(encode_state(rebuild(None, entries(packed[:cut]))))
    print(f"{len(facts)} records, {sum(map(len, packed)) / 1e6:.1f} MB of records")
    print(f"snapshot after record {cut}: {len(snapshot_bytes) / 1e6:.1f} MB")

    def full() -> float:
        started = time.perf_counter()
        rebuild(None, entries(packed))
        return time.perf_counter() - started

    def from_snapshot() -> float:
        started = time.perf_counter()
        tail = [JournalEntry(cut + i, msgpack.unpackb(r)) for i, r in enumerate(packed[cut:], 1)]
        rebuild(msgpack.unpackb(snapshot_bytes), tail)
        return time.perf_counter() - started

    def take_snapshot(state: object) -> float:
        started = time.perf_counter()
        msgpack.packb(encode_state(state))  # type: ignore[arg-type]
        return time.perf_counter() - started

    state = rebuild(None, entries(packed))
    fulls, snaps, ratios, takes = [], [], [], []
    for n in range(args.rounds):
        order = (full, from_snapshot) if n % 2 == 0 else (from_snapshot, full)
        times = {way: way() for way in order}
        fulls.append(times[full])
        snaps.append(times[from_snapshot])
        ratios.append(times[full] / times[from_snapshot])
        takes.append(take_snapshot(state))
    print(f"replay of every record     {statistics.median(fulls):7.2f} s")
    print(f"snapshot + {args.tail:>6} records  {statistics.median(snaps):7.2f} s")
    print(
        f"snapshot + tail is {statistics.median(ratios):.1f}x faster "
        f"(median of per-round ratios; range {min(ratios):.1f}x-{max(ratios):.1f}x)"
    )
    print(
        f"taking a snapshot (encode + msgpack, blocks the event loop) {statistics.median(takes):.2f} s"
    )


if __name__ == "__main__":
    main()
