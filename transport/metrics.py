"""`/metrics` in Prometheus' text format: one collector reading every piece's statistics at scrape.

Owns `TakeoverCollector`, a prometheus-client custom collector, and `metrics_route`. Nothing is
counted here: at each scrape the collector calls the `statistics()` / `stats()` readers it was
given (the domain, the escalation history, the Slack actor and its Web API client, the journal)
and turns their cumulative counters and histograms into metric families:

    takeover_escalations_total{outcome}            accepted, exhausted, cancelled, closed
    takeover_escalations_searching
    takeover_offers_total{outcome}                 accepted, ignored, missed, withdrawn
    takeover_offers_pending
    takeover_time_to_accept_seconds                histogram, offer made -> accepted
    takeover_relay_latency_seconds{direction}      histogram: to_room (customer line -> posted
                                                   in the room), to_customer (Slack ts -> event)
    takeover_takeovers_active
    takeover_sessions_open
    takeover_agent_load{agent}, takeover_agent_available{agent}
    takeover_agent_offers_total{agent,outcome}
    takeover_slack_api_calls_total{method}, takeover_slack_api_rate_limited_total{method}
    takeover_slack_api_errors_total{method}
    takeover_slack_connected
    takeover_journal_fsync_seconds                 histogram, one batch's write + fsync
    takeover_journal_records_total, takeover_journal_queued

A reader that is not given (no journal in a test) leaves its families out; a reader that raises
is logged and skipped, so one broken piece never hides the others' metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from actors.histogram import HistogramSnapshot
from actors.history import HistoryStatistics
from actors.journal import JournalStatistics
from actors.stats import DomainStats
from transport.slack_web import SlackWebStatistics

__all__ = ["MetricsSources", "TakeoverCollector", "metrics_registry", "metrics_route"]

_log = structlog.get_logger("transport.metrics")

_OFFER_OUTCOMES = ("accepted", "ignored", "missed", "withdrawn")
_ESCALATION_OUTCOMES = ("accepted", "exhausted", "cancelled", "closed")


@dataclass(frozen=True, slots=True)
class MetricsSources:
    """The readers the collector calls at each scrape (None: that piece is not there)."""

    domain: Callable[[], DomainStats]
    history: Callable[[], HistoryStatistics] | None = None
    slack_web: Callable[[], SlackWebStatistics] | None = None
    relay_to_room: Callable[[], HistogramSnapshot] | None = None
    slack_connected: Callable[[], bool] | None = None
    journal: Callable[[], JournalStatistics] | None = None


def _histogram(family: HistogramMetricFamily, labels: list[str], snap: HistogramSnapshot) -> None:
    buckets = [(floatToGoString(le), float(n)) for le, n in snap.cumulative()]
    family.add_metric(labels, buckets, snap.sum)


class TakeoverCollector(Collector):
    def __init__(self, sources: MetricsSources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        s = self._sources
        parts: list[tuple[str, Callable[[], Iterable[Metric]]]] = [
            ("domain", lambda: self._domain(s.domain()))
        ]
        if s.history is not None:
            history = s.history
            parts.append(("history", lambda: self._history(history(), s.relay_to_room)))
        if s.slack_web is not None:
            web = s.slack_web
            parts.append(("slack_web", lambda: self._slack_web(web())))
        if s.slack_connected is not None:
            connected = s.slack_connected
            parts.append(
                ("slack", lambda: [_gauge("slack_connected", "Slack link up", connected())])
            )
        if s.journal is not None:
            journal = s.journal
            parts.append(("journal", lambda: self._journal(journal())))
        for name, part in parts:
            try:
                metrics = list(part())
            except Exception:
                _log.exception("metrics_source_failed", source=name)
                continue
            yield from metrics

    # --- families ---------------------------------------------------------------------------

    def _domain(self, stats: DomainStats) -> Iterator[Metric]:
        escalations = CounterMetricFamily(
            "takeover_escalations", "Escalations ended, by outcome", labels=["outcome"]
        )
        for outcome in _ESCALATION_OUTCOMES:
            escalations.add_metric([outcome], stats.by_outcome.get(outcome, 0))
        yield escalations
        yield _gauge(
            "escalations_searching",
            "Escalations walking their chain now",
            stats.by_outcome.get("searching", 0),
        )
        offers = CounterMetricFamily(
            "takeover_offers", "Offers ended, by outcome", labels=["outcome"]
        )
        per_agent = CounterMetricFamily(
            "takeover_agent_offers",
            "Offers ended, by agent and outcome",
            labels=["agent", "outcome"],
        )
        load = GaugeMetricFamily(
            "takeover_agent_load", "Active takeovers per agent", labels=["agent"]
        )
        available = GaugeMetricFamily(
            "takeover_agent_available", "1 when the agent can get an offer now", labels=["agent"]
        )
        totals = dict.fromkeys(_OFFER_OUTCOMES, 0)
        for agent in stats.agents:
            for outcome in _OFFER_OUTCOMES:
                n = getattr(agent, outcome)
                totals[outcome] += n
                per_agent.add_metric([agent.id, outcome], n)
            load.add_metric([agent.id], agent.load)
            available.add_metric([agent.id], 1 if agent.available else 0)
        for outcome, n in totals.items():
            offers.add_metric([outcome], n)
        yield offers
        yield per_agent
        yield _gauge(
            "offers_pending", "Offers waiting for an answer", sum(a.pending for a in stats.agents)
        )
        yield _gauge("takeovers_active", "Takeovers in progress", sum(a.load for a in stats.agents))
        yield _gauge("sessions_open", "Customer sessions open", stats.sessions_open)
        yield load
        yield available

    def _history(
        self, stats: HistoryStatistics, to_room: Callable[[], HistogramSnapshot] | None
    ) -> Iterator[Metric]:
        accept = HistogramMetricFamily(
            "takeover_time_to_accept_seconds", "Seconds from an offer to its accept"
        )
        _histogram(accept, [], stats.time_to_accept)
        yield accept
        relay = HistogramMetricFamily(
            "takeover_relay_latency_seconds",
            "Seconds a message takes between the customer and the room",
            labels=["direction"],
        )
        _histogram(relay, ["to_customer"], stats.relay_to_customer)
        if to_room is not None:
            _histogram(relay, ["to_room"], to_room())
        yield relay

    def _slack_web(self, stats: SlackWebStatistics) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "takeover_slack_api_calls", "Slack Web API calls, by method", labels=["method"]
        )
        limited = CounterMetricFamily(
            "takeover_slack_api_rate_limited",
            "Slack Web API answers 429 (ratelimited), by method",
            labels=["method"],
        )
        errors = CounterMetricFamily(
            "takeover_slack_api_errors",
            "Slack Web API calls that failed (Slack error or transport), by method",
            labels=["method"],
        )
        for method, m in stats.methods.items():
            calls.add_metric([method], m.calls)
            limited.add_metric([method], m.rate_limited)
            errors.add_metric([method], m.api_errors + m.failed)
        yield calls
        yield limited
        yield errors

    def _journal(self, stats: JournalStatistics) -> Iterator[Metric]:
        fsync = HistogramMetricFamily(
            "takeover_journal_fsync_seconds", "Seconds one journal batch takes to write and fsync"
        )
        _histogram(fsync, [], stats.write_seconds)
        yield fsync
        records = CounterMetricFamily("takeover_journal_records", "Journal records made durable")
        records.add_metric([], stats.durable)
        yield records
        yield _gauge("journal_queued", "Journal records waiting for their batch", stats.queued)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"takeover_{name}", doc, value=value)


def metrics_registry(sources: MetricsSources) -> CollectorRegistry:
    """A registry of its own (not the process-global one) holding the takeover collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TakeoverCollector(sources))
    return registry


def metrics_route(
    registry: CollectorRegistry, *, authorized: Callable[[Request], bool] = lambda r: True
) -> Route:
    """`GET /metrics` in the format the scraper asks for (`Accept`: Prometheus text 0.0.4 by
    default, OpenMetrics when asked); `authorized` may require a bearer token (401 otherwise)."""

    async def metrics(request: Request) -> Response:
        if not authorized(request):
            return Response(
                '{"error": "unauthorized", "detail": "a valid bearer token is needed"}',
                status_code=401,
                media_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), headers={"Content-Type": content_type})

    return Route("/metrics", metrics, methods=["GET"])
