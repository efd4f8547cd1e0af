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

import dataclasses
import typing
from collections.abc import Callable
from typing import Any, TypeVar

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
from actors.state_values import (
    Bad,
    each,
    literal,
    opt,
    read_bool,
    read_float,
    read_int,
    read_str,
    row,
)
from actors.stats import AgentTally, EscalationStats, OfferStats

__all__ = [
    "SNAPSHOT_SCHEMA",
    "SnapshotDecodeError",
    "SnapshotSchemaTooNew",
    "customer_head",
    "decode_state",
    "encode_event",
    "encode_line",
    "encode_small_parts",
    "encode_state",
    "session_head",
    "session_takeover",
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


def encode_line(line: TranscriptLine) -> list[Any]:
    return [line.speaker, line.author_id, line.author_name, line.text, line.at]


def encode_event(e: CustomerEvent) -> list[Any]:
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
        [[seq, encode_line(line)] for seq, line in tk.relays],
        tk.last_heard,
    ]


def customer_head(c: CustomerState) -> list[Any]:
    """A customer's row without its transcript (the row's last item)."""
    return [c.customer_id, c.name, c.email]


def session_head(s: SessionState) -> list[Any]:
    """A session's row up to its events (followed by the events, then the takeover)."""
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
    ]


def session_takeover(s: SessionState) -> list[Any] | None:
    return None if s.takeover is None else _takeover(s.takeover)


def _session(s: SessionState) -> list[Any]:
    return [*session_head(s), [encode_event(e) for e in s.events], session_takeover(s)]


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
            [*customer_head(c), [encode_line(line) for line in c.lines]]
            for c in state.customers.values()
        ],
        "sessions": [_session(s) for s in state.sessions.values()],
        **encode_small_parts(state),
    }


