"""takeover's domain: the actors that route escalations, and the ports around them.

The public face is re-exported here: the facade (`Domain`), its errors, the Slack port's commands
and facts (`actors.ports`), the durable facts and their sink (`actors.facts`), and the customer
port's values. Everything else is internal to the package. `actors/` imports nothing from
`transport/`, `emulator/` or `loadtest/`.
"""

from actors.domain import Domain
from actors.errors import DomainError, DomainStopped, InvalidInput, SessionClosed, UnknownSession
from actors.facts import Fact, FactSink, MemoryFactSink
from actors.messages import CustomerEvent, EventType, SessionOpened
from actors.ports import (
    AgentProfile,
    CloseRoom,
    ConfirmPresence,
    EndTakeoverRequested,
    FetchAgentProfile,
    OfferAnswered,
    OfferView,
    OpenRoom,
    PostOffer,
    PresenceChanged,
    RelayToRoom,
    ResolveOffer,
    RoomMessagePosted,
    RoomOpened,
    SlackCommand,
    SlackFact,
    TellTooLate,
    TranscriptLine,
)
from actors.runtime import ActorStopped, Reply
from actors.stats import AgentStats, DomainStats, EscalationStats, OfferStats

__all__ = [
    "ActorStopped",
    "AgentProfile",
    "AgentStats",
    "CloseRoom",
    "ConfirmPresence",
    "CustomerEvent",
    "Domain",
    "DomainError",
    "DomainStats",
    "DomainStopped",
    "EndTakeoverRequested",
    "EscalationStats",
    "EventType",
    "Fact",
    "FactSink",
    "FetchAgentProfile",
    "InvalidInput",
    "MemoryFactSink",
    "OfferAnswered",
    "OfferStats",
    "OfferView",
    "OpenRoom",
    "PostOffer",
    "PresenceChanged",
    "RelayToRoom",
    "Reply",
    "ResolveOffer",
    "RoomMessagePosted",
    "RoomOpened",
    "SessionClosed",
    "SessionOpened",
    "SlackCommand",
    "SlackFact",
    "TellTooLate",
    "TranscriptLine",
    "UnknownSession",
]
