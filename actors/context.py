"""What the domain's actors share: their dependencies and the domain's address book.

Owns `DomainContext` (built once by `actors.domain.Domain` and passed to every actor's
constructor: no module-level state), `CustomerRecord` (a customer's transcript across
sessions), `new_id`, the bounded set of ended offers used to answer clicks that come too late,
and `UnroutedRoomFacts`: what rooms the domain does not know yet said meanwhile.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
import trio

from actors.bot import Bot
from actors.errors import DomainStopped
from actors.facts import FactSink
from actors.leads import LeadBook
from actors.messages import AgentMsg, DispatcherMsg
from actors.ports import EndTakeoverRequested, RoomMessagePosted, SlackCommand, TranscriptLine
from actors.settings import BotSettings
from actors.stats import EscalationLog

if TYPE_CHECKING:
    from actors.escalation import EscalationActor
    from actors.session import SessionActor

__all__ = ["CustomerRecord", "DomainContext", "EndedOffers", "UnroutedRoomFacts", "new_id"]

EXCERPT_LINES = 5

_log = structlog.get_logger("actors.context")
RoomFact = RoomMessagePosted | EndTakeoverRequested


def new_id(prefix: str) -> str:
    """A unique, unguessable id such as `e_3f9a0c1b2d4e5f60`."""
    return f"{prefix}_{secrets.token_hex(8)}"


class CustomerRecord:
    """One customer: contact details and the whole transcript, kept across sessions."""

    __slots__ = ("customer_id", "email", "lines", "name")

    def __init__(self, customer_id: str, name: str = "", email: str = "") -> None:
        self.customer_id = customer_id
        self.name = name
        self.email = email
        self.lines: list[TranscriptLine] = []

    @property
    def display_name(self) -> str:
        return self.name or f"Customer {self.customer_id}"

    def last_customer_message(self) -> str:
        for line in reversed(self.lines):
            if line.speaker == "customer":
                return line.text
        return ""

    def excerpt(self) -> tuple[TranscriptLine, ...]:
        return tuple(self.lines[-EXCERPT_LINES:])


class EndedOffers:
    """Offer id -> agent id of offers whose escalation has ended, the latest `keep` of them."""

    __slots__ = ("_keep", "_offers")

    def __init__(self, keep: int = 10_000) -> None:
        self._keep = keep
        self._offers: OrderedDict[str, str] = OrderedDict()

    def add(self, offer_id: str, agent_id: str) -> None:
        self._offers[offer_id] = agent_id
        while len(self._offers) > self._keep:
            self._offers.popitem(last=False)

    def __contains__(self, offer_id: object) -> bool:
        return offer_id in self._offers


class UnroutedRoomFacts:
    """Room messages and end requests for rooms not routed to a session yet, the latest `rooms`
    rooms with at most `per_room` facts each, oldest rooms dropped first (logged).

    After a restart, a room whose opening was cut short is known to Slack, and its agent may
    already be talking in it, before the resumed opening routes it to its session: what the
    room says meanwhile waits here and is taken by the session when the room is routed."""

    __slots__ = ("_facts", "_per_room", "_rooms")

    def __init__(self, rooms: int = 256, per_room: int = 64) -> None:
        self._rooms, self._per_room = rooms, per_room
        self._facts: OrderedDict[str, list[RoomFact]] = OrderedDict()

    def hold(self, room_id: str, fact: RoomFact) -> bool:
        """Keep `fact`; False when its room already holds `per_room` facts (then dropped)."""
        held = self._facts.setdefault(room_id, [])
        if len(held) >= self._per_room:
            return False
        held.append(fact)
        while len(self._facts) > self._rooms:
            old, facts = self._facts.popitem(last=False)
            _log.warning("unrouted_room_facts_dropped", room=old, count=len(facts))
        return True

    def take(self, room_id: str) -> list[RoomFact]:
        return self._facts.pop(room_id, [])

    def __len__(self) -> int:
        return sum(len(facts) for facts in self._facts.values())


@dataclass(slots=True, kw_only=True)
class DomainContext:
    """Dependencies and indexes shared by the domain's actors (one per Domain)."""

    sink: FactSink
    slack: trio.MemorySendChannel[SlackCommand]
    dispatcher: trio.MemorySendChannel[DispatcherMsg]
    agents: Mapping[str, trio.MemorySendChannel[AgentMsg]]
    bot: Bot
    texts: BotSettings
    is_open: Callable[[], bool]
    wall_clock: Callable[[], float]
    offer_timeout_s: float
    slack_timeout_s: float
    room_timeout_s: float
    shutdown_grace_s: float
    greeting: str = ""
    nursery: trio.Nursery | None = None
    open_sessions: int = 0
    customers: dict[str, CustomerRecord] = field(default_factory=dict)
    sessions: dict[str, SessionActor] = field(default_factory=dict)
    escalations: dict[str, EscalationActor] = field(default_factory=dict)
    offers: dict[str, EscalationActor] = field(default_factory=dict)
    ended_offers: EndedOffers = field(default_factory=EndedOffers)
    rooms: dict[str, SessionActor] = field(default_factory=dict)
    escalation_log: EscalationLog = field(default_factory=EscalationLog)
    next_opening: Callable[[], dt.datetime | None] = lambda: None
    """When the team opens next (now when open; None: never or unknown), for leads."""
    leads: LeadBook = field(default_factory=LeadBook)
    unrouted: UnroutedRoomFacts = field(default_factory=UnroutedRoomFacts)
    presence_settled: trio.Event = field(default_factory=trio.Event)
    """Set once every agent's presence has been heard after a start (or a grace period ran
    out): escalations resumed after a restart wait for it before asking for an agent."""

    def spawner(self) -> trio.Nursery:
        if self.nursery is None:
            raise DomainStopped("the domain is not running")
        return self.nursery
