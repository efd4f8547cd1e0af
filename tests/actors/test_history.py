"""The escalation history read model, fed by the domain's durable facts (exact virtual times)."""

from __future__ import annotations

import trio

from actors.facts import AgentMessaged, EscalationStarted
from actors.history import EscalationHistory, OfferRecord
from actors.ports import OfferAnswered, PresenceChanged, ResolveOffer
from tests.actors.harness import EPOCH
from tests.actors.ops_rig import ops_domain


async def test_an_escalation_records_availability_offers_in_order_and_who_handled_it(
    autojump_clock,
) -> None:
    async with ops_domain(("U01", "U02", "U03"), present=("U01", "U02")) as rig:
        session = await rig.customer()
        t0 = trio.current_time()
        await rig.domain.customer_says(session, "human please")
        first = await rig.slack.next_offer()
        await trio.sleep(4)
        await rig.domain.deliver(OfferAnswered(first.offer_id, first.agent_id, accepted=False))
        second = await rig.slack.next_offer()
        await trio.sleep(7)
        await rig.domain.deliver(OfferAnswered(second.offer_id, second.agent_id, accepted=True))
        await rig.slack.next(ResolveOffer)
        await rig.settle()

        records, truncated = rig.history.since(0)
        assert not truncated and len(records) == 1
        r = records[0]
        assert (r.session_id, r.trigger, r.started_at) == (session, "asked", EPOCH + t0)
        assert r.available == ("U01", "U02")  # U03 was away when it started
        assert r.offers == (
            OfferRecord(
                first.offer_id,
                first.agent_id,
                EPOCH + t0,
                EPOCH + t0 + 30,
                "ignored",
                EPOCH + t0 + 4,
            ),
            OfferRecord(
                second.offer_id,
                second.agent_id,
                EPOCH + t0 + 4,
                EPOCH + t0 + 34,
                "accepted",
                EPOCH + t0 + 11,
            ),
        )
        assert (r.outcome, r.result, r.handled_by) == ("accepted", "handled", second.agent_id)
        stats = rig.history.statistics()
        assert (stats.time_to_accept.count, stats.time_to_accept.sum) == (1, 7.0)


async def test_nobody_available_nobody_accepted_and_closed_hours(autojump_clock) -> None:
    async with ops_domain(("U01",), present=(), offer_timeout_s=30, max_tries=1) as rig:
        nobody = await rig.customer()
        await rig.domain.customer_says(nobody, "human please")
        await rig.settle()
        await rig.domain.deliver(PresenceChanged("U01", True))
        missed = await rig.customer()
        await rig.domain.customer_says(missed, "human please")
        await rig.slack.next(ResolveOffer)
        await rig.settle()
        rig.open_hours[0] = False
        closed = await rig.customer()
        await rig.domain.customer_says(closed, "human please")
        await rig.settle()

        by_session = {r.session_id: r for r in rig.history.since(0)[0]}
        assert by_session[nobody].result == "nobody_available"
        assert by_session[nobody].available == () and by_session[nobody].offers == ()
        assert by_session[missed].result == "nobody_accepted"
        assert [o.outcome for o in by_session[missed].offers] == ["missed"]
        assert by_session[missed].offers[0].ended_at == by_session[missed].started_at + 30
        assert by_session[closed].result == "closed_hours"


async def test_since_and_limit_page_through_oldest_first(autojump_clock) -> None:
    async with ops_domain(("U01",), present=()) as rig:
        starts = []
        for _ in range(5):
            session = await rig.customer()
            starts.append(EPOCH + trio.current_time())
            await rig.domain.customer_says(session, "human please")
            await rig.settle()
            await trio.sleep(10)
        records, truncated = rig.history.since(starts[2])
        assert [r.started_at for r in records] == starts[2:] and not truncated
        records, truncated = rig.history.since(0, limit=2)
        assert [r.started_at for r in records] == starts[:2] and truncated


def test_the_latest_escalations_are_kept_and_relay_latency_comes_from_slack_ts() -> None:
    history = EscalationHistory(keep=2)
    for n in range(3):
        history.observe(EscalationStarted(f"e{n}", "s", "c", "asked", float(n)))
    assert [r.escalation_id for r in history.since(0)[0]] == ["e1", "e2"]
    assert history.get("e0") is None and history.get("e2") is not None
    assert history.since(0)[0][0].available is None  # no routing view given
    for message_id, at in (("C1:100.250000", 100.5), ("C1:bad", 5.0), ("C1:100", 99.0)):
        history.observe(AgentMessaged("t", "s", "c", "U1", message_id, 1, "hi", at))
    relay = history.statistics().relay_to_customer
    assert relay.count == 2 and relay.sum == 0.25  # clock skew counts as zero
