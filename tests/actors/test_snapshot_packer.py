"""Snapshots packed incrementally are byte for byte what packing the whole state gives.

The rich scripted history of the restore tests is folded one fact at a time, with a snapshot
packed after every fact by one long-lived packer (so every cached list is extended many times);
each payload must equal `msgpack.packb(encode_state(state))`. Then: what is appended while a
snapshot is being finished stays out of it, finishing yields to the loop, a list replaced under
the packer is packed again, and lists that left the state leave the cache.
"""

from __future__ import annotations

import copy

import msgpack
import pytest
import trio
import trio.testing

from actors.durable_state import CustomerState, DurableState
from actors.ports import TranscriptLine
from actors.snapshot_packer import SnapshotPacker
from actors.state_codec import decode_state, encode_state
from tests.actors.harness import running
from tests.actors.test_restore_snapshot import rich_history


def packed(state: DurableState) -> bytes:
    return msgpack.packb(encode_state(state), use_bin_type=True)


@pytest.mark.parametrize(("chunk", "min_cached"), [(3, 2), (1, 10_000)])
async def test_every_incremental_snapshot_equals_packing_the_whole_state(
    autojump_clock: trio.testing.MockClock, chunk: int, min_cached: int
) -> None:
    async with running(greeting="Welcome!", max_tries=5) as h:
        await rich_history(h)
        facts = list(h.sink.facts)
    state, packer = DurableState(), SnapshotPacker(chunk_items=chunk, min_cached_items=min_cached)
    for n, fact in enumerate(facts, 1):
        state.apply(fact)
        payload = b"".join(await packer.capture(state).finish())
        assert payload == packed(state), f"after {n} facts"
    assert (packer.cached_lists > 0) == (min_cached == 2)
    assert encode_state(decode_state(msgpack.unpackb(payload))) == encode_state(state)


def long_state(lines: int) -> DurableState:
    state = DurableState()
    customer = state.customers["c1"] = CustomerState("c1", "Ada")
    for i in range(lines):
        customer.lines.append(TranscriptLine("customer", "c1", "Ada", f"line {i}", 1.0 + i))
    return state


async def test_lines_appended_while_finishing_stay_out_of_the_snapshot():
    state, packer = long_state(10), SnapshotPacker(chunk_items=2, min_cached_items=1)
    await packer.capture(state).finish()
    for i in range(10, 20):
        state.customers["c1"].lines.append(TranscriptLine("agent", "U1", "Bo", f"x{i}", 50.0 + i))
    expected = packed(state)
    capture = packer.capture(state)
    state.customers["c1"].lines.append(TranscriptLine("agent", "U1", "Bo", "late", 99.0))
    with trio.testing.assert_checkpoints():  # ten new lines in chunks of two: it yields
        payload = b"".join(await capture.finish())
    assert payload == expected
    assert b"".join(await packer.capture(state).finish()) == packed(
        state
    )  # the late line comes next time


async def test_a_list_replaced_under_the_packer_is_packed_again():
    state, packer = long_state(40), SnapshotPacker()
    await packer.capture(state).finish()
    replaced = copy.deepcopy(state.customers["c1"].lines)
    replaced[-1] = TranscriptLine("bot", "B", "Bot", "not the same", 2.0)
    state.customers["c1"].lines = replaced
    assert b"".join(await packer.capture(state).finish()) == packed(state)


async def test_lists_gone_from_the_state_leave_the_cache_and_short_ones_never_enter():
    state, packer = long_state(40), SnapshotPacker()
    state.customers["c2"] = CustomerState("c2", "Bo")
    state.customers["c2"].lines.append(TranscriptLine("customer", "c2", "Bo", "hi", 1.0))
    await packer.capture(state).finish()
    assert packer.cached_lists == 1  # c1's 40 lines; c2's one line is packed directly
    del state.customers["c1"]
    assert b"".join(await packer.capture(state).finish()) == packed(state)
    assert packer.cached_lists == 0


async def test_overlapping_snapshots_are_refused():
    state, packer = long_state(40), SnapshotPacker(min_cached_items=1)
    await packer.capture(state).finish()
    lines = state.customers["c1"].lines
    lines.append(TranscriptLine("customer", "c1", "Ada", "more", 9.0))
    first = packer.capture(state)
    lines.append(TranscriptLine("customer", "c1", "Ada", "and more", 10.0))
    await packer.capture(state).finish()
    with pytest.raises(RuntimeError, match="overlapped"):
        await first.finish()


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        SnapshotPacker(chunk_items=0)
