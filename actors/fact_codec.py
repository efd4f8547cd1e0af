"""The journal's encoding of the durable facts: `Fact` <-> a msgpack-able dict, strictly checked.

Owns the record format of every fact in `actors.facts`: a flat map holding `"type"` (the fact's
name in snake_case, e.g. `customer_messaged`), `"schema"` (the facts' schema version, now 1) and
one key per field, valued with None, bool, int, float or str; an `AgentProfile` is a nested map
of its own fields. The journal adds its own `"v"` and `"lsn"` around this and strips them again
on replay.

Decoding is strict: an unknown type, a missing or unexpected key, a value of the wrong type or
outside its `Literal` raise `FactDecodeError` naming the type and the field; a record from a
newer schema raises `FactSchemaTooNew`. A journal written by this version always decodes, so
either error means a record this daemon must not guess about.

The same value checks serve the snapshot codec (`actors.state_codec`): `read_field`,
`encode_profile` / `decode_profile`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from actors.facts import (
    AgentMessaged,
    BotReplied,
    CustomerMessaged,
    EscalationEnded,
    EscalationStarted,
    Fact,
    LeadLeft,
    OfferEnded,
    OfferMade,
    RoomRequested,
    SessionEnded,
    SessionStarted,
    TakeoverEnded,
    TakeoverStarted,
)
from actors.ports import AgentProfile, TranscriptLine

__all__ = [
    "FACT_TYPES",
    "SCHEMA_VERSION",
    "FactDecodeError",
    "FactSchemaTooNew",
    "decode_fact",
    "decode_profile",
    "encode_fact",
    "encode_profile",
    "read_field",
]

SCHEMA_VERSION = 1

FACT_TYPES: Mapping[str, type[Any]] = {
    "session_started": SessionStarted,
    "customer_messaged": CustomerMessaged,
    "bot_replied": BotReplied,
    "escalation_started": EscalationStarted,
    "offer_made": OfferMade,
    "offer_ended": OfferEnded,
    "escalation_ended": EscalationEnded,
    "room_requested": RoomRequested,
    "takeover_started": TakeoverStarted,
    "agent_messaged": AgentMessaged,
    "takeover_ended": TakeoverEnded,
    "session_ended": SessionEnded,
    "lead_left": LeadLeft,
}
_NAMES: Mapping[type[Any], str] = {cls: name for name, cls in FACT_TYPES.items()}
_ENVELOPE = frozenset({"type", "schema"})

T = TypeVar("T")


class FactDecodeError(ValueError):
    """A journal record that is not a fact this version knows how to read."""


class FactSchemaTooNew(FactDecodeError):
    """A record written by a newer version of the facts' schema."""


# --- values ------------------------------------------------------------------------------------

Check = Callable[[object], object]


def _check_for(hint: object) -> tuple[Check, str]:
    """A function that returns the decoded value or raises TypeError, and a description."""
    if hint is str:
        return _exact(str), "a string"
    if hint is int:
        return _exact(int), "an integer"
    if hint is bool:
        return _exact(bool), "a boolean"
    if hint is float:
        return _number, "a number"
    if hint is AgentProfile:
        return decode_profile, "an agent profile"
    if hint == tuple[TranscriptLine, ...]:
        return _decode_lines, "a list of transcript lines"
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        return _one_of(allowed), "one of " + ", ".join(map(repr, allowed))
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(options) == 1, f"unsupported union {hint!r}"
        inner, what = _check_for(options[0])
        return (lambda v: None if v is None else inner(v)), f"{what} or nil"
    raise AssertionError(f"no codec for {hint!r}")


def _exact(kind: type[Any]) -> Check:
    def check(value: object) -> object:
        if type(value) is not kind:
            raise TypeError
        return value

    return check


def _number(value: object) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise TypeError


def _one_of(allowed: tuple[object, ...]) -> Check:
    def check(value: object) -> object:
        if type(value) is not str or value not in allowed:
            raise TypeError
        return value

    return check


def _kind(value: object) -> str:
    return "nil" if value is None else type(value).__name__


