"""Durable facts: what happened, in the order it happened, as the journal records it.

Owns the `Fact` union, the `FactSink` port every actor records through, and `MemoryFactSink` for
tests. An actor records a fact before anything that depends on it becomes visible (the customer's
202, the event the widget sees, the Slack post): `await sink.record(fact)` returns once the fact
is durable. Times (`at`, `expires_at`) are UNIX epoch seconds from the domain's wall clock.

Facts carry what a replay needs to rebuild sessions, transcripts, agent stats and open takeovers.
Every customer event is backed by exactly one fact carrying its `seq`: CustomerMessaged,
BotReplied (bot_message, searching, no_agent_available), TakeoverStarted (agent_joined),
AgentMessaged, TakeoverEnded (agent_left) and SessionEnded (closed). Session tokens are never
recorded, only their SHA-256 digest. `RoomRequested` marks the moment a session asked Slack for
the room: the transcript it sent is the customer's first `transcript_lines` lines, and every
customer line recorded after it is relayed to the room (so a restart knows which is which).
The journal's encoding of these facts is `actors.fact_codec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from actors.ports import AgentProfile, OfferOutcome, TranscriptLine

__all__ = [
    "AgentMessaged",
    "BotReplied",
    "CustomerMessaged",
    "EscalationEnded",
    "EscalationOutcome",
    "EscalationStarted",
    "EscalationTrigger",
    "Fact",
    "FactSink",
    "LeadLeft",
    "MemoryFactSink",
    "OfferEnded",
    "OfferMade",
    "RoomRequested",
    "SessionEnded",
    "SessionStarted",
    "TakeoverEnded",
    "TakeoverEndedBy",
    "TakeoverStarted",
]

EscalationOutcome = Literal["accepted", "exhausted", "cancelled", "closed"]
EscalationTrigger = Literal["asked", "low_confidence", "live_chat_first"]
TakeoverEndedBy = Literal["agent", "customer", "failed", "shutdown", "idle"]


@dataclass(frozen=True, slots=True)
class SessionStarted:
    session_id: str
    customer_id: str
    name: str
    email: str
    token_digest: str
    at: float


@dataclass(frozen=True, slots=True)
class CustomerMessaged:
    session_id: str
    customer_id: str
    seq: int
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class BotReplied:
    """A line the bot said to the customer: an answer or the still-looking text (bot_message),
    the searching text (searching), or the nobody-available / closed-hours text."""

    session_id: str
    customer_id: str
    seq: int
    kind: Literal["bot_message", "searching", "no_agent_available"]
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class EscalationStarted:
    escalation_id: str
    session_id: str
    customer_id: str
    trigger: EscalationTrigger
    at: float


@dataclass(frozen=True, slots=True)
class OfferMade:
    offer_id: str
    escalation_id: str
    agent_id: str
    at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class OfferEnded:
    """The one outcome of an offer."""

    offer_id: str
    escalation_id: str
    agent_id: str
    outcome: OfferOutcome
    at: float


@dataclass(frozen=True, slots=True)
class EscalationEnded:
    """`reason`: accepted, nobody_available / all_tried / max_tries (exhausted),
    customer_left (cancelled), closed_hours (closed)."""

    escalation_id: str
    session_id: str
    outcome: EscalationOutcome
    reason: str
    agent_id: str | None
    waited_s: float
    at: float


@dataclass(frozen=True, slots=True)
class RoomRequested:
    """The session of an accepted escalation asked Slack for the room (`OpenRoom`), sending the
    customer's first `transcript_lines` transcript lines; its later customer lines are relays."""

    takeover_id: str
    escalation_id: str
    session_id: str
    agent_id: str
    offer_id: str
    transcript_lines: int
    at: float


@dataclass(frozen=True, slots=True)
class TakeoverStarted:
    """The room is open (room_id None: it could not be, or the customer had left)."""

    takeover_id: str
    escalation_id: str
    session_id: str
    customer_id: str
    agent: AgentProfile
    room_id: str | None
    room_name: str | None
    seq: int | None
    at: float


@dataclass(frozen=True, slots=True)
class AgentMessaged:
    takeover_id: str
    session_id: str
    customer_id: str
    agent_id: str
    message_id: str
    seq: int
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class TakeoverEnded:
    """`by`: agent (command or button), customer (closed the chat), failed (no room), shutdown,
    idle (no message for `routing.idle_takeover_end_s`).
    `text`: what the customer was told (the agent_left event, when `seq` is set)."""

    takeover_id: str
    session_id: str
    agent_id: str
    by: TakeoverEndedBy
    seq: int | None
    at: float
    text: str | None = None


@dataclass(frozen=True, slots=True)
class SessionEnded:
    session_id: str
    seq: int
    at: float


@dataclass(frozen=True, slots=True)
class LeadLeft:
    """The customer left their contact details and question (nobody could help right now);
    `transcript` is the customer's latest transcript lines at that moment. The customer's
    confirmation is a `BotReplied` recorded after it."""

    lead_id: str
    session_id: str
    customer_id: str
    name: str
    email: str
    question: str
    transcript: tuple[TranscriptLine, ...]
    at: float


Fact = (
    SessionStarted
    | CustomerMessaged
    | BotReplied
    | EscalationStarted
    | OfferMade
    | OfferEnded
    | EscalationEnded
    | RoomRequested
    | TakeoverStarted
    | AgentMessaged
    | TakeoverEnded
    | SessionEnded
    | LeadLeft
)


F = TypeVar("F")


class FactSink(Protocol):
    """Where facts become durable (the journal). `record` returns once `fact` is durable."""

    async def record(self, fact: Fact) -> None: ...


class MemoryFactSink:
    """Keeps facts in a list, in the order recorded; durable as soon as recorded."""

    __slots__ = ("facts",)

    def __init__(self) -> None:
        self.facts: list[Fact] = []

    async def record(self, fact: Fact) -> None:
        self.facts.append(fact)

    def of_type(self, kind: type[F]) -> list[F]:
        return [f for f in self.facts if isinstance(f, kind)]
