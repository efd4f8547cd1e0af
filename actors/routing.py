"""Pure routing rules (design §2.2-§2.5): availability, chain order, offers and the dispatch step.

Owns no I/O and reads no clock: time comes in as `now` (trio seconds). The dispatcher actor is
a thin shell around `dispatch`; the escalation actor uses `end_offer` and `next_outcome`.

- Availability: presence active, load under `max_chats_per_agent`, no pending offer.
- Chain order: fewest active chats, then idle longest (longest since their last offer ended),
  then agent id, so the order is total and deterministic.
- An escalation never gets an agent it excluded (who ignored or missed it), nor more than
  `max_tries` offers.
- Contention: when no agent is eligible for an escalation at all (nobody active with room, all
  eligible ones excluded, or max tries reached) it is exhausted at once; when eligible agents
  exist but all hold another escalation's pending offer, the escalation waits in a queue ordered
  by when it started, and gets the first of them that frees up.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import assert_never

from actors.messages import (
    CancelRequest,
    DispatcherMsg,
    ExhaustReason,
    OfferFinished,
    OfferStarted,
    ReleaseAgent,
    RequestAgent,
    TakeoverFinished,
)
from actors.ports import OfferOutcome, PresenceChanged
from actors.settings import RoutingSettings

__all__ = [
    "AgentView",
    "Assign",
    "DispatchEffect",
    "DispatchState",
    "Exhaust",
    "Offer",
    "RoutingRules",
    "Waiting",
    "WithdrawFrom",
    "chain",
    "chain_key",
    "decide",
    "dispatch",
    "end_offer",
    "has_room",
    "is_available",
]


@dataclass(frozen=True, slots=True)
class RoutingRules:
    max_tries: int = 3
    max_chats_per_agent: int = 3

    @classmethod
    def from_settings(cls, routing: RoutingSettings) -> RoutingRules:
        return cls(max_tries=routing.max_tries, max_chats_per_agent=routing.max_chats_per_agent)


@dataclass(frozen=True, slots=True)
class AgentView:
    """The dispatcher's view of one agent. `holder` is the escalation holding the agent (a
    reservation while presence is confirmed, then its pending offer, when `offering`)."""

    agent_id: str
    active: bool = False
    load: int = 0
    holder: str | None = None
    offering: bool = False
    idle_since: float = 0.0


def has_room(agent: AgentView, rules: RoutingRules) -> bool:
    """Present and under the chat limit (it may still be held by a pending offer)."""
    return agent.active and agent.load < rules.max_chats_per_agent


def is_available(agent: AgentView, rules: RoutingRules) -> bool:
    return has_room(agent, rules) and agent.holder is None


def chain_key(agent: AgentView) -> tuple[int, float, str]:
    return (agent.load, agent.idle_since, agent.agent_id)


def chain(
    agents: Mapping[str, AgentView], rules: RoutingRules, excluded: frozenset[str] = frozenset()
) -> list[AgentView]:
    """The available agents not excluded, best first."""
    return sorted(
        (a for a in agents.values() if is_available(a, rules) and a.agent_id not in excluded),
        key=chain_key,
    )


# --- offers ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """One offer of an escalation to one agent; `made_at`, `deadline`, `ended_at` in trio time."""

    offer_id: str
    agent_id: str
    made_at: float
    deadline: float
    outcome: OfferOutcome | None = None
    ended_at: float | None = None

    @property
    def pending(self) -> bool:
        return self.outcome is None


def end_offer(offer: Offer, outcome: OfferOutcome, now: float) -> Offer | None:
    """The offer with its one outcome, or None when it had already ended (a click too late)."""
    if not offer.pending:
        return None
    return replace(offer, outcome=outcome, ended_at=now)


# --- the dispatch step -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Waiting:
    escalation_id: str
    excluded: frozenset[str]
    tries: int
    since: float
    queued_at: float


@dataclass(frozen=True, slots=True)
class Assign:
    escalation_id: str
    agent_id: str
    waited_s: float


@dataclass(frozen=True, slots=True)
class Exhaust:
    escalation_id: str
    reason: ExhaustReason
    waited_s: float


@dataclass(frozen=True, slots=True)
class WithdrawFrom:
    """The agent holding this escalation went away: its reservation or offer is withdrawn."""

    escalation_id: str
    agent_id: str


DispatchEffect = Assign | Exhaust | WithdrawFrom


@dataclass(frozen=True, slots=True)
class DispatchState:
    """The routing view: agents by id (never mutated, replaced) and the waiting queue, ordered by
    (since, queued_at)."""

    rules: RoutingRules
    agents: Mapping[str, AgentView]
    waiting: tuple[Waiting, ...] = ()

    @classmethod
    def initial(cls, rules: RoutingRules, agent_ids: tuple[str, ...], now: float) -> DispatchState:
        return cls(rules, {a: AgentView(a, idle_since=now) for a in agent_ids})

    def with_agent(self, agent: AgentView) -> DispatchState:
        agents = dict(self.agents)
        agents[agent.agent_id] = agent
        return replace(self, agents=agents)


def decide(state: DispatchState, want: Waiting) -> Assign | Exhaust | None:
    """Give `want` its best agent now, exhaust it, or None: wait for a held agent to free up."""
    rules = state.rules
    waited = 0.0  # the caller adds the time spent in the queue
    if want.tries >= rules.max_tries:
        return Exhaust(want.escalation_id, "max_tries", waited)
    best: AgentView | None = None
    any_room = eligible = False
    for agent in state.agents.values():
        if not has_room(agent, rules):
            continue
        any_room = True
        if agent.agent_id in want.excluded:
            continue
        eligible = True
        if agent.holder is None and (best is None or chain_key(agent) < chain_key(best)):
            best = agent
    if best is not None:
        return Assign(want.escalation_id, best.agent_id, waited)
    if eligible:
        return None
    return Exhaust(want.escalation_id, "all_tried" if any_room else "nobody_available", waited)


def _hold(state: DispatchState, agent_id: str, escalation_id: str) -> DispatchState:
    return state.with_agent(replace(state.agents[agent_id], holder=escalation_id, offering=False))


def _serve(
    state: DispatchState, now: float, *, lost_room: bool
) -> tuple[DispatchState, list[DispatchEffect]]:
    """Re-examine the queue after the view changed: hand free agents to the first waiting
    escalations that may have them; when an agent lost room (went away, filled up), exhaust the
    waiting escalations left with no eligible agent at all.

    Costs one pass over the agents plus, per waiting escalation examined, its excluded set and
    the free agents (usually none or one); without a lost agent the walk stops once no agent is
    free, so a long queue stays cheap.
    """
    if not state.waiting:
        return state, []
    rules = state.rules
    free = [a for a in state.agents.values() if is_available(a, rules)]
    if not free and not lost_room:
        return state, []
    with_room = {a.agent_id for a in state.agents.values() if has_room(a, rules)}
    effects: list[DispatchEffect] = []
    kept: list[Waiting] = []
    for at, want in enumerate(state.waiting):
        if not free and not lost_room:
            kept.extend(state.waiting[at:])
            break
        candidates = [a for a in free if a.agent_id not in want.excluded]
        if candidates:
            best = min(candidates, key=chain_key)
            free.remove(best)
            state = _hold(state, best.agent_id, want.escalation_id)
            effects.append(Assign(want.escalation_id, best.agent_id, now - want.queued_at))
        elif len(with_room) > len(want.excluded) or len(with_room) > sum(
            1 for agent_id in want.excluded if agent_id in with_room
        ):
            kept.append(want)
        else:
            reason: ExhaustReason = "all_tried" if with_room else "nobody_available"
            effects.append(Exhaust(want.escalation_id, reason, now - want.queued_at))
    return replace(state, waiting=tuple(kept)), effects


def dispatch(
    state: DispatchState, msg: DispatcherMsg, now: float
) -> tuple[DispatchState, list[DispatchEffect]]:
    """One message into the routing view: the new view and what to tell escalations."""
    agents = state.agents
    match msg:
        case RequestAgent(escalation_id, excluded, tries, since, _):
            want = Waiting(escalation_id, excluded, tries, since, now)
            decision = decide(state, want)
            if decision is None:
                keys = [(w.since, w.queued_at) for w in state.waiting]
                at = bisect.bisect_right(keys, (since, now))
                waiting = (*state.waiting[:at], want, *state.waiting[at:])
                return replace(state, waiting=waiting), []
            if isinstance(decision, Assign):
                state = _hold(state, decision.agent_id, escalation_id)
            return state, [decision]
        case CancelRequest(escalation_id):
            waiting = tuple(w for w in state.waiting if w.escalation_id != escalation_id)
            return replace(state, waiting=waiting), []
        case ReleaseAgent(escalation_id, agent_id, active):
            agent = agents.get(agent_id)
            if agent is None or agent.holder != escalation_id:
                return state, []
            agent = replace(agent, holder=None, offering=False, active=agent.active and active)
            return _serve(state.with_agent(agent), now, lost_room=not active)
        case OfferStarted(escalation_id, _, agent_id):
            agent = agents.get(agent_id)
            if agent is None or agent.holder != escalation_id:
                return state, []
            return state.with_agent(replace(agent, offering=True)), []
        case OfferFinished(escalation_id, _, agent_id, outcome, _):
            agent = agents.get(agent_id)
            if agent is None:
                return state, []
            load = agent.load + (1 if outcome == "accepted" else 0)
            if agent.holder == escalation_id:
                agent = replace(agent, holder=None, offering=False, idle_since=now, load=load)
            else:
                agent = replace(agent, load=load)
            full = load >= state.rules.max_chats_per_agent
            return _serve(state.with_agent(agent), now, lost_room=full)
        case TakeoverFinished(agent_id, _, _):
            agent = agents.get(agent_id)
            if agent is None:
                return state, []
            agent = replace(agent, load=max(0, agent.load - 1))
            return _serve(state.with_agent(agent), now, lost_room=False)
        case PresenceChanged(agent_id, active):
            agent = agents.get(agent_id)
            if agent is None or agent.active == active:
                return state, []
            state = state.with_agent(replace(agent, active=active))
            state, effects = _serve(state, now, lost_room=not active)
            if not active and agent.holder is not None:
                effects.insert(0, WithdrawFrom(agent.holder, agent_id))
            return state, effects
        case _:
            assert_never(msg)
