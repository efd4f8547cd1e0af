"""The durable state: what the journal's facts add up to, folded one fact at a time.

Owns `DurableState` and its parts. `apply(fact)` is a pure fold, with no clock and no I/O: the
same facts in the same order always give the same state, which is what makes "snapshot + replay
the rest" equal to "replay from the start". The journal sink applies every fact as it appends
it (so the state always matches the journal's last LSN, and a snapshot is just this state
encoded, see `actors.state_codec`); at startup `actors.restore` folds the records after the
snapshot and builds the domain's actors from the result.

What it keeps: customers with their whole transcript; sessions with their token digest, their
customer events (with seqs) and where they are (bot, searching, takeover, closed); the open
escalations with their offers; the takeovers (accepted, room requested, room open) with the
room, the Slack message ids already relayed to the customer and the customer lines relayed to
the room; per agent the stats tally, the load and when their last offer ended; the latest
finished escalations and the counts by outcome; the latest ended offers and closed rooms (a
restart tells Slack again what may not have reached it). Times are the facts' epoch seconds.

The records it is made of are in `actors.durable_records`.

Facts the state cannot place (a session it never saw, which only a repaired journal can
produce) are counted in `anomalies` and logged, never raised: replay must not stop on them.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import assert_never

import structlog

from actors.durable_records import (
    BOT_ID,
    BOT_NAME,
    KEEP_ENDED_OFFERS,
    KEEP_FINISHED,
    KEEP_LEADS,
    AgentState,
    ClosedRoom,
    CustomerState,
    EndedOffer,
    OfferState,
    OpenEscalation,
    SessionState,
    TakeoverState,
    recent_offers,
    recent_rooms,
)
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
from actors.leads import Lead, lead_of
from actors.messages import CustomerEvent, EventType
from actors.ports import AgentProfile, TranscriptLine
from actors.stats import EscalationStats, OfferStats

__all__ = [
    "AgentState",
    "ClosedRoom",
    "CustomerState",
    "DurableState",
    "EndedOffer",
    "OfferState",
    "OpenEscalation",
    "SessionState",
    "TakeoverState",
]

_log = structlog.get_logger("actors.durable_state")


@dataclass(slots=True, eq=False)
class DurableState:
    customers: dict[str, CustomerState] = field(default_factory=dict)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    escalations: dict[str, OpenEscalation] = field(default_factory=dict)
    rooms: dict[str, str] = field(default_factory=dict)  # open room id -> session id
    agents: dict[str, AgentState] = field(default_factory=dict)
    finished: deque[EscalationStats] = field(default_factory=lambda: deque(maxlen=KEEP_FINISHED))
    counts: dict[str, int] = field(
        default_factory=lambda: {"accepted": 0, "exhausted": 0, "cancelled": 0, "closed": 0}
    )
    ended_offers: OrderedDict[str, str] = field(default_factory=OrderedDict)
    recent_offers: deque[EndedOffer] = field(default_factory=recent_offers)
    closed_rooms: deque[ClosedRoom] = field(default_factory=recent_rooms)
    leads: deque[Lead] = field(default_factory=lambda: deque(maxlen=KEEP_LEADS))
    last_at: float = 0.0
    facts: int = 0
    anomalies: int = 0

    @property
    def open_sessions(self) -> int:
        return sum(1 for s in self.sessions.values() if not s.closed)

    def agent(self, agent_id: str) -> AgentState:
        state = self.agents.get(agent_id)
        if state is None:
            state = self.agents[agent_id] = AgentState()
        return state

    # --- the fold -----------------------------------------------------------------------------

    def apply(self, fact: Fact) -> None:
        """Fold one fact in."""
        self.facts += 1
        self.last_at = max(self.last_at, fact.at)
        match fact:
            case SessionStarted():
                self._session_started(fact)
            case CustomerMessaged():
                self._customer_messaged(fact)
            case BotReplied():
                self._bot_replied(fact)
            case EscalationStarted():
                self._escalation_started(fact)
            case OfferMade():
                self._offer_made(fact)
            case OfferEnded():
                self._offer_ended(fact)
            case EscalationEnded():
                self._escalation_ended(fact)
            case RoomRequested():
                self._room_requested(fact)
            case TakeoverStarted():
                self._takeover_started(fact)
            case AgentMessaged():
                self._agent_messaged(fact)
            case TakeoverEnded():
                self._takeover_ended(fact)
            case SessionEnded():
                session = self._session(fact.session_id, fact)
                if session is not None:
                    self._event(session, fact.seq, "closed", None, None, fact.at)
                    session.closed = True
            case LeadLeft():
                self.leads.append(lead_of(fact))  # its transcript is in the journal only
            case _:
                assert_never(fact)

    def _anomaly(self, what: str, fact: Fact) -> None:
        self.anomalies += 1
        _log.warning("durable_state_anomaly", problem=what, fact=type(fact).__name__)

    def _session(self, session_id: str, fact: Fact) -> SessionState | None:
        session = self.sessions.get(session_id)
        if session is None:
            self._anomaly("unknown session", fact)
        return session

    def _event(
        self,
        session: SessionState,
        seq: int,
        kind: EventType,
        text: str | None,
        agent: AgentProfile | None,
        at: float,
    ) -> None:
        expected = len(session.events) + 1
        if seq != expected:  # only a repaired journal can skip one: keep the seqs contiguous
            _log.warning("durable_state_seq_gap", session=session.session_id, seq=seq)
            self.anomalies += 1
        session.events.append(CustomerEvent(expected, kind, text, agent, at))

    def _line(self, session: SessionState, line: TranscriptLine) -> None:
        customer = self.customers.get(session.customer_id)
        if customer is not None:
            customer.lines.append(line)

    def _session_started(self, fact: SessionStarted) -> None:
        customer = self.customers.get(fact.customer_id)
        if customer is None:
            customer = self.customers[fact.customer_id] = CustomerState(fact.customer_id)
        customer.name, customer.email = fact.name, fact.email
        self.sessions[fact.session_id] = SessionState(
            fact.session_id, fact.customer_id, fact.token_digest, fact.at
        )

    def _customer_messaged(self, fact: CustomerMessaged) -> None:
        session = self._session(fact.session_id, fact)
        if session is None:
            return
        customer = self.customers[session.customer_id]
        line = TranscriptLine(
            "customer", customer.customer_id, customer.display_name, fact.text, fact.at
        )
        customer.lines.append(line)
        self._event(session, fact.seq, "customer_message", fact.text, None, fact.at)
        tk = session.takeover
        if tk is not None and tk.transcript_lines is not None:
            tk.relays.append((fact.seq, line))
        elif session.in_bot_mode:
            session.unanswered = True

    def _bot_replied(self, fact: BotReplied) -> None:
        session = self._session(fact.session_id, fact)
        if session is None:
            return
        self._line(session, TranscriptLine("bot", BOT_ID, BOT_NAME, fact.text, fact.at))
        self._event(session, fact.seq, fact.kind, fact.text, None, fact.at)
        session.unanswered = False
        if fact.kind == "bot_message" and session.escalation_id is not None:
            session.still_looking_sent = True
        if fact.kind == "no_agent_available":
            session.owes_no_agent = False

    def _escalation_started(self, fact: EscalationStarted) -> None:
        session = self._session(fact.session_id, fact)
        if session is None:
            return
        session.unanswered = False
        session.escalation_id = fact.escalation_id
        session.still_looking_sent = False
        self.escalations[fact.escalation_id] = OpenEscalation(
            fact.escalation_id, fact.session_id, fact.customer_id, fact.trigger, fact.at
        )

    def _offer_made(self, fact: OfferMade) -> None:
        escalation = self.escalations.get(fact.escalation_id)
        if escalation is None:
            self._anomaly("offer of an unknown escalation", fact)
            return
        escalation.offers.append(OfferState(fact.offer_id, fact.agent_id, fact.at, fact.expires_at))
        self.agent(fact.agent_id).tally.offered += 1

    def _offer_ended(self, fact: OfferEnded) -> None:
        escalation = self.escalations.get(fact.escalation_id)
        offers = escalation.offers if escalation is not None else []
        offer = next((o for o in offers if o.offer_id == fact.offer_id), None)
        if offer is None or offer.outcome is not None:
            self._anomaly("end of an unknown or ended offer", fact)
            return
        offer.outcome, offer.ended_at = fact.outcome, fact.at
        agent = self.agent(fact.agent_id)
        agent.tally.count(fact.outcome, fact.at - offer.made_at)
        agent.idle_since = fact.at
        if fact.outcome == "accepted":
            agent.load += 1
        self.recent_offers.append(EndedOffer(fact.offer_id, fact.agent_id, fact.outcome, fact.at))

    def _escalation_ended(self, fact: EscalationEnded) -> None:
        escalation = self.escalations.pop(fact.escalation_id, None)
        offers = escalation.offers if escalation is not None else []
        self.finished.append(
            EscalationStats(
                fact.escalation_id,
                fact.session_id,
                fact.outcome,
                fact.reason,
                fact.agent_id if fact.outcome == "accepted" else None,
                tuple(
                    OfferStats(
                        o.offer_id,
                        o.agent_id,
                        o.outcome,
                        None if o.ended_at is None else o.ended_at - o.made_at,
                    )
                    for o in offers
                ),
                fact.waited_s,
            )
        )
        self.counts[fact.outcome] = self.counts.get(fact.outcome, 0) + 1
        for offer in offers:
            self.ended_offers[offer.offer_id] = offer.agent_id
            self.ended_offers.move_to_end(offer.offer_id)
        while len(self.ended_offers) > KEEP_ENDED_OFFERS:
            self.ended_offers.popitem(last=False)
        session = self._session(fact.session_id, fact)
        if session is None:
            return
        if session.escalation_id == fact.escalation_id:
            session.escalation_id = None
        accepted = escalation.accepted if escalation is not None else None
        if fact.outcome == "accepted" and accepted is not None:
            session.takeover = TakeoverState(
                fact.escalation_id, accepted.agent_id, accepted.offer_id, fact.at
            )
        elif fact.outcome == "exhausted" and not session.closed:
            session.owes_no_agent = True

    def _takeover(self, session_id: str, fact: Fact) -> tuple[SessionState, TakeoverState] | None:
        session = self._session(session_id, fact)
        if session is None:
            return None
        if session.takeover is None:
            self._anomaly("no takeover in the session", fact)
            return None
        return session, session.takeover

    def _room_requested(self, fact: RoomRequested) -> None:
        found = self._takeover(fact.session_id, fact)
        if found is not None:
            _, tk = found
            tk.takeover_id, tk.transcript_lines = fact.takeover_id, fact.transcript_lines

    def _takeover_started(self, fact: TakeoverStarted) -> None:
        found = self._takeover(fact.session_id, fact)
        if found is None:
            return
        session, tk = found
        tk.takeover_id, tk.profile, tk.started_at = fact.takeover_id, fact.agent, fact.at
        tk.room_id, tk.room_name = fact.room_id, fact.room_name
        self.agent(tk.agent_id).profile = fact.agent
        if fact.room_id is not None:
            self.rooms[fact.room_id] = fact.session_id
        if fact.seq is not None:
            self._event(session, fact.seq, "agent_joined", None, fact.agent, fact.at)

    def _agent_messaged(self, fact: AgentMessaged) -> None:
        found = self._takeover(fact.session_id, fact)
        if found is None:
            return
        session, tk = found
        tk.seen.append(fact.message_id)
        tk.last_heard = fact.at
        if fact.agent_id == tk.agent_id:
            profile = tk.agent_profile
        else:
            profile = AgentProfile(fact.agent_id, fact.agent_id)
        name = profile.display_name or profile.real_name or profile.id
        self._line(session, TranscriptLine("agent", fact.agent_id, name, fact.text, fact.at))
        self._event(session, fact.seq, "agent_message", fact.text, profile, fact.at)
        if fact.agent_id == tk.agent_id and not tk.responded:
            tk.responded = True
            self.agent(tk.agent_id).tally.first_response.append(fact.at - tk.accepted_at)

    def _takeover_ended(self, fact: TakeoverEnded) -> None:
        found = self._takeover(fact.session_id, fact)
        if found is None:
            return
        session, tk = found
        if fact.seq is not None:
            text = fact.text or ""
            self._line(session, TranscriptLine("bot", BOT_ID, BOT_NAME, text, fact.at))
            self._event(session, fact.seq, "agent_left", text, tk.agent_profile, fact.at)
        agent = self.agent(tk.agent_id)
        agent.load = max(0, agent.load - 1)
        agent.tally.ended += 1
        agent.tally.takeover.append(fact.at - tk.accepted_at)
        if tk.room_id is not None:
            self.rooms.pop(tk.room_id, None)
            self.closed_rooms.append(ClosedRoom(fact.takeover_id, tk.room_id, fact.by, fact.at))
        session.takeover = None
