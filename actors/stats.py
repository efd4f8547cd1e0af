"""Stats (design §2.9): per agent, per escalation, and counts by outcome, as frozen records.

Owns the records `Domain.stats()` returns, the per-agent tally the agent actor keeps, and the
bounded log of finished escalations. Durations are trio seconds, measured by the actors.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from actors.facts import EscalationOutcome
from actors.ports import OfferOutcome

__all__ = [
    "AgentStats",
    "AgentTally",
    "DomainStats",
    "EscalationLog",
    "EscalationStats",
    "OfferStats",
    "median",
    "percentile",
]

_SAMPLES = 1_000  # per agent and measure: the latest ones


def median(samples: Iterable[float]) -> float | None:
    values = list(samples)
    return statistics.median(values) if values else None


def percentile(samples: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (p in (0, 100]); None without samples."""
    values = sorted(samples)
    if not values:
        return None
    rank = max(1, math.ceil(p / 100 * len(values)))
    return values[rank - 1]


@dataclass(slots=True)
class AgentTally:
    """What the agent actor counts; `pending` is offered minus the four outcomes."""

    offered: int = 0
    accepted: int = 0
    ignored: int = 0
    missed: int = 0
    withdrawn: int = 0
    ended: int = 0
    to_accept: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    first_response: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    takeover: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))

    def count(self, outcome: OfferOutcome, after_s: float) -> None:
        match outcome:
            case "accepted":
                self.accepted += 1
                self.to_accept.append(after_s)
            case "ignored":
                self.ignored += 1
            case "missed":
                self.missed += 1
            case "withdrawn":
                self.withdrawn += 1

    @property
    def pending(self) -> int:
        return self.offered - self.accepted - self.ignored - self.missed - self.withdrawn


@dataclass(frozen=True, slots=True)
class AgentStats:
    id: str
    name: str
    available: bool
    active: bool
    load: int
    offered: int
    accepted: int
    ignored: int
    missed: int
    withdrawn: int
    pending: int
    ended: int
    time_to_accept_median_s: float | None
    time_to_accept_p90_s: float | None
    first_response_median_s: float | None
    takeover_median_s: float | None


@dataclass(frozen=True, slots=True)
class OfferStats:
    offer_id: str
    agent_id: str
    outcome: OfferOutcome | None  # None while pending
    after_s: float | None


@dataclass(frozen=True, slots=True)
class EscalationStats:
    escalation_id: str
    session_id: str
    outcome: EscalationOutcome | None  # None while searching
    reason: str
    agent_id: str | None
    offers: tuple[OfferStats, ...]
    waited_s: float


@dataclass(frozen=True, slots=True)
class DomainStats:
    """`escalations`: the searching ones and the latest finished ones; `by_outcome` counts every
    escalation since start, with `searching` for those still walking their chain."""

    agents: tuple[AgentStats, ...]
    escalations: tuple[EscalationStats, ...]
    by_outcome: Mapping[str, int]
    sessions_open: int


class EscalationLog:
    """The latest finished escalations (bounded) and counts by outcome since start."""

    __slots__ = ("counts", "finished")

    def __init__(self, keep: int = 10_000) -> None:
        self.finished: deque[EscalationStats] = deque(maxlen=keep)
        self.counts: dict[str, int] = {"accepted": 0, "exhausted": 0, "cancelled": 0, "closed": 0}

    def add(self, record: EscalationStats) -> None:
        assert record.outcome is not None
        self.finished.append(record)
        self.counts[record.outcome] += 1
