"""The pure state machine of one escalation: `step(state, message) -> (state, effects)`.

Owns the chain walk's rules (design §2.3-§2.5) for one escalation: an agent is reserved, their
presence confirmed, the offer made; its one outcome (accepted, ignored, missed, withdrawn) is
whichever message comes first, and any later answer is `TooLate`. Ignored and missed agents are
excluded from the rest of the chain; the number of offers made so far goes with every request so
the dispatcher can apply `max_tries`. No I/O, no clock: `now` and the next offer id come in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, assert_never

from actors.facts import EscalationOutcome
from actors.messages import (
    AgentReserved,
    AgentWentAway,
    CancelEscalation,
    EscalationMsg,
    NoAgentLeft,
    OfferDeadline,
    PresenceConfirmed,
)
from actors.ports import OfferAnswered, OfferOutcome
from actors.routing import Offer, end_offer

__all__ = [
    "Confirm",
    "Dequeue",
    "EndOffer",
    "EscalationEffect",
    "EscalationState",
    "Finish",
    "MakeOffer",
    "Phase",
    "Release",
    "Request",
    "TooLate",
    "step",
]

Phase = Literal["waiting", "confirming", "offered", "done"]


@dataclass(frozen=True, slots=True)
class EscalationState:
    """`agent_id`: the agent reserved (confirming), offered (offered) or who accepted (done)."""

    escalation_id: str
    since: float
    phase: Phase = "waiting"
    agent_id: str | None = None
    attempt: int = 0
    offers: tuple[Offer, ...] = ()
    excluded: frozenset[str] = frozenset()
    waited_s: float = 0.0
    outcome: EscalationOutcome | None = None
    reason: str = ""

    @property
    def tries(self) -> int:
        return len(self.offers)

    @property
    def current(self) -> Offer | None:
        """The pending offer, if any."""
        return self.offers[-1] if self.phase == "offered" else None


# --- effects -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """Ask the dispatcher for the next agent."""

    excluded: frozenset[str]
    tries: int


@dataclass(frozen=True, slots=True)
class Confirm:
    """Confirm the reserved agent's presence through Slack."""

    attempt: int
    agent_id: str


@dataclass(frozen=True, slots=True)
class Release:
    """Give the reservation back (`active` False: the agent is not there)."""

    agent_id: str
    active: bool


@dataclass(frozen=True, slots=True)
class MakeOffer:
    offer: Offer


@dataclass(frozen=True, slots=True)
class EndOffer:
    """The offer's one outcome, decided."""

    offer_id: str
    agent_id: str
    outcome: OfferOutcome
    after_s: float


@dataclass(frozen=True, slots=True)
class TooLate:
    offer_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Dequeue:
    """Leave the dispatcher's waiting queue."""


@dataclass(frozen=True, slots=True)
class Finish:
    outcome: Literal["accepted", "exhausted", "cancelled"]
    reason: str
    agent_id: str | None
    offer_id: str | None


EscalationEffect = Request | Confirm | Release | MakeOffer | EndOffer | TooLate | Dequeue | Finish


# --- the step ----------------------------------------------------------------------------------


def _ask_again(
    state: EscalationState, *before: EscalationEffect
) -> tuple[EscalationState, list[EscalationEffect]]:
    state = replace(state, phase="waiting", agent_id=None)
    return state, [*before, Request(state.excluded, state.tries)]


def _end(
    state: EscalationState, offer: Offer, outcome: OfferOutcome, now: float
) -> tuple[EscalationState, list[EscalationEffect]]:
    ended = end_offer(offer, outcome, now)
    assert ended is not None, "only the pending offer is ended"
    offers = (*state.offers[:-1], ended)
    end = EndOffer(offer.offer_id, offer.agent_id, outcome, now - offer.made_at)
    if outcome == "accepted":
        state = replace(state, offers=offers, phase="done", outcome="accepted", reason="accepted")
        return state, [end, Finish("accepted", "accepted", offer.agent_id, offer.offer_id)]
    excluded = state.excluded
    if outcome in ("ignored", "missed"):
        excluded = excluded | {offer.agent_id}
    return _ask_again(replace(state, offers=offers, excluded=excluded), end)


def step(
    state: EscalationState,
    msg: EscalationMsg,
    *,
    now: float,
    offer_timeout_s: float,
    offer_id: str,
) -> tuple[EscalationState, list[EscalationEffect]]:
    """One message into the escalation; `offer_id` names the offer if this step makes one."""
    match msg:
        case AgentReserved(agent_id, waited_s):
            if state.phase != "waiting":  # cancelled meanwhile: give the agent back
                return state, [Release(agent_id, True)]
            state = replace(
                state,
                phase="confirming",
                agent_id=agent_id,
                attempt=state.attempt + 1,
                waited_s=state.waited_s + waited_s,
            )
            return state, [Confirm(state.attempt, agent_id)]
        case NoAgentLeft(reason, waited_s):
            if state.phase != "waiting":
                return state, []
            state = replace(
                state,
                phase="done",
                outcome="exhausted",
                reason=reason,
                waited_s=state.waited_s + waited_s,
            )
            return state, [Finish("exhausted", reason, None, None)]
        case PresenceConfirmed(attempt, agent_id, active):
            if state.phase != "confirming" or attempt != state.attempt:
                return state, []
            if not active:
                return _ask_again(state, Release(agent_id, False))
            offer = Offer(offer_id, agent_id, made_at=now, deadline=now + offer_timeout_s)
            state = replace(state, phase="offered", offers=(*state.offers, offer))
            return state, [MakeOffer(offer)]
        case OfferAnswered(answered_id, agent_id, accepted):
            current = state.current
            if current is not None and (current.offer_id, current.agent_id) == (
                answered_id,
                agent_id,
            ):
                return _end(state, current, "accepted" if accepted else "ignored", now)
            if any(o.offer_id == answered_id for o in state.offers):
                return state, [TooLate(answered_id, agent_id)]
            return state, []
        case OfferDeadline(expired_id):
            current = state.current
            if current is None or current.offer_id != expired_id:
                return state, []
            return _end(state, current, "missed", now)
        case AgentWentAway(agent_id):
            if state.agent_id != agent_id:
                return state, []
            if state.phase == "confirming":
                return _ask_again(state, Release(agent_id, False))
            current = state.current
            if current is not None:
                return _end(state, current, "withdrawn", now)
            return state, []
        case CancelEscalation(reason):
            return _cancel(state, reason, now)
        case _:
            assert_never(msg)


def _cancel(
    state: EscalationState, reason: str, now: float
) -> tuple[EscalationState, list[EscalationEffect]]:
    effects: list[EscalationEffect] = []
    match state.phase:
        case "done":
            return state, []
        case "waiting":
            effects.append(Dequeue())
        case "confirming":
            assert state.agent_id is not None
            effects.append(Release(state.agent_id, True))
        case "offered":
            current = state.current
            assert current is not None
            ended = end_offer(current, "withdrawn", now)
            assert ended is not None
            state = replace(state, offers=(*state.offers[:-1], ended))
            effects.append(
                EndOffer(current.offer_id, current.agent_id, "withdrawn", now - current.made_at)
            )
        case _:
            assert_never(state.phase)
    state = replace(state, phase="done", outcome="cancelled", reason=reason, agent_id=None)
    return state, [*effects, Finish("cancelled", reason, None, None)]
