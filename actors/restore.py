"""Startup after a stop or a crash: the durable state rebuilt from the journal, and the domain's
actors built from it.

Owns `rebuild` (decode the snapshot, fold the records after it; any record this version cannot
read raises `RestoreError` naming its LSN, so the daemon refuses to start rather than guess) and
`restore_domain`, which `Domain` calls with the rebuilt state: it fills the domain's context
(customers and transcripts, sessions with their token digests and events, open rooms, the
escalation log and ended offers), the agents' stats and the dispatcher's view (loads, idle
times; presence is Slack's to tell), and returns what the running domain must start:

- the sessions that are open or still have work (each with its `SessionResume`);
- one `EscalationActor` per escalation the journal shows open, with its offers and exclusions:
  accepted ones finish at once, pending offers are withdrawn, the rest walk on;
- Slack commands to send again for what ended just before the stop and may not have reached
  Slack (offer DM updates, room notes and archives), all idempotent on the Slack side.

"Just before" is `RESEND_WINDOW_S` before the journal's last fact: anything older reached Slack
or was given up long ago. Durations measured on trio's clock (offer deadlines, takeover times)
are carried over by mapping the facts' epoch times onto the clock at restore.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from actors.agent import AgentActor
from actors.context import CustomerRecord, DomainContext
from actors.durable_state import DurableState, OpenEscalation, SessionState, TakeoverState
from actors.escalation import EscalationActor
from actors.escalation_rules import EscalationState
from actors.fact_codec import FactDecodeError, decode_fact
from actors.journal import JournalEntry
from actors.messages import CancelEscalation
from actors.ports import CloseRoom, ResolveOffer, SlackCommand, TranscriptLine
from actors.routing import AgentView, Offer
from actors.runtime import tell_nowait
from actors.session import SessionActor
from actors.session_events import EventLog
from actors.session_resume import SessionResume, TakeoverStep
from actors.session_takeover import CUSTOMER_LEFT_NOTE, relay
from actors.state_codec import SnapshotDecodeError, decode_state
from actors.takeover import Takeover

__all__ = ["RESEND_WINDOW_S", "RestoreError", "Restored", "rebuild", "restore_domain"]

RESEND_WINDOW_S = 600.0
CATCH_UP_MARGIN_S = 60.0
"""A room's messages are read back from a minute before the latest one the journal holds."""


class RestoreError(Exception):
    """The journal holds a snapshot or record this version cannot read (`lsn` when a record)."""

    def __init__(self, message: str, *, lsn: int | None = None) -> None:
        super().__init__(message)
        self.lsn = lsn


