"""The customer API's wire format: what bodies and query strings are accepted, and event JSON."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from transport.chat_errors import Malformed, TooLarge
from transport.chat_wire import (
    MAX_WAIT_S,
    OpenSessionRequest,
    decode_message_text,
    decode_open_session,
    encode_event,
    parse_after,
    parse_json_object,
    parse_wait,
)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[1]", b'"text"', b"null", b"\xff\xfe", b"[" * 5000 + b"]" * 5000],
)
def test_bodies_that_are_not_a_json_object_are_malformed(body: bytes) -> None:
    with pytest.raises(Malformed) as refused:
        parse_json_object(body)
    assert refused.value.code == "malformed_json"
    assert refused.value.status == 400


def test_open_session_fields_are_optional_trimmed_and_unknown_ones_ignored() -> None:
    assert decode_open_session({}) == OpenSessionRequest(None, None, None)
    assert decode_open_session(
        {"customer_id": "c-1_a", "name": "  Ann ", "email": "", "extra": [1]}
    ) == OpenSessionRequest("c-1_a", "Ann", None)
    assert decode_open_session({"customer_id": None}) == OpenSessionRequest(None, None, None)


@pytest.mark.parametrize(
    "body",
    [
        {"customer_id": 5},
        {"customer_id": "x" * 65},
        {"name": ["list"]},
        {"name": "n" * 201},
        {"email": {"a": 1}},
        {"name": "\ud800"},
    ],
)
def test_open_session_refuses_wrong_fields(body: dict[str, object]) -> None:
    with pytest.raises(Malformed) as refused:
        decode_open_session(body)
    assert refused.value.code == "invalid_field"


def test_message_text_is_kept_exactly() -> None:
    text = "  <img src=x onerror=alert(1)>\n second line "
    assert decode_message_text({"text": text, "future": True}, 100) == text


def test_message_text_errors() -> None:
    with pytest.raises(Malformed) as missing:
        decode_message_text({}, 10)
    assert missing.value.code == "missing_text"
    with pytest.raises(Malformed) as wrong:
        decode_message_text({"text": 12}, 10)
    assert wrong.value.code == "invalid_field"
    with pytest.raises(Malformed) as empty:
        decode_message_text({"text": " \n\t"}, 10)
    assert empty.value.code == "empty_text"
    with pytest.raises(Malformed) as surrogate:
        decode_message_text({"text": "a\udc00"}, 10)
    assert surrogate.value.code == "invalid_field"
    with pytest.raises(TooLarge) as long:
        decode_message_text({"text": "x" * 11}, 10)
    assert (long.value.code, long.value.status) == ("text_too_long", 413)
    assert decode_message_text({"text": "x" * 10}, 10) == "x" * 10


def test_after_and_wait_query_values() -> None:
    assert parse_after(None) == 0
    assert parse_after("") == 0
    assert parse_after("17") == 17
    for bad in ("-1", "1.5", "x", "\u0661", "9" * 19):
        with pytest.raises(Malformed):
            parse_after(bad)
    assert parse_wait(None) == 0.0
    assert parse_wait("2.5") == 2.5
    assert parse_wait("1e9") == MAX_WAIT_S
    assert parse_wait("inf") == MAX_WAIT_S
    for bad in ("-1", "nan", "soon", "-inf"):
        with pytest.raises(Malformed):
            parse_wait(bad)


@dataclass(frozen=True)
class _Agent:
    id: str = "U1"
    display_name: str = "alice"
    real_name: str = "Alice Moreau"
    title: str = "Support lead"
    avatar_url: str = "https://example.test/a.png"


@dataclass(frozen=True)
class _Event:
    seq: int
    type: str
    text: str | None = None
    agent: _Agent | None = None
    at: float = 1.5


def test_events_leave_out_absent_text_and_agent() -> None:
    assert encode_event(_Event(3, "searching")) == {"seq": 3, "type": "searching", "at": 1.5}
    assert encode_event(_Event(4, "agent_joined", agent=_Agent())) == {
        "seq": 4,
        "type": "agent_joined",
        "agent": {
            "id": "U1",
            "display_name": "alice",
            "real_name": "Alice Moreau",
            "title": "Support lead",
            "avatar_url": "https://example.test/a.png",
        },
        "at": 1.5,
    }
    assert encode_event(_Event(5, "bot_message", text="hi")) == {
        "seq": 5,
        "type": "bot_message",
        "text": "hi",
        "at": 1.5,
    }
