"""Dispatcher: the one actor that owns the routing view, a thin shell around `routing.dispatch`.

Accepts `DispatcherMsg`: escalations ask for their next agent (`RequestAgent`), give back
reservations (`ReleaseAgent`, `CancelRequest`) and report offers (`OfferStarted`,
`OfferFinished`); sessions report `TakeoverFinished`; Slack's `PresenceChanged` arrives through
the facade. Answers go to the escalation's mailbox with `tell_nowait` (nobody waits on an
escalation); the agent-related messages are forwarded to the agent's actor afterwards, so an
agent's stats see the same order as the routing view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

import structlog
import trio

from actors.messages import (
    AgentMsg,
    AgentReserved,
    AgentWentAway,
    DispatcherMsg,
    EscalationMsg,
    NoAgentLeft,
    OfferFinished,
    OfferStarted,
    RequestAgent,
    TakeoverFinished,
)
from actors.ports import PresenceChanged
from actors.routing import (
    AgentView,
    Assign,
    DispatchState,
    Exhaust,
    RoutingRules,
    WithdrawFrom,
    dispatch,
)
from actors.runtime import Actor, ActorError, tell, tell_nowait

__all__ = ["Dispatcher"]

_log = structlog.get_logger("actors.dispatcher")


class Dispatcher(Actor[DispatcherMsg]):
    __slots__ = ("_agents", "_boxes", "_restored", "_sweep_at", "state")

    def __init__(
        self,
        rules: RoutingRules,
        agents: Mapping[str, trio.MemorySendChannel[AgentMsg]],
        *,
        capacity: int = 4096,
    ) -> None:
        super().__init__(capacity)
        self.state = DispatchState.initial(rules, tuple(agents), now=0.0)
        self._restored = False
        self._agents = agents
        # escalation id -> its mailbox, for as long as it waits for or holds an agent
        self._boxes: dict[str, trio.MemorySendChannel[EscalationMsg]] = {}
        self._sweep_at = 64

    async def on_start(self) -> None:
        # agents who have not had an offer yet count as idle since the dispatcher started
        now = trio.current_time()
        if not self._restored and all(
            a.idle_since == 0.0 and a.holder is None for a in self.state.agents.values()
        ):
            self.state = DispatchState.initial(self.state.rules, tuple(self.state.agents), now)

    def restore(self, view: Mapping[str, AgentView]) -> None:
        """Before it starts: the agents as a restart found them (load, idle since), from the
        journal; presence stays unknown (away) until Slack tells it."""
        agents = {a: view.get(a, AgentView(a)) for a in self.state.agents}
        self.state = DispatchState(self.state.rules, agents)
        self._restored = True

    def set_rules(self, rules: RoutingRules) -> None:
        """New limits (a settings reload) apply from the next routing decision on."""
        self.state = DispatchState(rules, self.state.agents, self.state.waiting)

    async def handle(self, message: DispatcherMsg) -> None:
        if isinstance(message, RequestAgent):
            self._boxes[message.escalation_id] = message.to
        elif isinstance(message, PresenceChanged) and message.agent_id not in self.state.agents:
            _log.info("presence_of_unknown_agent_ignored", agent=message.agent_id)
            return
        self.state, effects = dispatch(self.state, message, trio.current_time())
        for effect in effects:
            match effect:
                case Assign(escalation_id, agent_id, waited_s):
                    self._answer(escalation_id, AgentReserved(agent_id, waited_s))
                    _log.debug("agent_reserved", escalation=escalation_id, agent=agent_id)
                case Exhaust(escalation_id, reason, waited_s):
                    self._answer(escalation_id, NoAgentLeft(reason, waited_s))
                    self._boxes.pop(escalation_id, None)
                case WithdrawFrom(escalation_id, agent_id):
                    self._answer(escalation_id, AgentWentAway(agent_id))
                case _:
                    assert_never(effect)
        await self._forget_or_forward(message)
        self._sweep()

    def _answer(self, escalation_id: str, answer: EscalationMsg) -> None:
        box = self._boxes.get(escalation_id)
        if box is None:
            _log.warning("escalation_unknown_to_dispatcher", escalation=escalation_id)
            return
        try:
            tell_nowait(box, answer)
        except ActorError as e:
            _log.warning("escalation_unreachable", escalation=escalation_id, error=str(e))

    async def _forget_or_forward(self, message: DispatcherMsg) -> None:
        match message:
            case OfferStarted(agent_id=agent_id) | TakeoverFinished(agent_id=agent_id):
                await self._forward(agent_id, message)
            case OfferFinished(escalation_id=escalation_id, agent_id=agent_id):
                await self._forward(agent_id, message)
                if message.outcome == "accepted":
                    self._boxes.pop(escalation_id, None)
            case _:
                pass

    async def _forward(self, agent_id: str, message: AgentMsg) -> None:
        box = self._agents.get(agent_id)
        if box is not None:
            try:
                await tell(box, message)
            except ActorError:
                _log.warning("agent_actor_unreachable", agent=agent_id)

    def _sweep(self) -> None:
        """Drop addresses of escalations that neither wait nor hold an agent (ended ones)."""
        if len(self._boxes) <= self._sweep_at:
            return
        needed = {w.escalation_id for w in self.state.waiting}
        needed.update(a.holder for a in self.state.agents.values() if a.holder is not None)
        self._boxes = {e: box for e, box in self._boxes.items() if e in needed}
        self._sweep_at = 2 * len(self._boxes) + 64
