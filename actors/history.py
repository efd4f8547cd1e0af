"""Read models over the durable facts: the escalation history and the durations they measure.

Owns `EscalationHistory`, an observer for `actors.fact_tap.FactTap`. It folds the escalation
facts (`EscalationStarted`, `OfferMade`, `OfferEnded`, `EscalationEnded`) into one record per
escalation, the latest `keep` of them: when it started and on what trigger, which agents were
available at that moment, its offers in order with outcome and times, and how it ended (handled
by whom, nobody accepted, nobody available, closed hours, cancelled). It also measures, from the
facts' own times, the time to accept (offer made -> accepted) and the relay latency of agent
messages (Slack's message timestamp -> the customer's event). All times are epoch seconds.

Availability is read from the routing view (the `available` callable) when the start fact is
seen; the facts do not carry it, so escalations folded from a replay show `available: None`.
Observing never waits and never raises on a fact it does not know about.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from actors.facts import (
    AgentMessaged,
    EscalationEnded,
    EscalationOutcome,
    EscalationStarted,
    Fact,
    OfferEnded,
    OfferMade,
)
from actors.histogram import ACCEPT_BOUNDS, RELAY_BOUNDS, Histogram, HistogramSnapshot
from actors.ports import OfferOutcome

__all__ = [
    "EscalationHistory",
    "EscalationRecord",
    "HistoryStatistics",
    "OfferRecord",
    "Result",
]

_log = structlog.get_logger("actors.history")

Result = Literal[
    "searching", "handled", "nobody_accepted", "nobody_available", "closed_hours", "cancelled"
]


@dataclass(frozen=True, slots=True)
class OfferRecord:
    offer_id: str
    agent_id: str
    made_at: float
    expires_at: float
    outcome: OfferOutcome | None  # None while pending
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class EscalationRecord:
    """`available`: the agents available when it started (None: unknown, e.g. replayed)."""

    escalation_id: str
    session_id: str
    customer_id: str
    trigger: str
    started_at: float
    available: tuple[str, ...] | None
    offers: tuple[OfferRecord, ...]
    outcome: EscalationOutcome | None  # None while searching
    reason: str
    handled_by: str | None
    ended_at: float | None
    waited_s: float

    @property
    def result(self) -> Result:
        match self.outcome:
            case None:
                return "searching"
            case "accepted":
                return "handled"
            case "closed":
                return "closed_hours"
            case "cancelled":
                return "cancelled"
            case "exhausted":
                return (
                    "nobody_available" if self.reason == "nobody_available" else "nobody_accepted"
                )


@dataclass(frozen=True, slots=True)
class HistoryStatistics:
    kept: int
    started: int
    time_to_accept: HistogramSnapshot
    relay_to_customer: HistogramSnapshot


class _Entry:
    __slots__ = ("available", "ended", "offers", "start")

    def __init__(self, start: EscalationStarted, available: tuple[str, ...] | None) -> None:
        self.start = start
        self.available = available
        self.offers: list[OfferRecord] = []
        self.ended: EscalationEnded | None = None

    def record(self) -> EscalationRecord:
        s, e = self.start, self.ended
        return EscalationRecord(
            escalation_id=s.escalation_id,
            session_id=s.session_id,
            customer_id=s.customer_id,
            trigger=s.trigger,
            started_at=s.at,
            available=self.available,
            offers=tuple(self.offers),
            outcome=e.outcome if e else None,
            reason=e.reason if e else "",
            handled_by=e.agent_id if e and e.outcome == "accepted" else None,
            ended_at=e.at if e else None,
            waited_s=e.waited_s if e else 0.0,
        )


class EscalationHistory:
    """Observe facts with `observe`; read with `since` and `statistics`."""

    def __init__(
        self,
        *,
        available: Callable[[], tuple[str, ...]] | None = None,
        keep: int = 10_000,
    ) -> None:
        if keep < 1:
            raise ValueError("keep at least one escalation")
        self._available = available
        self._keep = keep
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._started = 0
        self._to_accept = Histogram(ACCEPT_BOUNDS)
        self._relay = Histogram(RELAY_BOUNDS)

    def observe(self, fact: Fact) -> None:
        match fact:
            case EscalationStarted(escalation_id=eid):
                self._started += 1
                self._entries[eid] = _Entry(fact, self._available_now())
                self._entries.move_to_end(eid)
                while len(self._entries) > self._keep:
                    self._entries.popitem(last=False)
            case OfferMade(offer_id, eid, agent_id, at, expires_at):
                entry = self._entries.get(eid)
                if entry is not None:
                    entry.offers.append(OfferRecord(offer_id, agent_id, at, expires_at, None, None))
            case OfferEnded(offer_id, eid, _, outcome, at):
                self._offer_ended(eid, offer_id, outcome, at)
            case EscalationEnded(escalation_id=eid):
                entry = self._entries.get(eid)
                if entry is not None:
                    entry.ended = fact
            case AgentMessaged(message_id=message_id, at=at):
                posted = _slack_ts(message_id)
                if posted is not None:
                    self._relay.observe(at - posted)
            case _:
                pass

    def _available_now(self) -> tuple[str, ...] | None:
        if self._available is None:
            return None
        try:
            return tuple(self._available())
        except Exception:  # a read model must not fail the fact's recording
            _log.exception("availability_unreadable")
            return None

    def _offer_ended(self, eid: str, offer_id: str, outcome: OfferOutcome, at: float) -> None:
        entry = self._entries.get(eid)
        if entry is None:
            return
        for i, offer in enumerate(entry.offers):
            if offer.offer_id == offer_id:
                if outcome == "accepted":
                    self._to_accept.observe(at - offer.made_at)
                entry.offers[i] = OfferRecord(
                    offer_id, offer.agent_id, offer.made_at, offer.expires_at, outcome, at
                )
                return

    def since(self, since: float, limit: int = 1_000) -> tuple[list[EscalationRecord], bool]:
        """The escalations started at or after `since` (epoch seconds), oldest first, at most
        `limit`; and whether more were left out."""
        out: list[EscalationRecord] = []
        for entry in self._entries.values():
            if entry.start.at >= since:
                if len(out) == limit:
                    return out, True
                out.append(entry.record())
        return out, False

    def get(self, escalation_id: str) -> EscalationRecord | None:
        entry = self._entries.get(escalation_id)
        return entry.record() if entry else None

    def statistics(self) -> HistoryStatistics:
        return HistoryStatistics(
            kept=len(self._entries),
            started=self._started,
            time_to_accept=self._to_accept.snapshot(),
            relay_to_customer=self._relay.snapshot(),
        )


def _slack_ts(message_id: str) -> float | None:
    """The Slack `ts` (epoch seconds) at the end of a room message id `<channel>:<ts>`."""
    _, _, ts = message_id.rpartition(":")
    try:
        value = float(ts)
    except ValueError:
        return None
    return value if value == value and value > 0 else None
