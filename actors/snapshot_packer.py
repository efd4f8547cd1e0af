"""Snapshot payloads packed without stalling the event loop: long lists are packed only once.

Owns `SnapshotPacker`. A snapshot of the durable state is `msgpack.packb(encode_state(state))`,
and for a busy daemon most of it is the customers' transcripts and the sessions' events: lists
that only ever grow, of frozen items. Packing them again at every snapshot blocked the loop for
seconds (1.4 s for 600,000 lines and as many events). The packer keeps the msgpack bytes of the
items of each long list it already packed and packs only what was appended since.

A snapshot is taken in two steps, and the next one only after it finished:

- `capture(state)` runs synchronously at the LSN the snapshot covers (no checkpoint may come
  between reading that LSN and this call): it packs every mutable part at once (a session's
  fields, its takeover, the agents, ...) and notes how long each transcript and event list is;
- `await capture.finish()` packs those lists' items up to the noted lengths (for long lists
  only the ones gained since the last snapshot), yielding to the loop every `CHUNK_ITEMS` items
  (items before those lengths never change, so the result is still the state at that LSN), and
  returns the payload in parts, which the journal checksums and writes from a worker thread.

The parts, one after the other, are exactly `msgpack.packb(encode_state(state), use_bin_type=True)` (the
tests hold it to that), so decoding and the snapshot format are unchanged. Lists shorter than
`MIN_CACHED_ITEMS` are packed whole by `finish` each time (an idle session costs no cache
memory); the cache forgets lists no longer in the state.
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
    """The packed bytes of the first `count` items of one list; `last` is the item at
    `count - 1` (the list is known again by it); `generation`: the last capture that saw it."""

    count: int = 0
    data: bytearray = field(default_factory=bytearray)
    last: object = None
    generation: int = 0


@dataclass(frozen=True, slots=True)
class _Deferred:
    """A list as captured: its first `count` items go into the payload, packed by `finish`
    (through the cache `entry` for long lists)."""

    items: Sequence[Any]
    count: int
    encode: _Encode
    entry: _Packed | None


class SnapshotCapture:
    """One snapshot in the making: what `capture` packed, and the lists still to pack."""

    __slots__ = ("_budget", "_chunk", "_packer", "_parts")

    def __init__(self, parts: list[bytes | _Deferred], chunk_items: int) -> None:
        self._parts = parts
        self._chunk = self._budget = chunk_items
        self._packer = msgpack.Packer(use_bin_type=True)

    async def finish(self) -> list[bytes | bytearray]:
        """Pack the lists' items (only the new ones of cached lists), a chunk at a time between
        checkpoints, and return the payload as parts to write one after the other (joining
        them would copy the whole state on the loop). Cached parts are the packer's own: write
        them before the next snapshot is captured."""
        out: list[bytes | bytearray] = []
        for part in self._parts:
            if isinstance(part, bytes):
                out.append(part)
                continue
            out.append(self._packer.pack_array_header(part.count))
            if part.entry is None:
                data = bytearray()
                await self._pack_into(data, part, 0)
                out.append(data)
                continue
            entry = part.entry
            if entry.count < part.count:
                await self._pack_into(entry.data, part, entry.count)
                entry.count, entry.last = part.count, part.items[part.count - 1]
            elif entry.count != part.count:
                raise RuntimeError("snapshots overlapped: capture one only after the last finished")
            out.append(entry.data)
        return out

    async def _pack_into(self, data: bytearray, part: _Deferred, start: int) -> None:
        pack, encode, items = self._packer.pack, part.encode, part.items
        while start < part.count:
            end = min(part.count, start + self._budget)
            data += b"".join([pack(encode(item)) for item in items[start:end]])
            self._budget -= end - start
            start = end
            if self._budget <= 0:
                await trio.lowlevel.checkpoint()
                self._budget = self._chunk


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
        """Everything mutable packed now, the lists noted; see the module docstring."""
        self._generation += 1
        packer = msgpack.Packer(use_bin_type=True)
        pack = packer.pack
        parts: list[bytes | _Deferred] = [
            packer.pack_map_header(3 + len(_SMALL_KEYS)),
            pack("schema"),
            pack(SNAPSHOT_SCHEMA),
            pack("customers"),
            packer.pack_array_header(len(state.customers)),
        ]
        for c in state.customers.values():
            parts.append(_row_head(pack(customer_head(c)), _CUSTOMER_ROW))
            parts.append(self._list(("c", c.customer_id), c.lines, encode_line))
        parts += [pack("sessions"), packer.pack_array_header(len(state.sessions))]
        for s in state.sessions.values():
            parts.append(_row_head(pack(session_head(s)), _SESSION_ROW))
            parts.append(self._list(("s", s.session_id), s.events, encode_event))
            parts.append(pack(session_takeover(s)))
        small = encode_small_parts(state)
        assert tuple(small) == _SMALL_KEYS, "encode_small_parts changed its keys"
        for key, value in small.items():
            parts += [pack(key), pack(value)]
        self._forget_old()
        return SnapshotCapture(parts, self._chunk)

    def _list(self, key: tuple[str, str], items: Sequence[Any], encode: _Encode) -> _Deferred:
        count = len(items)
        if count < self._min_cached:
            return _Deferred(items, count, encode, None)
        entry = self._cache.get(key)
        if entry is None or entry.count > count or items[entry.count - 1] is not entry.last:
            entry = self._cache[key] = _Packed()  # new, or not the list it was: start again
        entry.generation = self._generation
        return _Deferred(items, count, encode, entry)

    def _forget_old(self) -> None:
        stale = [k for k, e in self._cache.items() if e.generation != self._generation]
        for key in stale:
            del self._cache[key]

    @property
    def cached_lists(self) -> int:
        return len(self._cache)


def _row_head(packed_head: bytes, row_length: int) -> bytes:
    """A row's head packed as a list, re-tagged as the start of the longer row (a fixarray:
    one byte holds the length, so the elements that follow are the same bytes)."""
    assert packed_head[0] & 0xF0 == 0x90 and row_length < 16
    return bytes((0x90 | row_length,)) + packed_head[1:]


_CUSTOMER_ROW = 4  # customer_head + [lines]
_SESSION_ROW = 11  # session_head + [events] + takeover
_SMALL_KEYS = tuple(encode_small_parts(DurableState()))
