"""/metrics and /api/escalations over a running domain (the ops rig), through HTTP.

The collector reads the domain, the history, a Slack Web API client's statistics and the journal
at scrape time; the text is parsed back with prometheus-client's own parser.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from actors.histogram import RELAY_BOUNDS, Histogram
from actors.journal import JournalActor
from actors.ports import OfferAnswered, ResolveOffer
from tests.actors.ops_rig import OpsRig, ops_domain
from transport.metrics import MetricsSources, metrics_registry, metrics_route
from transport.ops_api import Liveness, bearer_guard, ops_routes
from transport.slack_errors import SlackRateLimited
from transport.slack_web import RetryPolicy, SlackWebClient

TOKEN = "s3cret-ops-token"


def _slack_api(request: httpx.Request) -> httpx.Response:
    method = request.url.path.rsplit("/", 1)[-1]
    if method == "users.info":
        return httpx.Response(
            429, headers={"Retry-After": "0"}, json={"ok": False, "error": "ratelimited"}
        )
    return httpx.Response(200, json={"ok": True})


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class Ops:
    def __init__(self, rig: OpsRig, http: httpx.AsyncClient, web: SlackWebClient) -> None:
        self.rig, self.http, self.web = rig, http, web

    async def metrics(self, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        answer = await self.http.get("/metrics", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        return _samples(answer.text)


async def _ops(rig: OpsRig, tmp_path: Path, nursery: trio.Nursery, *, token: str = "") -> Ops:
    web = SlackWebClient(
        "xoxb-test",
        api_url="http://slack.test/api/",
        transport=httpx.MockTransport(_slack_api),
        retry=RetryPolicy(max_rate_limited_waits=0),
    )
    journal = JournalActor(tmp_path / "journal", fsync="always")
    await nursery.start(journal.run)
    await journal.append({"type": "note"})
    to_room = Histogram(RELAY_BOUNDS)
    to_room.observe(0.02)

    def broken() -> bool:
        raise RuntimeError("this source is broken")

    registry = metrics_registry(
        MetricsSources(
            domain=rig.domain.stats,
            history=rig.history.statistics,
            slack_web=web.statistics,
            relay_to_room=to_room.snapshot,
            slack_connected=broken,
            journal=journal.statistics,
        )
    )
    guard = bearer_guard(token)
    app = Starlette(
        routes=[
            metrics_route(registry, authorized=guard),
            *ops_routes(rig.history, authorized=guard),
        ]
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops.test")
    return Ops(rig, http, web)


@pytest.fixture
async def ops(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Ops]:
    async with ops_domain(("U01", "U02")) as rig:
        o = await _ops(rig, tmp_path, nursery)
        yield o
        await o.http.aclose()
        await o.web.aclose()


async def _ignored_then_accepted(rig: OpsRig) -> str:
    session = await rig.customer()
    await rig.domain.customer_says(session, "human please")
    first = await rig.slack.next_offer()
    await trio.sleep(3)
    await rig.domain.deliver(OfferAnswered(first.offer_id, first.agent_id, accepted=False))
    second = await rig.slack.next_offer()
    await trio.sleep(12)
    await rig.domain.deliver(OfferAnswered(second.offer_id, second.agent_id, accepted=True))
    await rig.slack.next(ResolveOffer)
    await rig.slack.next(ResolveOffer)
    await rig.settle()
    return second.agent_id


async def test_metrics_report_escalations_offers_accept_time_load_slack_and_journal(
    ops: Ops, autojump_clock: Any
) -> None:
    accepted_by = await _ignored_then_accepted(ops.rig)
    with pytest.raises(SlackRateLimited):
        await ops.web.call("users.info", user="U01")
    await ops.web.call("auth.test")
    m = await ops.metrics()

    assert m[("takeover_escalations_total", (("outcome", "accepted"),))] == 1
    assert m[("takeover_escalations_total", (("outcome", "exhausted"),))] == 0
    assert m[("takeover_escalations_searching", ())] == 0
    assert m[("takeover_offers_total", (("outcome", "ignored"),))] == 1
    assert m[("takeover_offers_total", (("outcome", "accepted"),))] == 1
    assert m[("takeover_offers_total", (("outcome", "missed"),))] == 0
    assert (
        m[("takeover_agent_offers_total", (("agent", accepted_by), ("outcome", "accepted")))] == 1
    )
    assert m[("takeover_time_to_accept_seconds_count", ())] == 1
    assert m[("takeover_time_to_accept_seconds_sum", ())] == 12.0
    assert m[("takeover_time_to_accept_seconds_bucket", (("le", "10.0"),))] == 0
    assert m[("takeover_time_to_accept_seconds_bucket", (("le", "15.0"),))] == 1
    assert m[("takeover_takeovers_active", ())] == 1
    assert m[("takeover_agent_load", (("agent", accepted_by),))] == 1
    assert m[("takeover_sessions_open", ())] == 1
    assert m[("takeover_relay_latency_seconds_count", (("direction", "to_room"),))] == 1
    assert m[("takeover_relay_latency_seconds_count", (("direction", "to_customer"),))] == 0
    assert m[("takeover_slack_api_calls_total", (("method", "auth.test"),))] == 1
    assert m[("takeover_slack_api_rate_limited_total", (("method", "users.info"),))] >= 1
    assert m[("takeover_journal_fsync_seconds_count", ())] == 1
    assert m[("takeover_journal_records_total", ())] == 1
    inf = m[("takeover_journal_fsync_seconds_bucket", (("le", "+Inf"),))]
    assert inf == 1 and not math.isnan(m[("takeover_journal_fsync_seconds_sum", ())])
    # the broken Slack-connection reader is left out; every other family is still there
    assert not any(name == "takeover_slack_connected" for name, _ in m)


async def test_escalation_history_lists_offers_outcome_and_availability(
    ops: Ops, autojump_clock: Any
) -> None:
    accepted_by = await _ignored_then_accepted(ops.rig)
    answer = await ops.http.get("/api/escalations", params={"since": "0"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["truncated"] is False and body["next_since"] is None
    [e] = body["escalations"]
    assert (
        e["result"] == "handled" and e["handled_by"] == accepted_by and e["outcome"] == "accepted"
    )
    assert e["available_at_start"] == ["U01", "U02"]
    assert [(o["outcome"], o["after_s"]) for o in e["offers"]] == [
        ("ignored", 3.0),
        ("accepted", 12.0),
    ]
    assert e["offers"][1]["made_at"] == e["offers"][0]["ended_at"]
    assert "customer_id" not in e  # a customer id would open that customer's history
    later = await ops.http.get("/api/escalations", params={"since": str(e["started_at"] + 1)})
    assert later.json()["escalations"] == []


@pytest.mark.parametrize(
    "query",
    ["since=yesterday", "since=nan", "since=inf", "limit=0", "limit=10001", "limit=2.5", "limit=x"],
)
async def test_bad_history_queries_get_400(ops: Ops, query: str) -> None:
    answer = await ops.http.get("/api/escalations?" + query)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"


async def test_an_ops_token_guards_metrics_and_history(
    tmp_path: Path, nursery: trio.Nursery, autojump_clock: Any
) -> None:
    async with ops_domain(("U01",)) as rig:
        ops = await _ops(rig, tmp_path, nursery, token=TOKEN)
        for path in ("/metrics", "/api/escalations"):
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
                refused = await ops.http.get(path, headers=headers)
                assert (
                    refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
                )
                assert refused.json()["error"] == "unauthorized"
            ok = await ops.http.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
        await ops.http.aclose()
        await ops.web.aclose()


async def test_liveness_follows_the_services_it_watches(nursery: trio.Nursery) -> None:
    liveness = Liveness()
    stop = trio.Event()

    async def service(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await stop.wait()

    watched = liveness.watch("svc", service)
    assert not liveness.alive() and liveness.components() == {"svc": False}
    await nursery.start(lambda task_status: watched(task_status=task_status))
    assert liveness.alive()
    stop.set()
    await trio.testing.wait_all_tasks_blocked()
    assert not liveness.alive() and liveness.components() == {"svc": False}
