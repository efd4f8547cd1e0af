"""Latency and throughput recording: HdrHistograms for the totals, samples for the time series.

Owns `Recorder`: each latency metric has an HdrHistogram (microseconds, 1 µs to 1 hour, three
significant digits: what the summary and the JSON report give) and its raw `(time, seconds)`
samples (what the plot bins into per-interval percentiles). Counters (`count`) give totals and
per-interval rates. Times are trio seconds since the run started (`start`).

Nothing here does I/O; one Recorder per run, written by the simulations, read by the report.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

__all__ = ["COUNTERS", "METRICS", "MetricSummary", "Recorder", "decode_histogram"]

# name -> what it measures (the order of the summary table)
METRICS: dict[str, str] = {
    "escalation_to_offer": "escalation -> first offer posted",
    "offer_to_outcome": "offer -> outcome shown in the DM",
    "customer_to_room": "customer message -> posted in room",
    "agent_to_customer": "agent message -> delivered to customer",
    "bot_reply": "customer message -> bot reply",
    "accept_to_joined": "Accept clicked -> customer told agent joined",
    "missed_lateness": "offer deadline -> DM shows missed",  # deadline = seen + timeout
    "customer_post": "customer POST /messages -> 202",
    "agent_post": "agent chat.postMessage -> ok",
}

COUNTERS: dict[str, str] = {
    "customers_started": "customers arrived",
    "customers_done": "customers finished",
    "escalations": "escalations (asked for a person)",
    "agent_joined": "escalations accepted (agent joined)",
    "no_agent": "escalations exhausted (nobody available)",
    "offers": "offers seen by agents",
    "accepted": "offers accepted",
    "ignored": "offers ignored",
    "missed": "offers missed",
    "withdrawn": "offers withdrawn",
    "too_late": "clicks told too late",
    "customer_messages": "customer messages sent in takeovers",
    "agent_messages": "agent messages sent",
    "relayed_to_room": "customer messages seen in rooms",
    "relayed_to_customer": "agent messages seen by customers",
    "takeovers_ended": "takeovers ended by agents",
    "customers_left": "customers who closed mid-takeover",
    "http_429": "429 answers (retried)",
    "errors": "errors (see the report)",
}

_LOWEST_US, _HIGHEST_US = 1, 3_600_000_000


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Seconds; None when there was no sample."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    p999: float | None
    max: float | None

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "mean_s": self.mean,
            "p50_s": self.p50,
            "p90_s": self.p90,
            "p99_s": self.p99,
            "p99_9_s": self.p999,
            "max_s": self.max,
        }


def _histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, 3)


class Recorder:
    def __init__(self, *, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self.histograms = {name: _histogram() for name in METRICS}
        self.samples = {name: (array("d"), array("d")) for name in METRICS}
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.count_times: dict[str, array[float]] = {name: array("d") for name in COUNTERS}
        self.errors: dict[str, int] = {}

    def record(self, metric: str, seconds: float, at: float) -> None:
        """One latency sample of `metric` (seconds), observed at run time `at`."""
        us = min(_HIGHEST_US, max(_LOWEST_US, round(seconds * 1e6)))
        self.histograms[metric].record_value(us)
        times, values = self.samples[metric]
        times.append(at)
        values.append(seconds)

    def count(self, counter: str, at: float, n: int = 1) -> None:
        self.counts[counter] += n
        times = self.count_times[counter]
        for _ in range(n):
            times.append(at)

    def error(self, kind: str, at: float, n: int = 1) -> None:
        """Something went wrong that the run survived (a refused call, a dropped socket)."""
        self.errors[kind] = self.errors.get(kind, 0) + n
        self.count("errors", at, n)

    # --- reading ---------------------------------------------------------------------------

    def summary(self, metric: str) -> MetricSummary:
        h = self.histograms[metric]
        n = h.get_total_count()
        if n == 0:
            return MetricSummary(0, None, None, None, None, None, None)

        def at(p: float) -> float:
            return float(h.get_value_at_percentile(p)) / 1e6

        return MetricSummary(
            n, h.get_mean_value() / 1e6, at(50), at(90), at(99), at(99.9), h.get_max_value() / 1e6
        )

    def percentile(self, metric: str, p: float) -> float | None:
        """One percentile of `metric` so far (seconds), None before any sample: what a live
        display needs, without `summary`'s six passes over the histogram."""
        h = self.histograms[metric]
        if h.get_total_count() == 0:
            return None
        return float(h.get_value_at_percentile(p)) / 1e6

    def encoded(self, metric: str) -> str:
        """The histogram in HdrHistogram's compressed base64 form (mergeable, re-analysable)."""
        payload = self.histograms[metric].encode()
        return payload.decode() if isinstance(payload, bytes) else str(payload)

    def buckets(self, end: float) -> int:
        return max(1, math.ceil(end / self.interval_s))

    def series(self, metric: str, end: float) -> list[dict[str, float | int | None]]:
        """Per interval: start time, count, p50, p99 and max (seconds), None when empty."""
        times, values = self.samples[metric]
        bins: list[list[float]] = [[] for _ in range(self.buckets(end))]
        for t, v in zip(times, values, strict=True):
            bins[min(len(bins) - 1, max(0, int(t / self.interval_s)))].append(v)
        out: list[dict[str, float | int | None]] = []
        for i, vs in enumerate(bins):
            vs.sort()
            out.append(
                {
                    "t": i * self.interval_s,
                    "n": len(vs),
                    "p50": _rank(vs, 50),
                    "p99": _rank(vs, 99),
                    "max": vs[-1] if vs else None,
                }
            )
        return out

    def rates(self, counter: str, end: float) -> list[float]:
        """Events per second in each interval."""
        bins = [0] * self.buckets(end)
        for t in self.count_times[counter]:
            bins[min(len(bins) - 1, max(0, int(t / self.interval_s)))] += 1
        return [n / self.interval_s for n in bins]

    def values(self, metric: str) -> array[float]:
        return self.samples[metric][1]


def _rank(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def decode_histogram(encoded: str) -> HdrHistogram:
    """The inverse of `Recorder.encoded` (for tools reading a JSON report)."""
    return HdrHistogram.decode(encoded)