def read_field(record: Mapping[str, Any], key: str, check: Check, what: str, where: str) -> Any:
    """`record[key]` checked by `check`; a missing key or a bad value raise `FactDecodeError`."""
    if key not in record:
        raise FactDecodeError(f"{where}: field {key!r} is missing")
    value = record[key]
    try:
        return check(value)
    except FactDecodeError as e:  # inside a nested map: keep its detail
        raise FactDecodeError(f"{where}: field {key!r}: {e}") from None
    except (TypeError, ValueError):
        raise FactDecodeError(
            f"{where}: field {key!r} must be {what}, not {_kind(value)} {value!r:.60}"
        ) from None


def _encode_value(value: object) -> object:
    if isinstance(value, AgentProfile):
        return encode_profile(value)
    if isinstance(value, tuple):  # transcript lines (LeadLeft)
        return [{f.name: getattr(line, f.name) for f in _LINE_FIELDS} for line in value]
    return value


def _decode_lines(value: object) -> tuple[TranscriptLine, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError
    return tuple(
        TranscriptLine(**_decode_fields(TranscriptLine, line, "transcript line", envelope=()))
        if isinstance(line, Mapping)
        else _not_a_line(line)
        for line in value
    )


def _not_a_line(value: object) -> TranscriptLine:
    raise FactDecodeError(f"a transcript line is a map, not {_kind(value)}")


_LINE_FIELDS = dataclasses.fields(TranscriptLine)


def encode_profile(profile: AgentProfile) -> dict[str, str]:
    return {f.name: getattr(profile, f.name) for f in dataclasses.fields(AgentProfile)}


def decode_profile(value: object) -> AgentProfile:
    if not isinstance(value, Mapping):
        raise TypeError
    return AgentProfile(**_decode_fields(AgentProfile, value, "agent profile", envelope=()))


# --- facts -------------------------------------------------------------------------------------

_Plan = tuple[tuple[str, Check, str], ...]
_PLANS: dict[type[Any], _Plan] = {}


def _plan(cls: type[Any]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = _PLANS[cls] = tuple(
            (f.name, *_check_for(hints[f.name])) for f in dataclasses.fields(cls)
        )
    return plan


def _decode_fields(
    cls: type[Any], record: Mapping[str, Any], where: str, *, envelope: frozenset[str] | tuple[()]
) -> dict[str, Any]:
    plan = _plan(cls)
    names = {name for name, _, _ in plan}
    extra = [k for k in record if k not in names and k not in envelope]
    if extra:
        raise FactDecodeError(f"{where}: unexpected field {sorted(map(str, extra))[0]!r}")
    return {name: read_field(record, name, check, what, where) for name, check, what in plan}


def encode_fact(fact: Fact) -> dict[str, Any]:
    """The fact as a journal record: `type`, `schema` and its fields."""
    cls = type(fact)
    name = _NAMES.get(cls)
    if name is None:
        raise TypeError(f"not a fact: {cls.__name__}")
    out: dict[str, Any] = {"type": name, "schema": SCHEMA_VERSION}
    for field, _, _ in _plan(cls):
        value = getattr(fact, field)
        out[field] = _encode_value(value)
    return out


def decode_fact(record: Mapping[str, Any]) -> Fact:
    """The fact a journal record holds; raises `FactDecodeError` (or `FactSchemaTooNew`)."""
    if not isinstance(record, Mapping):
        raise FactDecodeError(f"a fact record is a map, not {_kind(record)}")
    kind = record.get("type")
    cls = FACT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise FactDecodeError(f"unknown fact type {kind!r:.60}")
    where = str(kind)
    schema = read_field(record, "schema", _exact(int), "an integer", where)
    if schema > SCHEMA_VERSION:
        raise FactSchemaTooNew(
            f"{where}: schema {schema} is newer than this version's {SCHEMA_VERSION}"
        )
    if schema < 1:
        raise FactDecodeError(f"{where}: schema {schema} does not exist")
    fact: Fact = cls(**_decode_fields(cls, record, where, envelope=_ENVELOPE))
    return fact
