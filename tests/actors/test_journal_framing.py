"""Journal framing: records round-trip through frames, bad input is refused, damage is located."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.journal import RecordInvalid
from actors.journal_framing import encode_record, frame_payload, scan

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
_records = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.text(min_size=1, max_size=20).filter(lambda t: not t.startswith("_")),
    st.dictionaries(
        st.text(max_size=12).filter(lambda k: k not in ("v", "lsn", "type")), _values, max_size=20
    ),
)


def _body(lsn: int, record: dict[str, Any]) -> dict[str, Any]:
    return {"v": 1, "lsn": lsn, **record}


@settings(max_examples=60, deadline=None)
@given(st.lists(_records, min_size=1, max_size=8), st.integers(min_value=1, max_value=2**40))
def test_records_round_trip_through_frames(records: list[dict[str, Any]], first: int) -> None:
    raw = b"".join(encode_record(first + i, r) for i, r in enumerate(records))
    found = scan(raw)
    assert found.bad == ()
    assert [f.body for f in found.frames] == [_body(first + i, r) for i, r in enumerate(records)]
    assert found.frames[-1].end == len(raw)


def test_frame_layout_is_length_crc_payload_little_endian() -> None:
    frame = encode_record(7, {"type": "session_opened", "session": "S1"})
    length, crc = struct.unpack_from("<II", frame)
    payload = frame[8:]
    assert length == len(payload)
    assert crc == zlib.crc32(payload)
    assert msgpack.unpackb(payload) == {"v": 1, "lsn": 7, "type": "session_opened", "session": "S1"}
    assert list(msgpack.unpackb(payload))[:2] == ["v", "lsn"]


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"text": "no type"}, "type"),
        ({"type": ""}, "type"),
        ({"type": 3}, "type"),
        ({"type": "_gap"}, "reserved"),
        ({"type": "x", "lsn": 5}, "reserved"),
        ({"type": "x", "v": 2}, "reserved"),
        ({"type": "x", 1: "int key"}, "keys are strings"),
        ({"type": "x", "n": 2**70}, "msgpack"),
        ({"type": "x", "obj": object()}, "msgpack"),
        ({"type": "x", "big": "a" * (17 * 1024 * 1024)}, "exceeds"),
        (["type", "x"], "mapping"),
    ],
)
def test_bad_records_are_refused_clearly(record: Any, problem: str) -> None:
    with pytest.raises(RecordInvalid, match=problem):
        encode_record(1, record)


def _three() -> tuple[bytes, list[int]]:
    frames = [encode_record(i, {"type": "msg", "text": f"hello {i}" * 3}) for i in (1, 2, 3)]
    offsets = [0, len(frames[0]), len(frames[0]) + len(frames[1])]
    return b"".join(frames), offsets


def test_every_flipped_bit_of_a_middle_frame_is_found_and_skipped() -> None:
    raw, offsets = _three()
    for pos in range(offsets[1], offsets[2]):
        for bit in range(8):
            damaged = bytearray(raw)
            damaged[pos] ^= 1 << bit
            found = scan(bytes(damaged))
            assert [f.body["lsn"] for f in found.frames] == [1, 3], (pos, bit)
            assert [(b.start, b.end) for b in found.bad] == [(offsets[1], offsets[2])]
            assert found.tail is None


def test_truncation_anywhere_in_the_last_frame_is_a_tail() -> None:
    raw, offsets = _three()
    for cut in range(offsets[2] + 1, len(raw)):
        found = scan(raw[:cut])
        assert [f.body["lsn"] for f in found.frames] == [1, 2]
        assert found.tail is not None
        assert (found.tail.start, found.tail.end) == (offsets[2], cut)


def test_checksummed_garbage_is_not_a_record() -> None:
    for payload in (b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"v": 1, "type": "x"})):
        found = scan(frame_payload(payload))
        assert found.frames == ()
        assert found.bad[0].reason == "undecodable payload"
