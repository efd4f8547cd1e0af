"""The pure routing rules and the dispatch step, without actors or clocks."""

from __future__ import annotations

import trio

from actors.messages import (
    CancelRequest,
    EscalationMsg,
    OfferFinished,
    OfferStarted,
    ReleaseAgent,
    RequestAgent,
    TakeoverFinished,
)
from actors.ports import PresenceChanged
from actors.routing import (
    AgentView,
    Assign,
    DispatchState,
    Exhaust,
    Offer,
    RoutingRules,
    WithdrawFrom,
    chain,
    dispatch,
    end_offer,
    has_room,
    is_available,
)

RULES = RoutingRules(max_tries=3, max_chats_per_agent=2)
_BOX: trio.MemorySendChannel[EscalationMsg]
_BOX, _ = trio.open_memory_channel[EscalationMsg](1)


def view(*agents: AgentView) -> DispatchState:
    return DispatchState(RULES, {a.agent_id: a for a in agents})


def request(
    escalation_id: str, *, excluded: tuple[str, ...] = (), tries: int = 0, since: float = 0
):
    return RequestAgent(escalation_id, frozenset(excluded), tries, since, _BOX)


def test_availability() -> None:
    assert is_available(AgentView("U1", active=True, load=1), RULES)
    assert not is_available(AgentView("U1", active=False), RULES)
    assert not is_available(AgentView("U1", active=True, load=2), RULES)
    held = AgentView("U1", active=True, holder="E1")
    assert has_room(held, RULES) and not is_available(held, RULES)


def test_chain_order_fewest_chats_then_idle_longest_then_id() -> None:
    agents = {
        a.agent_id: a
        for a in (
            AgentView("U4", active=True, load=1, idle_since=0),
            AgentView("U3", active=True, load=0, idle_since=50),
            AgentView("U2", active=True, load=0, idle_since=10),
            AgentView("U1", active=True, load=0, idle_since=10),
            AgentView("U0", active=False, load=0, idle_since=0),
            AgentView("U5", active=True, holder="E9"),
        )
    }
    assert [a.agent_id for a in chain(agents, RULES)] == ["U1", "U2", "U3", "U4"]
    assert [a.agent_id for a in chain(agents, RULES, frozenset({"U1"}))] == ["U2", "U3", "U4"]


def test_request_assigns_the_head_of_the_chain_and_holds_the_agent() -> None:
    state = view(AgentView("U1", active=True, load=1), AgentView("U2", active=True))
    state, effects = dispatch(state, request("E1"), now=5)
    assert effects == [Assign("E1", "U2", 0.0)]
    assert state.agents["U2"].holder == "E1"
    state, effects = dispatch(state, request("E2"), now=5)
    assert effects == [Assign("E2", "U1", 0.0)]


def test_exhaust_reasons() -> None:
    away = view(AgentView("U1"), AgentView("U2", active=True, load=2))
    assert dispatch(away, request("E1"), 0)[1] == [Exhaust("E1", "nobody_available", 0.0)]
    present = view(AgentView("U1", active=True))
    tried = request("E1", excluded=("U1",), tries=1)
    assert dispatch(present, tried, 0)[1] == [Exhaust("E1", "all_tried", 0.0)]
    assert dispatch(present, request("E1", tries=3), 0)[1] == [Exhaust("E1", "max_tries", 0.0)]


def test_waiting_queue_is_ordered_by_escalation_start_and_served_when_agents_free() -> None:
    state = view(AgentView("U1", active=True))
    state, _ = dispatch(state, request("E1", since=0), now=0)
    state, effects = dispatch(state, request("E3", since=3), now=3)
    assert effects == [] and [w.escalation_id for w in state.waiting] == ["E3"]
    state, effects = dispatch(state, request("E2", excluded=("U9",), tries=1, since=2), now=4)
    assert [w.escalation_id for w in state.waiting] == ["E2", "E3"]
    state, _ = dispatch(state, OfferStarted("E1", "O1", "U1"), now=4)
    assert state.agents["U1"].offering
    state, effects = dispatch(state, OfferFinished("E1", "O1", "U1", "ignored", 6.0), now=10)
    assert effects == [Assign("E2", "U1", 6.0)]
    assert state.agents["U1"].idle_since == 10 and state.agents["U1"].holder == "E2"
    state, effects = dispatch(state, CancelRequest("E3"), now=11)
    assert state.waiting == ()


def test_waiting_escalations_are_exhausted_when_their_last_agent_goes() -> None:
    state = view(AgentView("U1", active=True))
    state, _ = dispatch(state, request("E1"), now=0)
    state, _ = dispatch(state, request("E2"), now=1)
    state, effects = dispatch(state, PresenceChanged("U1", False), now=8)
    assert effects == [WithdrawFrom("E1", "U1"), Exhaust("E2", "nobody_available", 7.0)]
    state, effects = dispatch(state, ReleaseAgent("E1", "U1", True), now=8)
    assert state.agents["U1"].holder is None and not state.agents["U1"].active


def test_accept_raises_the_load_and_a_takeover_end_lowers_it() -> None:
    state = view(AgentView("U1", active=True, load=1))
    state, _ = dispatch(state, request("E1"), now=0)
    state, _ = dispatch(state, request("E2"), now=0)
    state, effects = dispatch(state, OfferFinished("E1", "O1", "U1", "accepted", 2.0), now=2)
    assert state.agents["U1"].load == 2
    assert effects == [Exhaust("E2", "nobody_available", 2.0)]  # U1 is full now
    state, _ = dispatch(state, TakeoverFinished("U1", "T1", 60.0), now=62)
    assert state.agents["U1"].load == 1


def test_stale_messages_change_nothing() -> None:
    state = view(AgentView("U1", active=True, holder="E1"))
    assert dispatch(state, ReleaseAgent("E2", "U1", False), 0) == (state, [])
    assert dispatch(state, OfferStarted("E2", "O", "U1"), 0) == (state, [])
    assert dispatch(state, PresenceChanged("U9", False), 0) == (state, [])
    assert dispatch(state, PresenceChanged("U1", True), 0) == (state, [])


def test_an_offer_ends_once() -> None:
    offer = Offer("O1", "U1", made_at=0, deadline=45)
    ended = end_offer(offer, "ignored", now=3)
    assert ended is not None and (ended.outcome, ended.ended_at) == ("ignored", 3)
    assert end_offer(ended, "accepted", now=4) is None
