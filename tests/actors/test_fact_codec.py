"""The fact codec: every fact round-trips through the journal's framing, and decoding is strict."""

from __future__ import annotations

import dataclasses
import typing

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.fact_codec import (
    FACT_TYPES,
    SCHEMA_VERSION,
    FactDecodeError,
    FactSchemaTooNew,
    decode_fact,
    encode_fact,
)
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
from actors.journal_framing import encode_record, scan
from actors.ports import AgentProfile

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
ids = st.text("abcdef0123456789_", min_size=1, max_size=20)
times = st.floats(0, 4e9, allow_nan=False)
seqs = st.integers(1, 2**40)
profiles = st.builds(AgentProfile, ids, text, text, text, text)


def _outcomes(kind: object) -> st.SearchStrategy[str]:
    return st.sampled_from(typing.get_args(kind))


facts: st.SearchStrategy[Fact] = st.one_of(
    st.builds(SessionStarted, ids, ids, text, text, text, times),
    st.builds(CustomerMessaged, ids, ids, seqs, text, times),
    st.builds(
        BotReplied, ids, ids, seqs, st.sampled_from(["bot_message", "searching"]), text, times
    ),
    st.builds(
        EscalationStarted, ids, ids, ids, st.sampled_from(["asked", "low_confidence"]), times
    ),
    st.builds(OfferMade, ids, ids, ids, times, times),
    st.builds(OfferEnded, ids, ids, ids, st.sampled_from(["accepted", "missed"]), times),
    st.builds(
        EscalationEnded,
        ids,
        ids,
        st.sampled_from(["accepted", "exhausted", "cancelled", "closed"]),
        text,
        st.none() | ids,
        times,
        times,
    ),
    st.builds(RoomRequested, ids, ids, ids, ids, ids, st.integers(0, 10_000), times),
    st.builds(
        TakeoverStarted,
        ids,
        ids,
        ids,
        ids,
        profiles,
        st.none() | ids,
        st.none() | text,
        st.none() | seqs,
        times,
    ),
    st.builds(AgentMessaged, ids, ids, ids, ids, ids, seqs, text, times),
    st.builds(
        TakeoverEnded,
        ids,
        ids,
        ids,
        st.sampled_from(["agent", "customer", "failed"]),
        st.none() | seqs,
        times,
        st.none() | text,
    ),
    st.builds(SessionEnded, ids, seqs, times),
)


def test_every_fact_has_a_record_type() -> None:
    assert set(FACT_TYPES.values()) == set(typing.get_args(Fact))
    assert all(name == name.lower() and " " not in name for name in FACT_TYPES)


@given(facts)
def test_facts_round_trip_through_the_journal_framing(fact: Fact) -> None:
    record = encode_fact(fact)
    assert record["type"] in FACT_TYPES and record["schema"] == SCHEMA_VERSION
    (frame,) = scan(encode_record(7, record)).frames
    body = {k: v for k, v in frame.body.items() if k not in ("v", "lsn")}
    assert decode_fact(body) == fact
    assert type(decode_fact(body)) is type(fact)


def test_times_written_as_integers_read_back_as_floats() -> None:
    record = encode_fact(SessionEnded("s1", 3, 1700000000))
    fact = decode_fact(msgpack.unpackb(msgpack.packb(record)))
    assert isinstance(fact, SessionEnded) and type(fact.at) is float and fact.at == 1700000000.0


def _record() -> dict[str, typing.Any]:
    return encode_fact(CustomerMessaged("s1", "c1", 4, "hello", 1.5))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(type="customer_shouted"), "unknown fact type 'customer_shouted'"),
        (lambda r: r.pop("type"), "unknown fact type None"),
        (lambda r: r.pop("seq"), "customer_messaged: field 'seq' is missing"),
        (lambda r: r.pop("schema"), "customer_messaged: field 'schema' is missing"),
        (lambda r: r.update(mood="happy"), "customer_messaged: unexpected field 'mood'"),
        (lambda r: r.update(seq=True), "field 'seq' must be an integer, not bool True"),
        (lambda r: r.update(seq=4.0), "field 'seq' must be an integer, not float 4.0"),
        (lambda r: r.update(text=b"hi"), "field 'text' must be a string, not bytes"),
        (lambda r: r.update(text=None), "field 'text' must be a string, not nil"),
        (lambda r: r.update(at="noon"), "field 'at' must be a number, not str 'noon'"),
        (lambda r: r.update(schema=0), "customer_messaged: schema 0 does not exist"),
    ],
)
def test_bad_records_are_refused_with_the_field_named(
    change: typing.Callable[[dict[str, typing.Any]], object], message: str
) -> None:
    record = _record()
    change(record)
    with pytest.raises(FactDecodeError) as raised:
        decode_fact(record)
    assert message in str(raised.value)


def test_a_value_outside_its_literal_is_refused() -> None:
    record = encode_fact(OfferEnded("o1", "e1", "U1", "missed", 2.0))
    record["outcome"] = "forgotten"
    with pytest.raises(FactDecodeError, match="'outcome' must be one of 'accepted', 'ignored'"):
        decode_fact(record)


def test_a_bad_nested_profile_names_its_field() -> None:
    profile = AgentProfile("U1", "Ann")
    record = encode_fact(TakeoverStarted("t1", "e1", "s1", "c1", profile, "C1", "room", 5, 3.0))
    del record["agent"]["display_name"]
    with pytest.raises(
        FactDecodeError, match="field 'agent': agent profile: field 'display_name' is missing"
    ):
        decode_fact(record)
    record["agent"] = "U1"
    with pytest.raises(FactDecodeError, match="field 'agent' must be an agent profile, not str"):
        decode_fact(record)


def test_a_newer_schema_is_refused_as_such() -> None:
    record = _record()
    record["schema"] = SCHEMA_VERSION + 1
    with pytest.raises(FactSchemaTooNew, match="schema 2 is newer than this version's 1"):
        decode_fact(record)


@pytest.mark.parametrize("record", [None, [1, 2], "customer_messaged", 7])
def test_a_record_that_is_not_a_map_is_refused(record: object) -> None:
    with pytest.raises(FactDecodeError, match="a fact record is a map"):
        decode_fact(record)  # type: ignore[arg-type]


def test_encoding_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not a fact: AgentProfile"):
        encode_fact(AgentProfile("U1", "Ann"))  # type: ignore[arg-type]


def test_records_hold_only_msgpack_basics() -> None:
    fact = TakeoverEnded("t1", "s1", "U1", "agent", 9, 5.0, "The agent has left.")
    record = encode_fact(fact)
    assert record == {
        "type": "takeover_ended",
        "schema": 1,
        **{f.name: getattr(fact, f.name) for f in dataclasses.fields(fact)},
    }
