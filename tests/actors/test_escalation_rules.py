"""The pure state machine of one escalation: each transition and its effects."""

from __future__ import annotations

from actors.escalation_rules import (
    Confirm,
    Dequeue,
    EndOffer,
    EscalationEffect,
    EscalationState,
    Finish,
    MakeOffer,
    Release,
    Request,
    TooLate,
    step,
)
from actors.messages import (
    AgentReserved,
    AgentWentAway,
    CancelEscalation,
    EscalationMsg,
    NoAgentLeft,
    OfferDeadline,
    PresenceConfirmed,
)
from actors.ports import OfferAnswered
from actors.routing import Offer


def run(
    state: EscalationState, msg: EscalationMsg, now: float = 0.0, offer_id: str = "O1"
) -> tuple[EscalationState, list[EscalationEffect]]:
    return step(state, msg, now=now, offer_timeout_s=45, offer_id=offer_id)


def offered(agent: str = "U1", offer_id: str = "O1", at: float = 0.0) -> EscalationState:
    state, _ = run(EscalationState("E1", since=0), AgentReserved(agent, 2.0), now=at)
    state, effects = run(state, PresenceConfirmed(1, agent, True), now=at, offer_id=offer_id)
    assert effects == [MakeOffer(Offer(offer_id, agent, made_at=at, deadline=at + 45))]
    return state


def test_reserve_confirm_offer() -> None:
    state, effects = run(EscalationState("E1", since=0), AgentReserved("U1", 2.0))
    assert (state.phase, state.waited_s, effects) == ("confirming", 2.0, [Confirm(1, "U1")])
    state = offered()
    assert state.phase == "offered" and state.tries == 1 and state.current is not None


def test_unconfirmed_presence_releases_and_asks_again_without_an_offer() -> None:
    state, _ = run(EscalationState("E1", since=0), AgentReserved("U1", 0.0))
    state, effects = run(state, PresenceConfirmed(1, "U1", False))
    assert effects == [Release("U1", False), Request(frozenset(), 0)]
    assert state.phase == "waiting" and state.tries == 0
    # an answer for an older reservation is ignored
    assert run(state, PresenceConfirmed(1, "U1", True)) == (state, [])


def test_accept() -> None:
    state, effects = run(offered(), OfferAnswered("O1", "U1", True), now=10)
    assert effects == [
        EndOffer("O1", "U1", "accepted", 10.0),
        Finish("accepted", "accepted", "U1", "O1"),
    ]
    assert (state.phase, state.outcome, state.agent_id) == ("done", "accepted", "U1")
    # a second click, or the deadline, come too late
    assert run(state, OfferAnswered("O1", "U1", True), now=11)[1] == [TooLate("O1", "U1")]
    assert run(state, OfferDeadline("O1"), now=45) == (state, [])


def test_ignore_and_miss_exclude_the_agent() -> None:
    state, effects = run(offered(), OfferAnswered("O1", "U1", False), now=3)
    assert effects == [EndOffer("O1", "U1", "ignored", 3.0), Request(frozenset({"U1"}), 1)]
    state, _ = run(state, AgentReserved("U2", 0.0), now=3)
    state, _ = run(state, PresenceConfirmed(2, "U2", True), now=3, offer_id="O2")
    state, effects = run(state, OfferDeadline("O2"), now=48)
    assert effects == [EndOffer("O2", "U2", "missed", 45.0), Request(frozenset({"U1", "U2"}), 2)]
    assert [o.outcome for o in state.offers] == ["ignored", "missed"]


def test_a_deadline_or_click_for_another_offer_changes_nothing() -> None:
    state = offered()
    assert run(state, OfferDeadline("O0")) == (state, [])
    assert run(state, OfferAnswered("O9", "U1", True)) == (state, [])
    # the right offer clicked by another agent is told it is too late; the offer stays pending
    assert run(state, OfferAnswered("O1", "U2", True)) == (state, [TooLate("O1", "U2")])


def test_agent_going_away_withdraws_without_blame() -> None:
    state, effects = run(offered(), AgentWentAway("U1"), now=7)
    assert state.excluded == frozenset()
    assert effects == [EndOffer("O1", "U1", "withdrawn", 7.0), Request(frozenset(), 1)]
    confirming, _ = run(EscalationState("E1", since=0), AgentReserved("U1", 0.0))
    assert run(confirming, AgentWentAway("U1"))[1] == [
        Release("U1", False),
        Request(frozenset(), 0),
    ]
    assert run(confirming, AgentWentAway("U2")) == (confirming, [])


def test_no_agent_left_exhausts() -> None:
    state, effects = run(EscalationState("E1", since=0), NoAgentLeft("all_tried", 4.0))
    assert effects == [Finish("exhausted", "all_tried", None, None)]
    assert (state.outcome, state.waited_s) == ("exhausted", 4.0)
    assert run(offered(), NoAgentLeft("all_tried", 0.0))[1] == []


def test_cancel_in_every_phase() -> None:
    cancel = CancelEscalation("customer_left")
    finish = Finish("cancelled", "customer_left", None, None)
    waiting = EscalationState("E1", since=0)
    assert run(waiting, cancel)[1] == [Dequeue(), finish]
    confirming, _ = run(waiting, AgentReserved("U1", 0.0))
    assert run(confirming, cancel)[1] == [Release("U1", True), finish]
    state, effects = run(offered(), cancel, now=9)
    assert effects == [EndOffer("O1", "U1", "withdrawn", 9.0), finish]
    assert run(state, cancel) == (state, [])
    # a reservation arriving after the cancel is given back
    assert run(state, AgentReserved("U2", 0.0))[1] == [Release("U2", True)]
