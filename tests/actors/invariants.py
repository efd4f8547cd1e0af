"""The routing invariants of issue 2, checked from two independent sources: the durable facts the
domain recorded and the stats it reports."""

from __future__ import annotations

from collections import Counter, defaultdict

from actors.domain import Domain
from actors.facts import (
    EscalationEnded,
    EscalationStarted,
    Fact,
    OfferEnded,
    OfferMade,
    TakeoverEnded,
    TakeoverStarted,
)


def check_invariants(domain: Domain, facts: list[Fact], max_chats: int) -> None:
    made = [f for f in facts if isinstance(f, OfferMade)]
    ended = [f for f in facts if isinstance(f, OfferEnded)]
    offer_agent = {f.offer_id: f.agent_id for f in made}

    # one outcome per offer, and only for offers that were made
    per_offer = Counter(f.offer_id for f in ended)
    assert all(n == 1 for n in per_offer.values()), per_offer
    assert set(per_offer) <= set(offer_agent)
    open_offers = set(offer_agent) - set(per_offer)

    # at most one owner per escalation, one pending offer per escalation and per agent
    owners: defaultdict[str, set[str]] = defaultdict(set)
    for f in ended:
        if f.outcome == "accepted":
            owners[f.escalation_id].add(f.agent_id)
    assert all(len(agents) == 1 for agents in owners.values()), owners
    pending_by_escalation = Counter(f.escalation_id for f in made if f.offer_id in open_offers)
    assert all(n == 1 for n in pending_by_escalation.values()), pending_by_escalation
    pending_by_agent = Counter(offer_agent[o] for o in open_offers)
    assert all(n == 1 for n in pending_by_agent.values()), pending_by_agent

    # every escalation ends at most once, in one outcome; an owned one ended accepted
    ends = Counter(f.escalation_id for f in facts if isinstance(f, EscalationEnded))
    assert all(n == 1 for n in ends.values()), ends
    started = {f.escalation_id for f in facts if isinstance(f, EscalationStarted)}
    assert set(ends) <= started
    outcome = {f.escalation_id: f.outcome for f in facts if isinstance(f, EscalationEnded)}
    for escalation_id in owners:
        assert outcome.get(escalation_id, "accepted") == "accepted"
    takeovers = Counter(f.escalation_id for f in facts if isinstance(f, TakeoverStarted))
    assert all(n == 1 for n in takeovers.values()) and set(takeovers) <= set(owners)

    # per agent: counts agree with the facts, offered = outcomes + pending, load within limits
    stats = domain.stats()
    takeovers_ended = Counter(f.agent_id for f in facts if isinstance(f, TakeoverEnded))
    for agent in stats.agents:
        outcomes = Counter(f.outcome for f in ended if f.agent_id == agent.id)
        assert agent.offered == sum(1 for f in made if f.agent_id == agent.id)
        assert (agent.accepted, agent.ignored, agent.missed, agent.withdrawn) == (
            outcomes["accepted"],
            outcomes["ignored"],
            outcomes["missed"],
            outcomes["withdrawn"],
        )
        assert agent.pending == pending_by_agent[agent.id]
        assert agent.offered == (
            agent.accepted + agent.ignored + agent.missed + agent.withdrawn + agent.pending
        )
        assert 0 <= agent.load <= max_chats
        assert agent.load == outcomes["accepted"] - takeovers_ended[agent.id]
    assert stats.by_outcome["searching"] == len(started) - len(ends)


def check_all_ended(facts: list[Fact]) -> None:
    started = {f.escalation_id for f in facts if isinstance(f, EscalationStarted)}
    ends = Counter(f.escalation_id for f in facts if isinstance(f, EscalationEnded))
    assert set(ends) == started and all(n == 1 for n in ends.values())