def encode_small_parts(state: DurableState) -> dict[str, Any]:
    """Every part of the snapshot after "sessions", in order."""
    return {
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


_PROFILE_KEYS = frozenset(f.name for f in dataclasses.fields(AgentProfile))


def _profile_of(v: object) -> AgentProfile | None:
    if v is None:
        return None
    if type(v) is dict and v.keys() == _PROFILE_KEYS and all(type(x) is str for x in v.values()):
        return AgentProfile(**v)
    try:
        return decode_profile(v)
    except (TypeError, FactDecodeError) as e:
        raise Bad(f"bad agent profile {e}") from None


_speaker, _event_type = literal(Speaker), literal(EventType)
_outcome, _esc_outcome = literal(OfferOutcome), literal(EscalationOutcome)
_trigger, _ended_by = literal(EscalationTrigger), literal(TakeoverEndedBy)


_SPEAKERS = frozenset(typing.get_args(Speaker))
_EVENT_TYPES = frozenset(typing.get_args(EventType))
_NUMBERS = (int, float)


def _read_line(v: object) -> TranscriptLine:
    """The bulk of a snapshot: checked inline, the slow readers only to say what is wrong."""
    if type(v) is list and len(v) == 5:
        s, author, name, text, at = v
        if (
            type(s) is str
            and s in _SPEAKERS
            and type(author) is str
            and type(name) is str
            and type(text) is str
            and type(at) in _NUMBERS
        ):
            return TranscriptLine(s, author, name, text, float(at))  # type: ignore[arg-type]
    s, author, name, text, at = row(v, 5)
    return TranscriptLine(
        _speaker(s), read_str(author), read_str(name), read_str(text), read_float(at)
    )


def _read_event(v: object) -> CustomerEvent:
    if type(v) is list and len(v) == 5:
        seq, kind, text, agent, at = v
        if (
            type(seq) is int
            and type(kind) is str
            and kind in _EVENT_TYPES
            and (text is None or type(text) is str)
            and type(at) in _NUMBERS
        ):
            return CustomerEvent(seq, kind, text, _profile_of(agent), float(at))  # type: ignore[arg-type]
    seq, kind, text, agent, at = row(v, 5)
    return CustomerEvent(
        read_int(seq), _event_type(kind), opt(read_str)(text), _profile_of(agent), read_float(at)
    )


def _read_offer(v: object) -> OfferState:
    oid, agent, made, expires, outcome, ended = row(v, 6)
    return OfferState(
        read_str(oid),
        read_str(agent),
        read_float(made),
        read_float(expires),
        opt(_outcome)(outcome),
        opt(read_float)(ended),
    )


def _read_relay(v: object) -> tuple[int, TranscriptLine]:
    seq, line = row(v, 2)
    return read_int(seq), _read_line(line)


def _read_takeover(v: object) -> TakeoverState:
    r = row(v, 14)
    tk = TakeoverState(read_str(r[0]), read_str(r[1]), read_str(r[2]), read_float(r[3]))
    tk.takeover_id, tk.transcript_lines = opt(read_str)(r[4]), opt(read_int)(r[5])
    tk.started_at, tk.room_id, tk.room_name = (
        opt(read_float)(r[6]),
        opt(read_str)(r[7]),
        opt(read_str)(r[8]),
    )
    tk.profile, tk.responded = _profile_of(r[9]), read_bool(r[10])
    tk.seen.extend(each(r[11], read_str, "seen"))
    tk.relays.extend(each(r[12], _read_relay, "relays"))
    tk.last_heard = opt(read_float)(r[13])
    return tk


def _read_session(v: object) -> SessionState:
    r = row(v, 11)
    s = SessionState(read_str(r[0]), read_str(r[1]), read_str(r[2]), read_float(r[3]))
    s.closed, s.escalation_id = read_bool(r[4]), opt(read_str)(r[5])
    s.still_looking_sent, s.unanswered, s.owes_no_agent = (
        read_bool(r[6]),
        read_bool(r[7]),
        read_bool(r[8]),
    )
    s.events = each(r[9], _read_event, "events")
    s.takeover = opt(_read_takeover)(r[10])
    return s


def _read_customer(v: object) -> CustomerState:
    cid, name, email, lines = row(v, 4)
    return CustomerState(
        read_str(cid), read_str(name), read_str(email), each(lines, _read_line, "lines")
    )


def _read_escalation(v: object) -> OpenEscalation:
    eid, sid, cid, trigger, started, offers = row(v, 6)
    return OpenEscalation(
        read_str(eid),
        read_str(sid),
        read_str(cid),
        _trigger(trigger),
        read_float(started),
        each(offers, _read_offer, "offers"),
    )


def _read_agent(v: object) -> tuple[str, AgentState]:
    r = row(v, 13)
    offered, accepted, ignored, missed, withdrawn, ended = (read_int(n) for n in r[1:7])
    tally = AgentTally(offered, accepted, ignored, missed, withdrawn, ended)
    tally.to_accept.extend(each(r[7], read_float, "to_accept"))
    tally.first_response.extend(each(r[8], read_float, "first_response"))
    tally.takeover.extend(each(r[9], read_float, "takeover"))
    return read_str(r[0]), AgentState(
        tally, read_int(r[10]), opt(read_float)(r[11]), _profile_of(r[12])
    )


def _read_finished(v: object) -> EscalationStats:
    eid, sid, outcome, reason, agent, offers, waited = row(v, 7)

    def offer(o: object) -> OfferStats:
        oid, aid, out, after = row(o, 4)
        return OfferStats(read_str(oid), read_str(aid), opt(_outcome)(out), opt(read_float)(after))

    return EscalationStats(
        read_str(eid),
        read_str(sid),
        _esc_outcome(outcome),
        read_str(reason),
        opt(read_str)(agent),
        tuple(each(offers, offer, "offers")),
        read_float(waited),
    )


def _read_ended(v: object) -> EndedOffer:
    oid, aid, outcome, at = row(v, 4)
    return EndedOffer(read_str(oid), read_str(aid), _outcome(outcome), read_float(at))


def _read_closed(v: object) -> ClosedRoom:
    tid, rid, by, at = row(v, 4)
    return ClosedRoom(read_str(tid), read_str(rid), _ended_by(by), read_float(at))


def _read_lead(v: object) -> Lead:
    lead_id, session_id, customer_id, name, email, question, at = row(v, 7)
    return Lead(
        read_str(lead_id),
        read_str(session_id),
        read_str(customer_id),
        read_str(name),
        read_str(email),
        read_str(question),
        read_float(at),
    )


def _read_pair(v: object) -> tuple[str, str]:
    a, b = row(v, 2)
    return read_str(a), read_str(b)


def _part(snapshot: typing.Mapping[str, Any], key: str, read: Callable[[object], T]) -> T:
    if key not in snapshot:
        raise SnapshotDecodeError(f"snapshot: {key!r} is missing")
    try:
        return read(snapshot[key])
    except Bad as e:
        raise SnapshotDecodeError(f"snapshot {key}: {e}") from None


def decode_state(snapshot: typing.Mapping[str, Any]) -> DurableState:
    """The durable state a snapshot holds; raises `SnapshotDecodeError` on any bad value."""
    if not isinstance(snapshot, typing.Mapping):
        raise SnapshotDecodeError(f"a snapshot is a map, not {type(snapshot).__name__}")
    schema = _part(snapshot, "schema", read_int)
    if schema > SNAPSHOT_SCHEMA:
        raise SnapshotSchemaTooNew(f"snapshot schema {schema} is newer than {SNAPSHOT_SCHEMA}")
    if schema < 1:
        raise SnapshotDecodeError(f"snapshot schema {schema} does not exist")
    state = DurableState()
    for c in _part(snapshot, "customers", lambda v: each(v, _read_customer, "")):
        state.customers[c.customer_id] = c
    for s in _part(snapshot, "sessions", lambda v: each(v, _read_session, "")):
        state.sessions[s.session_id] = s
        if s.customer_id not in state.customers:
            raise SnapshotDecodeError(f"snapshot sessions: {s.session_id} has no customer")
        if s.takeover is not None and s.takeover.room_id is not None:
            state.rooms[s.takeover.room_id] = s.session_id
    for e in _part(snapshot, "escalations", lambda v: each(v, _read_escalation, "")):
        state.escalations[e.escalation_id] = e
    for agent_id, agent in _part(snapshot, "agents", lambda v: each(v, _read_agent, "")):
        state.agents[agent_id] = agent
    state.finished.extend(_part(snapshot, "finished", lambda v: each(v, _read_finished, "")))
    counts = _part(snapshot, "counts", _counts)
    state.counts.update(counts)
    for offer_id, agent_id in _part(snapshot, "ended_offers", lambda v: each(v, _read_pair, "")):
        state.ended_offers[offer_id] = agent_id
    state.recent_offers.extend(_part(snapshot, "recent_offers", lambda v: each(v, _read_ended, "")))
    state.closed_rooms.extend(_part(snapshot, "closed_rooms", lambda v: each(v, _read_closed, "")))
    if "leads" in snapshot:
        state.leads.extend(_part(snapshot, "leads", lambda v: each(v, _read_lead, "")))
    state.last_at = _part(snapshot, "last_at", read_float)
    state.facts = _part(snapshot, "facts", read_int)
    state.anomalies = _part(snapshot, "anomalies", read_int)
    return state


def _counts(v: object) -> dict[str, int]:
    if not isinstance(v, dict):
        raise Bad(f"expected a map, got {type(v).__name__}")
    return {_esc_outcome(k): read_int(n) for k, n in v.items()}
