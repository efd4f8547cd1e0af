"""Snapshot payloads packed without stalling the event loop: long lists are packed only once.

Owns `SnapshotPacker`. A snapshot of the durable state is `msgpack.packb(encode_state(state))`,
and for a busy daemon most of it is the customers' transcripts and the sessions' events: lists
that only ever grow, of frozen items. Packing them again at every snapshot blocked the loop for
seconds (1.4 s for 600,000 lines and as many events). The packer keeps the msgpack bytes of the
items of each long list it already packed and packs only what was appended since.

A snapshot is taken in two steps, and the next one only after it finished:

- `capture(state)` runs synchronously at the LSN the snapshot covers (no checkpoint may come
  between reading that LSN and this call): it packs every small or mutable part at once and
  notes how long each long list is;
- `await capture.finish()` packs the items each long list gained since the last snapshot, up
  to the noted length, yielding to the loop every `CHUNK_ITEMS` items (items before that length
  never change, so the result is still the state at that LSN), and returns the payload.

The bytes are exactly those of `msgpack.packb(encode_state(state), use_bin_type=True)` (the
tests hold it to that), so decoding and the snapshot format are unchanged. Lists shorter than
`MIN_CACHED_ITEMS` are packed directly each time (an idle session costs no cache memory); the
cache forgets lists no longer in the state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio

from actors.durable_state import DurableState
from actors.state_codec import (
    SNAPSHOT_SCHEMA,
    customer_head,
    encode_event,
    encode_line,
    encode_small_parts,
    session_head,
    session_takeover,
)

__all__ = ["CHUNK_ITEMS", "MIN_CACHED_ITEMS", "SnapshotCapture", "SnapshotPacker"]

CHUNK_ITEMS = 5_000
MIN_CACHED_ITEMS = 32

_Encode = Callable[[Any], list[Any]]


@dataclass(slots=True)
class _Packed:
    """The packed bytes of the first `count` items of one list; `last` is its item count - 1."""

    count: int = 0
    data: bytearray = field(default_factory=bytearray)
    last: object = None
    generation: int = 0


@dataclass(frozen=True, slots=True)
class _LongList:
    """A long list as captured: its first `count` items go into the payload here."""

    entry: _Packed
    items: Sequence[Any]
    count: int
    encode: _Encode


class SnapshotCapture:
    """One snapshot in the making: what `capture` packed, and the long lists still to pack."""

    __slots__ = ("_chunk", "_parts")

    def __init__(self, parts: list[bytes | _LongList], chunk_items: int) -> None:
        self._parts = parts
        self._chunk = chunk_items

    async def finish(self) -> bytes:
        """Pack what the long lists gained, a chunk at a time, and return the whole payload."""
        packer = msgpack.Packer(use_bin_type=True)
        budget = self._chunk
        out: list[bytes | bytearray] = []
        for part in self._parts:
            if isinstance(part, bytes):
                out.append(part)
                continue
            entry = part.entry
            while entry.count < part.count:
                end = min(part.count, entry.count + budget)
                entry.data += b"".join(
                    packer.pack(part.encode(item)) for item in part.items[entry.count : end]
                )
                budget -= end - entry.count
                entry.count, entry.last = end, part.items[end - 1]
                if budget <= 0:
                    await trio.lowlevel.checkpoint()
                    budget = self._chunk
            if entry.count != part.count:
                raise RuntimeError("snapshots overlapped: capture one only after the last finished")
            out += [packer.pack_array_header(part.count), entry.data]
        return b"".join(out)


class SnapshotPacker:
    """Packs snapshot payloads, reusing the packed prefixes of long append-only lists."""

    __slots__ = ("_cache", "_chunk", "_generation", "_min_cached")

    def __init__(
        self, *, chunk_items: int = CHUNK_ITEMS, min_cached_items: int = MIN_CACHED_ITEMS
    ) -> None:
        if chunk_items < 1 or min_cached_items < 1:
            raise ValueError("chunk_items and min_cached_items must be positive")
        self._cache: dict[tuple[str, str], _Packed] = {}
        self._generation = 0
        self._chunk = chunk_items
        self._min_cached = min_cached_items

    def capture(self, state: DurableState) -> SnapshotCapture:
        """Everything but the long lists' new items, packed now; see the module docstring."""
        self._generation += 1
        packer = msgpack.Packer(use_bin_type=True)
        parts: list[bytes | _LongList] = [
            packer.pack_map_header(3 + len(_SMALL_KEYS)),
            packer.pack("schema"),
            packer.pack(SNAPSHOT_SCHEMA),
            packer.pack("customers"),
            packer.pack_array_header(len(state.customers)),
        ]
        for c in state.customers.values():
            head = customer_head(c)
            parts.append(packer.pack_array_header(len(head) + 1))
            parts.extend(packer.pack(v) for v in head)
            parts.append(self._list(packer, ("c", c.customer_id), c.lines, encode_line))
        parts += [packer.pack("sessions"), packer.pack_array_header(len(state.sessions))]
        for s in state.sessions.values():
            head = session_head(s)
            parts.append(packer.pack_array_header(len(head) + 2))
            parts.extend(packer.pack(v) for v in head)
            parts.append(self._list(packer, ("s", s.session_id), s.events, encode_event))
            parts.append(packer.pack(session_takeover(s)))
        small = encode_small_parts(state)
        assert tuple(small) == _SMALL_KEYS, "encode_small_parts changed its keys"
        for key, value in small.items():
            parts += [packer.pack(key), packer.pack(value)]
        self._forget_old()
        return SnapshotCapture(parts, self._chunk)

    def _list(
        self, packer: msgpack.Packer, key: tuple[str, str], items: Sequence[Any], encode: _Encode
    ) -> bytes | _LongList:
        count = len(items)
        if count < self._min_cached:
            return packer.pack([encode(item) for item in items])
        entry = self._cache.get(key)
        if entry is None or entry.count > count or items[entry.count - 1] is not entry.last:
            entry = self._cache[key] = _Packed()  # new, or not the list it was: start again
        entry.generation = self._generation
        return _LongList(entry, items, count, encode)

    def _forget_old(self) -> None:
        stale = [k for k, e in self._cache.items() if e.generation != self._generation]
        for key in stale:
            del self._cache[key]

    @property
    def cached_lists(self) -> int:
        return len(self._cache)


_SMALL_KEYS = tuple(encode_small_parts(DurableState()))
