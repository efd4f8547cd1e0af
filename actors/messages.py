"""Messages between the domain's actors, and the customer side's values.

Owns:
- the customer port's values: `SessionOpened`, `CustomerEvent` and its `EventType`s (design §4.3);
- one mailbox union per actor: `SessionMsg`, `EscalationMsg`, `DispatcherMsg`, `AgentMsg`.

Commands are imperative (`RequestAgent`), facts past tense (`OfferFinished`). The Slack port's
commands and facts are in `actors.ports`; the durable facts in `actors.facts`.

Who waits on whom (a cycle would be a deadlock, so there is none): the facade and `deliver` wait
on sessions; sessions wait on the fact sink, the Slack port, the dispatcher and agents;
escalations wait on sessions, the dispatcher, the Slack port and the sink; the dispatcher waits
only on agents; agents wait on nobody. Messages *to* an escalation are always sent with
`tell_nowait` (its mailbox keeps room for them), so nobody waits on an escalation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import trio

from actors.facts import EscalationOutcome
from actors.leads import Lead
from actors.ports import (
    AgentProfile,
    EndTakeoverRequested,
    OfferAnswered,
    OfferOutcome,
    PresenceChanged,
    RoomMessagePosted,
    RoomOpened,
)
from actors.runtime import Reply

__all__ = [
    "AgentMsg",
    "AgentReserved",
    "AgentResponded",
    "AgentWentAway",
    "CancelEscalation",
    "CancelRequest",
    "CloseSession",
    "CustomerEvent",
    "CustomerSays",
    "DispatcherMsg",
    "EscalationFinished",
    "EscalationMsg",
    "EventType",
    "ExhaustReason",
    "GetProfile",
    "LeaveLead",
    "NoAgentLeft",
    "OfferDeadline",
    "OfferFinished",
    "OfferStarted",
    "PresenceConfirmed",
    "ProfileFetched",
    "ReleaseAgent",
    "RequestAgent",
    "SessionMsg",
    "SessionOpened",
    "TakeoverFinished",
    "TakeoverReady",
]

EventType = Literal[
    "customer_message",
    "bot_message",
    "searching",
    "agent_joined",
    "agent_message",
    "agent_left",
    "no_agent_available",
    "closed",
]
ExhaustReason = Literal["nobody_available", "all_tried", "max_tries"]
CancelReason = Literal["customer_left", "shutdown"]


# --- the customer port -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """`token` authenticates the customer for this session; it is shown once and never stored."""

    session_id: str
    customer_id: str
    token: str


@dataclass(frozen=True, slots=True)
class CustomerEvent:
    """One thing the customer sees; `seq` is per session, strictly increasing from 1."""

    seq: int
    type: EventType
    text: str | None
    agent: AgentProfile | None
    at: float


# --- session mailbox ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerSays:
    """Answer: the seq of the customer_message event, once its fact is durable."""

    text: str
    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class CloseSession:
    reply: Reply[None]


@dataclass(frozen=True, slots=True)
class LeaveLead:
    """The customer leaves contact details and a question (already checked by `check_lead`).
    Answer: the `Lead`, once recorded and the customer told when to expect an answer."""

    email: str
    name: str
    question: str
    reply: Reply[Lead]


@dataclass(frozen=True, slots=True)
class EscalationFinished:
    """The session's escalation ended; `agent_id`/`offer_id` name the owner when accepted."""

    escalation_id: str
    outcome: EscalationOutcome
    reason: str
    agent_id: str | None
    offer_id: str | None


@dataclass(frozen=True, slots=True)
class TakeoverReady:
    """The accepted takeover's room is open (`room` None: it could not be opened)."""

    takeover_id: str
    room: RoomOpened | None
    profile: AgentProfile


SessionMsg = (
    CustomerSays
    | CloseSession
    | EscalationFinished
    | TakeoverReady
    | RoomMessagePosted
    | EndTakeoverRequested
    | LeaveLead
)


# --- escalation mailbox ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentReserved:
    """The dispatcher holds `agent_id` for this escalation; confirm presence, then offer."""

    agent_id: str
    waited_s: float


@dataclass(frozen=True, slots=True)
class NoAgentLeft:
    reason: ExhaustReason
    waited_s: float


@dataclass(frozen=True, slots=True)
class PresenceConfirmed:
    """The answer of ConfirmPresence for reservation number `attempt`."""

    attempt: int
    agent_id: str
    active: bool


@dataclass(frozen=True, slots=True)
class OfferDeadline:
    """The offer's timer ran out (`routing.offer_timeout_s` after it was made)."""

    offer_id: str


@dataclass(frozen=True, slots=True)
class AgentWentAway:
    agent_id: str


@dataclass(frozen=True, slots=True)
class CancelEscalation:
    reason: CancelReason


EscalationMsg = (
    AgentReserved
    | NoAgentLeft
    | PresenceConfirmed
    | OfferAnswered
    | OfferDeadline
    | AgentWentAway
    | CancelEscalation
)


# --- dispatcher mailbox (the agent-related ones are forwarded to the agent's actor) -------------


@dataclass(frozen=True, slots=True)
class RequestAgent:
    """Find the next agent of an escalation's chain; answered on `to` with AgentReserved or
    NoAgentLeft. `since` (trio time the escalation started) orders the waiting queue."""

    escalation_id: str
    excluded: frozenset[str]
    tries: int
    since: float
    to: trio.MemorySendChannel[EscalationMsg]


@dataclass(frozen=True, slots=True)
class ReleaseAgent:
    """Give back a reservation that was not used; `active` False when the agent was not there."""

    escalation_id: str
    agent_id: str
    active: bool


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """The escalation no longer wants an agent (it was cancelled while waiting)."""

    escalation_id: str


@dataclass(frozen=True, slots=True)
class OfferStarted:
    escalation_id: str
    offer_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferFinished:
    """An offer's one outcome; `after_s` is the time from offer to outcome."""

    escalation_id: str
    offer_id: str
    agent_id: str
    outcome: OfferOutcome
    after_s: float


@dataclass(frozen=True, slots=True)
class TakeoverFinished:
    """A takeover ended: the agent's load drops by one."""

    agent_id: str
    takeover_id: str
    duration_s: float


DispatcherMsg = (
    RequestAgent
    | ReleaseAgent
    | CancelRequest
    | OfferStarted
    | OfferFinished
    | TakeoverFinished
    | PresenceChanged
)


# --- agent mailbox -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentResponded:
    """The agent's first message after accepting, `after_s` seconds after the accept."""

    agent_id: str
    after_s: float


@dataclass(frozen=True, slots=True)
class GetProfile:
    """Answer: the cached profile, or None when it was never fetched."""

    reply: Reply[AgentProfile | None]


@dataclass(frozen=True, slots=True)
class ProfileFetched:
    profile: AgentProfile


AgentMsg = (
    OfferStarted | OfferFinished | TakeoverFinished | AgentResponded | GetProfile | ProfileFetched
)
