"""The records the durable state is made of: customers, sessions, escalations, offers,
takeovers and agents as the journal's facts leave them, and how many of each kind are kept.

Owns the plain mutable dataclasses `actors.durable_state.DurableState` folds facts into (and
`actors.state_codec` writes to snapshots). They hold epoch seconds, never trio time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from actors.facts import EscalationTrigger, TakeoverEndedBy
from actors.messages import CustomerEvent
from actors.ports import AgentProfile, OfferOutcome, TranscriptLine
from actors.stats import AgentTally

__all__ = [
    "BOT_ID",
    "BOT_NAME",
    "KEEP_ENDED_OFFERS",
    "KEEP_FINISHED",
    "KEEP_LEADS",
    "KEEP_RECENT",
    "KEEP_RELAYS",
    "KEEP_SEEN",
    "AgentState",
    "ClosedRoom",
    "CustomerState",
    "EndedOffer",
    "OfferState",
    "OpenEscalation",
    "SessionState",
    "TakeoverState",
    "recent_offers",
    "recent_rooms",
]

BOT_ID = "bot"
BOT_NAME = "Bot"
KEEP_FINISHED = 10_000  # as the domain's EscalationLog
KEEP_ENDED_OFFERS = 10_000  # as the domain's EndedOffers
KEEP_RECENT = 1_000  # ended offers and closed rooms a restart may tell Slack about again
KEEP_SEEN = 256  # Slack message ids per takeover, as `actors.takeover`
KEEP_RELAYS = 256  # customer lines relayed per takeover
KEEP_LEADS = 10_000  # as the domain's LeadBook


@dataclass(slots=True)
class CustomerState:
    customer_id: str
    name: str = ""
    email: str = ""
    lines: list[TranscriptLine] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return self.name or f"Customer {self.customer_id}"


@dataclass(slots=True)
class OfferState:
    offer_id: str
    agent_id: str
    made_at: float
    expires_at: float
    outcome: OfferOutcome | None = None
    ended_at: float | None = None


@dataclass(slots=True)
class OpenEscalation:
    escalation_id: str
    session_id: str
    customer_id: str
    trigger: EscalationTrigger
    started_at: float
    offers: list[OfferState] = field(default_factory=list)

    @property
    def pending(self) -> OfferState | None:
        last = self.offers[-1] if self.offers else None
        return last if last is not None and last.outcome is None else None

    @property
    def accepted(self) -> OfferState | None:
        last = self.offers[-1] if self.offers else None
        return last if last is not None and last.outcome == "accepted" else None


@dataclass(slots=True)
class TakeoverState:
    """An accepted escalation's takeover: `takeover_id` and `transcript_lines` once the room was
    requested, `room_id` once it is open (`started_at` set: TakeoverStarted was recorded);
    `last_heard`: when the room's latest message reached the customer."""

    escalation_id: str
    agent_id: str
    offer_id: str
    accepted_at: float
    takeover_id: str | None = None
    transcript_lines: int | None = None
    started_at: float | None = None
    room_id: str | None = None
    room_name: str | None = None
    profile: AgentProfile | None = None
    responded: bool = False
    last_heard: float | None = None
    seen: deque[str] = field(default_factory=lambda: deque(maxlen=KEEP_SEEN))
    relays: deque[tuple[int, TranscriptLine]] = field(
        default_factory=lambda: deque(maxlen=KEEP_RELAYS)
    )

    @property
    def agent_profile(self) -> AgentProfile:
        return self.profile or AgentProfile(self.agent_id, self.agent_id)


@dataclass(slots=True)
class SessionState:
    """`unanswered`: the last customer line in bot mode has had no answer yet;
    `owes_no_agent`: the escalation was exhausted and the customer not told yet."""

    session_id: str
    customer_id: str
    token_digest: str
    started_at: float
    events: list[CustomerEvent] = field(default_factory=list)
    closed: bool = False
    escalation_id: str | None = None
    still_looking_sent: bool = False
    takeover: TakeoverState | None = None
    unanswered: bool = False
    owes_no_agent: bool = False

    @property
    def in_bot_mode(self) -> bool:
        return not self.closed and self.escalation_id is None and self.takeover is None


@dataclass(slots=True)
class AgentState:
    """`idle_since`: when their last offer ended; `profile`: as the latest takeover showed it."""

    tally: AgentTally = field(default_factory=AgentTally)
    load: int = 0
    idle_since: float | None = None
    profile: AgentProfile | None = None


@dataclass(frozen=True, slots=True)
class EndedOffer:
    offer_id: str
    agent_id: str
    outcome: OfferOutcome
    at: float


@dataclass(frozen=True, slots=True)
class ClosedRoom:
    takeover_id: str
    room_id: str
    by: TakeoverEndedBy
    at: float


def recent_offers() -> deque[EndedOffer]:
    return deque(maxlen=KEEP_RECENT)


def recent_rooms() -> deque[ClosedRoom]:
    return deque(maxlen=KEEP_RECENT)