def rebuild(snapshot: Mapping[str, Any] | None, records: Iterable[JournalEntry]) -> DurableState:
    """The durable state: the snapshot's, then every record after it folded in, in order."""
    try:
        state = decode_state(snapshot) if snapshot is not None else DurableState()
    except SnapshotDecodeError as e:
        raise RestoreError(f"the snapshot cannot be read: {e}") from None
    for entry in records:
        try:
            fact = decode_fact(entry.record)
        except FactDecodeError as e:
            raise RestoreError(f"journal record {entry.lsn}: {e}", lsn=entry.lsn) from None
        state.apply(fact)
    return state


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restored domain starts: `sessions` first, then `escalations`; `resend` goes to
    Slack again."""

    sessions: tuple[SessionActor, ...]
    escalations: tuple[EscalationActor, ...]
    resend: tuple[SlackCommand, ...]
    view: Mapping[str, AgentView]


class _Clock:
    """Epoch seconds of the facts -> trio seconds now (for durations measured on trio's clock)."""

    def __init__(self, trio_now: float, wall_now: float) -> None:
        self._offset = trio_now - wall_now

    def __call__(self, wall: float) -> float:
        return wall + self._offset


def restore_domain(
    ctx: DomainContext,
    state: DurableState,
    agents: Mapping[str, AgentActor],
    *,
    trio_now: float,
    wall_now: float,
    window_s: float = RESEND_WINDOW_S,
) -> Restored:
    """Fill `ctx` and the agents from `state` (copied: the state goes on folding new facts)."""
    clock = _Clock(trio_now, wall_now)
    since = state.last_at - window_s
    for c in state.customers.values():
        record = ctx.customers[c.customer_id] = CustomerRecord(c.customer_id, c.name, c.email)
        record.lines = list(c.lines)
    sessions = [_session(ctx, s, clock, since) for s in state.sessions.values()]
    ctx.open_sessions = state.open_sessions
    for finished in state.finished:
        ctx.escalation_log.add(finished)
    for offer_id, agent_id in state.ended_offers.items():
        ctx.ended_offers.add(offer_id, agent_id)
    for lead in state.leads:
        ctx.leads.add(lead)
    escalations = [_escalation(ctx, e, clock) for e in state.escalations.values()]
    view: dict[str, AgentView] = {}
    offering = {o.agent_id for e in state.escalations.values() if (o := e.pending) is not None}
    for agent_id, actor in agents.items():
        durable = state.agents.get(agent_id)
        if durable is None:  # never had an offer: idle longer than anyone who had one
            view[agent_id] = AgentView(agent_id, idle_since=-math.inf)
            continue
        tally = actor.tally
        for name in ("offered", "accepted", "ignored", "missed", "withdrawn", "ended"):
            setattr(tally, name, getattr(durable.tally, name))
        tally.to_accept.extend(durable.tally.to_accept)
        tally.first_response.extend(durable.tally.first_response)
        tally.takeover.extend(durable.tally.takeover)
        actor.profile = durable.profile
        if agent_id in offering:  # their pending offer is withdrawn as the domain starts
            idle = trio_now
        elif durable.idle_since is None:
            idle = -math.inf
        else:
            idle = clock(durable.idle_since)
        view[agent_id] = AgentView(agent_id, load=durable.load, idle_since=idle)
    resend: list[SlackCommand] = [
        ResolveOffer(o.offer_id, o.agent_id, o.outcome)
        for o in state.recent_offers
        if o.at >= since and o.outcome != "accepted"
    ]
    resend += [
        CloseRoom(
            r.takeover_id, r.room_id, CUSTOMER_LEFT_NOTE if r.by == "customer" else None, True
        )
        for r in state.closed_rooms
        if r.at >= since
    ]
    running = tuple(s for s in sessions if s is not None)
    resumed = tuple(e for e in escalations if e is not None)
    return Restored(running, resumed, tuple(resend), view)


def _session(
    ctx: DomainContext, s: SessionState, clock: _Clock, since: float
) -> SessionActor | None:
    """The session's actor (registered in `ctx`); returned when it must run."""
    customer = ctx.customers[s.customer_id]
    durable = s.takeover
    takeover = _takeover(durable, clock) if durable and durable.takeover_id else None
    if s.closed and s.escalation_id is None and durable is None:
        plan = None
    else:
        plan = _plan(s, durable, takeover, since)
    session = SessionActor(
        ctx, s.session_id, customer, s.token_digest, events=EventLog(s.events), resume=plan
    )
    session.closed = s.closed
    session.escalation_id = s.escalation_id
    session.still_looking_sent = s.still_looking_sent
    session.takeover = takeover
    ctx.sessions[s.session_id] = session
    if takeover is not None and takeover.room_id is not None:
        ctx.rooms[takeover.room_id] = session
    if plan is None:
        session.stop()  # closed, nothing left to do: it refuses messages at once
        return None
    return session


def _takeover(tk: TakeoverState, clock: _Clock) -> Takeover:
    assert tk.takeover_id is not None
    takeover = Takeover(
        tk.takeover_id, tk.escalation_id, tk.agent_id, tk.offer_id, clock(tk.accepted_at)
    )
    takeover.room_id, takeover.room_name = tk.room_id, tk.room_name
    takeover.profile = tk.agent_profile
    takeover.responded = tk.responded
    takeover.seen.extend(tk.seen)
    takeover.catch_up_since = (tk.last_heard or tk.accepted_at) - CATCH_UP_MARGIN_S
    if tk.started_at is None:  # the room was being opened: its lines wait for it
        takeover.pending = list(tk.relays)
    return takeover


def _plan(
    s: SessionState, durable: TakeoverState | None, takeover: Takeover | None, since: float
) -> SessionResume:
    step: TakeoverStep | None = None
    accepted = None
    resend: list[SlackCommand] = []
    if durable is not None:
        if takeover is None:
            step, accepted = "start", (durable.escalation_id, durable.agent_id, durable.offer_id)
        elif durable.started_at is None:
            step = "reopen"
        elif takeover.room_id is None:
            step = "end"
        else:  # an open room: what may not have reached it before the stop goes again
            resend += [
                relay(takeover, seq, line, resent=True)
                for seq, line in durable.relays
                if line.at >= since
            ]
            if durable.started_at >= since:
                resend.append(
                    ResolveOffer(durable.offer_id, durable.agent_id, "accepted", durable.room_name)
                )
    answer = None
    last = s.events[-1] if s.events else None
    if s.unanswered and last is not None and last.type == "customer_message":
        customer_line = TranscriptLine(
            "customer", s.customer_id, "", last.text or "", last.at
        )  # only its text matters in bot mode
        answer = (last.seq, customer_line)
    return SessionResume(
        resend=tuple(resend),
        takeover=step,
        accepted=accepted,
        transcript_lines=(durable.transcript_lines or 0) if durable is not None else 0,
        owes_no_agent=s.owes_no_agent,
        answer=answer,
    )


def _escalation(ctx: DomainContext, e: OpenEscalation, clock: _Clock) -> EscalationActor | None:
    session = ctx.sessions.get(e.session_id)
    if session is None or session.escalation_id != e.escalation_id:
        return None  # only a repaired journal can lose its session: nothing to resume
    offers = tuple(
        Offer(
            o.offer_id,
            o.agent_id,
            made_at=clock(o.made_at),
            deadline=clock(o.expires_at),
            outcome=o.outcome,
            ended_at=None if o.ended_at is None else clock(o.ended_at),
        )
        for o in e.offers
    )
    state = EscalationState(
        e.escalation_id,
        since=clock(e.started_at),
        attempt=len(offers),
        offers=offers,
        excluded=frozenset(o.agent_id for o in e.offers if o.outcome in ("ignored", "missed")),
    )
    if (accepted := e.accepted) is not None:
        state = replace(
            state, phase="done", agent_id=accepted.agent_id, outcome="accepted", reason="accepted"
        )
    elif (pending := e.pending) is not None:
        state = replace(state, phase="offered", agent_id=pending.agent_id)
    actor = EscalationActor(
        ctx,
        escalation_id=e.escalation_id,
        session_id=e.session_id,
        session=session.mailbox,
        customer=session.customer,
        restored=state,
    )
    ctx.escalations[e.escalation_id] = actor
    for o in e.offers:
        ctx.offers[o.offer_id] = actor
    if session.closed:  # the customer left: the escalation is cancelled once it runs
        tell_nowait(actor.mailbox, CancelEscalation("customer_left"))
    return actor
