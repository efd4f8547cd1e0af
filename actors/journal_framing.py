"""Journal framing: records as bytes and back, with no I/O (sans-IO, pure functions).

Owns the on-disk record format. A record is a msgpack map whose first keys are the schema version
`"v"` and the log sequence number `"lsn"`, then the record's own keys (`"type"` among them). It is
framed as `[u32 length][u32 CRC32 of payload][payload]`, little endian. `scan()` walks a buffer of
frames and reports the valid ones and the damaged byte ranges between them, resynchronising after
damage so callers can tell a torn tail from a corrupt middle.

Internal record types start with `_`: `_gap` (records lost in a repair, see journal_recovery.py)
and `_snapshot` (a snapshot file holds exactly one such frame).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from actors.journal_errors import RecordInvalid

__all__ = [
    "GAP_TYPE",
    "HEADER",
    "MAX_PAYLOAD_BYTES",
    "RESERVED_KEYS",
    "SNAPSHOT_TYPE",
    "VERSION",
    "BadRegion",
    "Frame",
    "Scan",
    "decode_payload",
    "encode_body",
    "encode_record",
    "frame_header",
    "frame_payload",
    "pack_body",
    "scan",
]

VERSION = 1
HEADER = struct.Struct("<II")
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
RESERVED_KEYS = frozenset({"v", "lsn"})
GAP_TYPE = "_gap"
SNAPSHOT_TYPE = "_snapshot"

# Payloads always start with a map whose first key is "v": fixmap, map16 or map32 header, then
# the one-character string "v". Resynchronising searches for this marker instead of trying a
# checksum at every byte.
_V_KEY = b"\xa1v"
_MAP_HEADER_LEN = {0xDE: 3, 0xDF: 5}


def frame_payload(payload: bytes) -> bytes:
    """Prefix a payload with its length and CRC32."""
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def frame_header(parts: Sequence[bytes | bytearray]) -> bytes:
    """The frame header of the payload the `parts` make one after the other (no copy made)."""
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return HEADER.pack(sum(map(len, parts)), crc)


def encode_body(body: Mapping[str, Any], *, max_payload: int = MAX_PAYLOAD_BYTES) -> bytes:
    """Encode and frame one payload map (which must already carry "v" and "lsn" first)."""
    return frame_payload(pack_body(body, max_payload=max_payload))


def pack_body(body: Mapping[str, Any], *, max_payload: int = MAX_PAYLOAD_BYTES) -> bytes:
    """One payload map as msgpack, not framed yet; `RecordInvalid` when it cannot be."""
    try:
        payload = msgpack.packb(body, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise RecordInvalid(f"cannot encode as msgpack: {e}") from None
    if len(payload) > max_payload:
        raise RecordInvalid(f"encoded size {len(payload)} exceeds {max_payload} bytes")
    return payload


def encode_record(lsn: int, record: Mapping[str, Any]) -> bytes:
    """Validate a domain record and return its frame; raises `RecordInvalid` on bad input."""
    if not isinstance(record, Mapping):
        raise RecordInvalid(f"a record is a mapping, not {type(record).__name__}")
    kind = record.get("type")
    if not isinstance(kind, str) or not kind:
        raise RecordInvalid('a record needs a non-empty string "type"')
    if kind.startswith("_"):
        raise RecordInvalid(f"record type {kind!r}: types starting with '_' are reserved")
    for key in record:
        if not isinstance(key, str):
            raise RecordInvalid(f"record keys are strings, not {type(key).__name__}")
        if key in RESERVED_KEYS:
            raise RecordInvalid(f"record key {key!r} is reserved by the journal")
    return encode_body({"v": VERSION, "lsn": lsn, **record})


def decode_payload(payload: bytes | memoryview) -> dict[str, Any] | None:
    """Decode a checksummed payload into its map, or None when it is not a journal payload."""
    try:
        body = msgpack.unpackb(payload, raw=False)
    except Exception:  # any malformed msgpack is just "not a record"
        return None
    if not isinstance(body, dict):
        return None
    v, lsn, kind = body.get("v"), body.get("lsn"), body.get("type")
    if type(v) is not int or type(lsn) is not int or lsn < 0 or not isinstance(kind, str):
        return None
    return body


@dataclass(frozen=True, slots=True)
class Frame:
    """One valid frame: its byte range in the buffer and its decoded payload map."""

    offset: int
    end: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BadRegion:
    """A damaged byte range [start, end): no valid frame starts inside it."""

    start: int
    end: int
    reason: str


@dataclass(frozen=True, slots=True)
class Scan:
    """The result of scanning a buffer: valid frames and damaged ranges, both in file order."""

    frames: tuple[Frame, ...]
    bad: tuple[BadRegion, ...]
    size: int

    @property
    def tail(self) -> BadRegion | None:
        """The damaged range running to the end of the buffer, if any (a torn or corrupt tail)."""
        if self.bad and self.bad[-1].end == self.size:
            return self.bad[-1]
        return None


def _frame_at(data: memoryview, pos: int, max_payload: int) -> Frame | str:
    """The valid frame starting at `pos`, or the reason there is none."""
    size = len(data)
    if size - pos < HEADER.size:
        return "truncated header"
    length, crc = HEADER.unpack_from(data, pos)
    if length == 0 or length > max_payload:
        return f"impossible length {length}"
    end = pos + HEADER.size + length
    if end > size:
        return "truncated record"
    payload = data[pos + HEADER.size : end]
    if zlib.crc32(payload) != crc:
        return "checksum mismatch"
    body = decode_payload(payload)
    if body is None:
        return "undecodable payload"
    return Frame(pos, end, body)


def _resync(data: memoryview, raw: bytes, pos: int, max_payload: int) -> Frame | None:
    """The first valid frame starting after damaged `pos`, or None when none follows."""
    marker = raw.find(_V_KEY, pos + HEADER.size + 1)
    while marker != -1:
        for header_len in (1, 3, 5):
            start = marker - header_len - HEADER.size
            first = raw[start + HEADER.size] if start > pos else None
            if first is None:
                continue
            fits = (header_len == 1 and 0x80 <= first <= 0x8F) or (
                _MAP_HEADER_LEN.get(first) == header_len
            )
            if fits:
                found = _frame_at(data, start, max_payload)
                if isinstance(found, Frame):
                    return found
        marker = raw.find(_V_KEY, marker + 1)
    return None


def scan(raw: bytes, *, max_payload: int = MAX_PAYLOAD_BYTES) -> Scan:
    """Walk `raw` frame by frame; after damage, skip to the next valid frame if there is one."""
    data = memoryview(raw)
    frames: list[Frame] = []
    bad: list[BadRegion] = []
    pos = 0
    while pos < len(raw):
        found = _frame_at(data, pos, max_payload)
        if isinstance(found, Frame):
            frames.append(found)
            pos = found.end
            continue
        following = _resync(data, raw, pos, max_payload)
        end = following.offset if following is not None else len(raw)
        bad.append(BadRegion(pos, end, found))
        if following is None:
            break
        frames.append(following)
        pos = following.end
    return Scan(tuple(frames), tuple(bad), len(raw))
