"""Snapshots of the durable state: `DurableState` <-> a compact msgpack-able map, strictly checked.

Owns the snapshot format. The top level is a map with `"schema"` (now 1) and one key per part
of the state; the many small records (transcript lines, customer events, offers, finished
escalations, leads) are positional lists to keep snapshots small:

    line      [speaker, author_id, author_name, text, at]
    event     [seq, type, text | nil, agent profile map | nil, at]
    offer     [offer_id, agent_id, made_at, expires_at, outcome | nil, ended_at | nil]
    takeover  [escalation_id, agent_id, offer_id, accepted_at, takeover_id, transcript_lines,
               started_at, room_id, room_name, profile, responded, [seen ids], [[seq, line]],
               last_heard]
    session   [session_id, customer_id, token_digest, started_at, closed, escalation_id,
               still_looking_sent, unanswered, owes_no_agent, [events], takeover | nil]
    lead      [lead_id, session_id, customer_id, name, email, question, at]

`decode_state` checks every value and raises `SnapshotDecodeError` naming the part that is
wrong, or `SnapshotSchemaTooNew`. The open rooms are not stored: they follow from the sessions'
takeovers. `"leads"` may be absent (snapshots written before leads existed): no leads.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar, get_args

from actors.durable_state import (
    AgentState,
    ClosedRoom,
    CustomerState,
    DurableState,
    EndedOffer,
    OfferState,
    OpenEscalation,
    SessionState,
    TakeoverState,
)
from actors.fact_codec import FactDecodeError, decode_profile, encode_profile
from actors.facts import EscalationOutcome, EscalationTrigger, TakeoverEndedBy
from actors.leads import Lead
from actors.messages import CustomerEvent, EventType
from actors.ports import AgentProfile, OfferOutcome, Speaker, TranscriptLine
from actors.stats import AgentTally, EscalationStats, OfferStats

__all__ = [
    "SNAPSHOT_SCHEMA",
    "SnapshotDecodeError",
    "SnapshotSchemaTooNew",
    "decode_state",
    "encode_state",
]

SNAPSHOT_SCHEMA = 1
T = TypeVar("T")


class SnapshotDecodeError(ValueError):
    """A snapshot state this version cannot read."""


class SnapshotSchemaTooNew(SnapshotDecodeError):
    """A snapshot written by a newer version."""


# --- encoding ----------------------------------------------------------------------------------


def _profile(profile: AgentProfile | None) -> dict[str, str] | None:
    return None if profile is None else encode_profile(profile)


def _line(line: TranscriptLine) -> list[Any]:
    return [line.speaker, line.author_id, line.author_name, line.text, line.at]


def _event(e: CustomerEvent) -> list[Any]:
    return [e.seq, e.type, e.text, _profile(e.agent), e.at]


def _offer(o: OfferState) -> list[Any]:
    return [o.offer_id, o.agent_id, o.made_at, o.expires_at, o.outcome, o.ended_at]


def _takeover(tk: TakeoverState) -> list[Any]:
    return [
        tk.escalation_id,
        tk.agent_id,
        tk.offer_id,
        tk.accepted_at,
        tk.takeover_id,
        tk.transcript_lines,
        tk.started_at,
        tk.room_id,
        tk.room_name,
        _profile(tk.profile),
        tk.responded,
        list(tk.seen),
        [[seq, _line(line)] for seq, line in tk.relays],
        tk.last_heard,
    ]


def _session(s: SessionState) -> list[Any]:
    return [
        s.session_id,
        s.customer_id,
        s.token_digest,
        s.started_at,
        s.closed,
        s.escalation_id,
        s.still_looking_sent,
        s.unanswered,
        s.owes_no_agent,
        [_event(e) for e in s.events],
        None if s.takeover is None else _takeover(s.takeover),
    ]


def _agent(agent_id: str, a: AgentState) -> list[Any]:
    t = a.tally
    counts = [t.offered, t.accepted, t.ignored, t.missed, t.withdrawn, t.ended]
    samples = [list(t.to_accept), list(t.first_response), list(t.takeover)]
    return [agent_id, *counts, *samples, a.load, a.idle_since, _profile(a.profile)]


def _finished(e: EscalationStats) -> list[Any]:
    offers = [[o.offer_id, o.agent_id, o.outcome, o.after_s] for o in e.offers]
    return [e.escalation_id, e.session_id, e.outcome, e.reason, e.agent_id, offers, e.waited_s]


def encode_state(state: DurableState) -> dict[str, Any]:
    """The state as a snapshot map (only lists, maps, str, int, float, bool and nil)."""
    return {
        "schema": SNAPSHOT_SCHEMA,
        "customers": [
            [c.customer_id, c.name, c.email, [_line(line) for line in c.lines]]
            for c in state.customers.values()
        ],
        "sessions": [_session(s) for s in state.sessions.values()],
        "escalations": [
            [
                e.escalation_id,
                e.session_id,
                e.customer_id,
                e.trigger,
                e.started_at,
                [_offer(o) for o in e.offers],
            ]
            for e in state.escalations.values()
        ],
        "agents": [_agent(agent_id, a) for agent_id, a in state.agents.items()],
        "finished": [_finished(e) for e in state.finished],
        "counts": dict(state.counts),
        "ended_offers": [[o, a] for o, a in state.ended_offers.items()],
        "recent_offers": [[o.offer_id, o.agent_id, o.outcome, o.at] for o in state.recent_offers],
        "closed_rooms": [[r.takeover_id, r.room_id, r.by, r.at] for r in state.closed_rooms],
        "leads": [
            [x.lead_id, x.session_id, x.customer_id, x.name, x.email, x.question, x.at]
            for x in state.leads
        ],
        "last_at": state.last_at,
        "facts": state.facts,
        "anomalies": state.anomalies,
    }


# --- decoding ----------------------------------------------------------------------------------


class _Bad(Exception):
    """A value of the wrong shape; the caller adds where."""


def _str(v: object) -> str:
    if type(v) is not str:
        raise _Bad(f"expected a string, got {type(v).__name__}")
    return v


def _int(v: object) -> int:
    if type(v) is not int:
        raise _Bad(f"expected an integer, got {type(v).__name__}")
    return v


def _bool(v: object) -> bool:
    if type(v) is not bool:
        raise _Bad(f"expected a boolean, got {type(v).__name__}")
    return v


def _float(v: object) -> float:
    if type(v) in (int, float):
        return float(v)  # type: ignore[arg-type]
    raise _Bad(f"expected a number, got {type(v).__name__}")


def _opt(read: Callable[[object], T]) -> Callable[[object], T | None]:
    return lambda v: None if v is None else read(v)


def _literal(hint: object) -> Callable[[object], Any]:
    allowed = get_args(hint)

    def read(v: object) -> Any:
        if v not in allowed or type(v) is not str:
            raise _Bad(f"expected one of {', '.join(allowed)}, got {v!r:.40}")
        return v

    return read


def _list(v: object) -> list[Any]:
    if not isinstance(v, list | tuple):
        raise _Bad(f"expected a list, got {type(v).__name__}")
    return list(v)


def _row(v: object, size: int) -> list[Any]:
    row = _list(v)
    if len(row) != size:
        raise _Bad(f"expected {size} items, got {len(row)}")
    return row


def _each(v: object, read: Callable[[object], T], what: str) -> list[T]:
    out = []
    for i, item in enumerate(_list(v)):
        try:
            out.append(read(item))
        except _Bad as e:
            raise _Bad(f"{what}[{i}]: {e}") from None
    return out


def _profile_of(v: object) -> AgentProfile | None:
    if v is None:
        return None
    try:
        return decode_profile(v)
    except (TypeError, FactDecodeError) as e:
        raise _Bad(f"bad agent profile {e}") from None


_speaker, _event_type = _literal(Speaker), _literal(EventType)
_outcome, _esc_outcome = _literal(OfferOutcome), _literal(EscalationOutcome)
_trigger, _ended_by = _literal(EscalationTrigger), _literal(TakeoverEndedBy)


def _read_line(v: object) -> TranscriptLine:
    s, author, name, text, at = _row(v, 5)
    return TranscriptLine(_speaker(s), _str(author), _str(name), _str(text), _float(at))


def _read_event(v: object) -> CustomerEvent:
    seq, kind, text, agent, at = _row(v, 5)
    return CustomerEvent(
        _int(seq), _event_type(kind), _opt(_str)(text), _profile_of(agent), _float(at)
    )


def _read_offer(v: object) -> OfferState:
    oid, agent, made, expires, outcome, ended = _row(v, 6)
    return OfferState(
        _str(oid),
        _str(agent),
        _float(made),
        _float(expires),
        _opt(_outcome)(outcome),
        _opt(_float)(ended),
    )


def _read_relay(v: object) -> tuple[int, TranscriptLine]:
    seq, line = _row(v, 2)
    return _int(seq), _read_line(line)


def _read_takeover(v: object) -> TakeoverState:
    r = _row(v, 14)
    tk = TakeoverState(_str(r[0]), _str(r[1]), _str(r[2]), _float(r[3]))
    tk.takeover_id, tk.transcript_lines = _opt(_str)(r[4]), _opt(_int)(r[5])
    tk.started_at, tk.room_id, tk.room_name = _opt(_float)(r[6]), _opt(_str)(r[7]), _opt(_str)(r[8])
    tk.profile, tk.responded = _profile_of(r[9]), _bool(r[10])
    tk.seen.extend(_each(r[11], _str, "seen"))
    tk.relays.extend(_each(r[12], _read_relay, "relays"))
    tk.last_heard = _opt(_float)(r[13])
    return tk


def _read_session(v: object) -> SessionState:
    r = _row(v, 11)
    s = SessionState(_str(r[0]), _str(r[1]), _str(r[2]), _float(r[3]))
    s.closed, s.escalation_id = _bool(r[4]), _opt(_str)(r[5])
    s.still_looking_sent, s.unanswered, s.owes_no_agent = _bool(r[6]), _bool(r[7]), _bool(r[8])
    s.events = _each(r[9], _read_event, "events")
    s.takeover = _opt(_read_takeover)(r[10])
    return s


def _read_customer(v: object) -> CustomerState:
    cid, name, email, lines = _row(v, 4)
    return CustomerState(_str(cid), _str(name), _str(email), _each(lines, _read_line, "lines"))


def _read_escalation(v: object) -> OpenEscalation:
    eid, sid, cid, trigger, started, offers = _row(v, 6)
    return OpenEscalation(
        _str(eid),
        _str(sid),
        _str(cid),
        _trigger(trigger),
        _float(started),
        _each(offers, _read_offer, "offers"),
    )


def _read_agent(v: object) -> tuple[str, AgentState]:
    r = _row(v, 13)
    offered, accepted, ignored, missed, withdrawn, ended = (_int(n) for n in r[1:7])
    tally = AgentTally(offered, accepted, ignored, missed, withdrawn, ended)
    tally.to_accept.extend(_each(r[7], _float, "to_accept"))
    tally.first_response.extend(_each(r[8], _float, "first_response"))
    tally.takeover.extend(_each(r[9], _float, "takeover"))
    return _str(r[0]), AgentState(tally, _int(r[10]), _opt(_float)(r[11]), _profile_of(r[12]))


def _read_finished(v: object) -> EscalationStats:
    eid, sid, outcome, reason, agent, offers, waited = _row(v, 7)

    def offer(o: object) -> OfferStats:
        oid, aid, out, after = _row(o, 4)
        return OfferStats(_str(oid), _str(aid), _opt(_outcome)(out), _opt(_float)(after))

    return EscalationStats(
        _str(eid),
        _str(sid),
        _esc_outcome(outcome),
        _str(reason),
        _opt(_str)(agent),
        tuple(_each(offers, offer, "offers")),
        _float(waited),
    )


def _read_ended(v: object) -> EndedOffer:
    oid, aid, outcome, at = _row(v, 4)
    return EndedOffer(_str(oid), _str(aid), _outcome(outcome), _float(at))


def _read_closed(v: object) -> ClosedRoom:
    tid, rid, by, at = _row(v, 4)
    return ClosedRoom(_str(tid), _str(rid), _ended_by(by), _float(at))


def _read_lead(v: object) -> Lead:
    lead_id, session_id, customer_id, name, email, question, at = _row(v, 7)
    return Lead(
        _str(lead_id),
        _str(session_id),
        _str(customer_id),
        _str(name),
        _str(email),
        _str(question),
        _float(at),
    )


def _read_pair(v: object) -> tuple[str, str]:
    a, b = _row(v, 2)
    return _str(a), _str(b)


def _part(snapshot: typing.Mapping[str, Any], key: str, read: Callable[[object], T]) -> T:
    if key not in snapshot:
        raise SnapshotDecodeError(f"snapshot: {key!r} is missing")
    try:
        return read(snapshot[key])
    except _Bad as e:
        raise SnapshotDecodeError(f"snapshot {key}: {e}") from None


def decode_state(snapshot: typing.Mapping[str, Any]) -> DurableState:
    """The durable state a snapshot holds; raises `SnapshotDecodeError` on any bad value."""
    if not isinstance(snapshot, typing.Mapping):
        raise SnapshotDecodeError(f"a snapshot is a map, not {type(snapshot).__name__}")
    schema = _part(snapshot, "schema", _int)
    if schema > SNAPSHOT_SCHEMA:
        raise SnapshotSchemaTooNew(f"snapshot schema {schema} is newer than {SNAPSHOT_SCHEMA}")
    if schema < 1:
        raise SnapshotDecodeError(f"snapshot schema {schema} does not exist")
    state = DurableState()
    for c in _part(snapshot, "customers", lambda v: _each(v, _read_customer, "")):
        state.customers[c.customer_id] = c
    for s in _part(snapshot, "sessions", lambda v: _each(v, _read_session, "")):
        state.sessions[s.session_id] = s
        if s.customer_id not in state.customers:
            raise SnapshotDecodeError(f"snapshot sessions: {s.session_id} has no customer")
        if s.takeover is not None and s.takeover.room_id is not None:
            state.rooms[s.takeover.room_id] = s.session_id
    for e in _part(snapshot, "escalations", lambda v: _each(v, _read_escalation, "")):
        state.escalations[e.escalation_id] = e
    for agent_id, agent in _part(snapshot, "agents", lambda v: _each(v, _read_agent, "")):
        state.agents[agent_id] = agent
    state.finished.extend(_part(snapshot, "finished", lambda v: _each(v, _read_finished, "")))
    counts = _part(snapshot, "counts", _counts)
    state.counts.update(counts)
    for offer_id, agent_id in _part(snapshot, "ended_offers", lambda v: _each(v, _read_pair, "")):
        state.ended_offers[offer_id] = agent_id
    state.recent_offers.extend(
        _part(snapshot, "recent_offers", lambda v: _each(v, _read_ended, ""))
    )
    state.closed_rooms.extend(_part(snapshot, "closed_rooms", lambda v: _each(v, _read_closed, "")))
    if "leads" in snapshot:
        state.leads.extend(_part(snapshot, "leads", lambda v: _each(v, _read_lead, "")))
    state.last_at = _part(snapshot, "last_at", _float)
    state.facts = _part(snapshot, "facts", _int)
    state.anomalies = _part(snapshot, "anomalies", _int)
    return state


def _counts(v: object) -> dict[str, int]:
    if not isinstance(v, dict):
        raise _Bad(f"expected a map, got {type(v).__name__}")
    return {_esc_outcome(k): _int(n) for k, n in v.items()}
