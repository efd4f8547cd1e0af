"""Fixed-bucket histograms of durations, as counters the metrics endpoint reads at scrape time.

Owns `Histogram` (observe a value: one bisect and two additions, no allocation) and its frozen
`HistogramSnapshot` (bucket counts, count, sum; `cumulative()` in Prometheus' `le` form;
`merged()` to add up several, e.g. one per agent). Bucket bounds are upper bounds in seconds; a
last, unbounded bucket takes everything above. The bound sets below are the project's standard
ones, so histograms of one kind can always be merged.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

__all__ = [
    "ACCEPT_BOUNDS",
    "FSYNC_BOUNDS",
    "RELAY_BOUNDS",
    "Histogram",
    "HistogramSnapshot",
]

ACCEPT_BOUNDS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0)
"""Time to accept an offer: offers last `routing.offer_timeout_s`, usually 30 to 60 s."""
RELAY_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Relay latency of one message between the customer and the room."""
FSYNC_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""One journal write with its fsync."""


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """`counts[i]` values fell at or below `bounds[i]` (and above `bounds[i-1]`); the last of
    `counts` (one more than `bounds`) counts the values above every bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    sum: float

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> HistogramSnapshot:
        return cls(bounds, (0,) * (len(bounds) + 1), 0, 0.0)

    def cumulative(self) -> list[tuple[float, int]]:
        """`(le, values <= le)` for every bound, then `(inf, count)`."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((bound, running))
        out.append((math.inf, self.count))
        return out

    def merged(self, other: HistogramSnapshot) -> HistogramSnapshot:
        if other.bounds != self.bounds:
            raise ValueError("histograms with different buckets cannot be merged")
        counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return HistogramSnapshot(
            self.bounds, counts, self.count + other.count, self.sum + other.sum
        )


class Histogram:
    """Counts observed values per bucket; cheap enough for every message."""

    __slots__ = ("_bounds", "_counts", "_sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        if not bounds or list(bounds) != sorted(set(bounds)) or bounds[0] < 0:
            raise ValueError("bounds must be ascending, distinct and not negative")
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        """Count one value; negative values (clock skew) count as zero, NaN is ignored."""
        if value != value:  # NaN
            return
        value = max(0.0, value)
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        counts = tuple(self._counts)
        return HistogramSnapshot(self._bounds, counts, sum(counts), self._sum)
