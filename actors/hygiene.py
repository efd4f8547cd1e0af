"""Agent hygiene: agents who keep missing offers are set away; silent takeovers are ended.

Owns `Hygiene`, an actor fed by the durable facts (its `observe` is a `FactTap` observer) and
its pure rules `hygiene_step(state, msg, now, rules) -> (state, effects)`:

- After `routing.auto_away_after_misses` offers missed in a row (0: never) the agent is set away
  for this daemon: `PresenceChanged(agent, active=False)` goes to the domain, so routing stops
  offering them chats, and `tell_away(agent, misses)` tells them by DM. They are offered chats
  again once they set themselves active (a presence change to active), or say so with the
  "I'm available" button (`transport.slack_home`). An accepted or ignored offer resets the
  count; a withdrawn one (nobody's fault) leaves it as it is.
- A takeover with no message from either side for `routing.idle_takeover_end_s` (0: never) is
  ended: `EndTakeoverRequested(room, IDLE_ENDER)` goes to the domain, which tells the customer
  (`bot.idle_end_text`) and posts a note in the room before archiving it.

Accepts `HygieneMsg`: `Observed(fact)` (sent with `tell_nowait`: the tap never waits; a full
mailbox drops the fact and logs it), `Resumed` (a takeover a restart found open, see `resume`)
and `IdleCheck(takeover_id)` from its own timers, one per
watched takeover, armed for the idle deadline and re-armed on expiry when the takeover was
active meanwhile. `set_rules` applies a settings reload from the next fact or timer on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import assert_never

import structlog
import trio

from actors.facts import (
    AgentMessaged,
    CustomerMessaged,
    Fact,
    OfferEnded,
    TakeoverEnded,
    TakeoverStarted,
)
from actors.ports import EndTakeoverRequested, PresenceChanged, SlackFact
from actors.runtime import Actor, ActorError, ActorStopped, tell_nowait
from actors.session_takeover import IDLE_ENDER
from actors.settings import RoutingSettings

__all__ = [
    "EndIdle",
    "Hygiene",
    "HygieneRules",
    "HygieneState",
    "IdleCheck",
    "Observed",
    "Resumed",
    "SetAway",
    "Watch",
    "hygiene_step",
]

_log = structlog.get_logger("actors.hygiene")

_WATCHED = (OfferEnded, TakeoverStarted, TakeoverEnded, CustomerMessaged, AgentMessaged)


@dataclass(frozen=True, slots=True)
class HygieneRules:
    auto_away_after_misses: int = 0  # 0: never
    idle_takeover_end_s: float = 0.0  # 0: never

    @classmethod
    def from_settings(cls, routing: RoutingSettings) -> HygieneRules:
        return cls(routing.auto_away_after_misses, routing.idle_takeover_end_s)


# --- messages and effects ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    fact: Fact


@dataclass(frozen=True, slots=True)
class IdleCheck:
    takeover_id: str


@dataclass(frozen=True, slots=True)
class Resumed:
    """A takeover a restart found open: watched as if it had just started."""

    takeover_id: str
    room_id: str
    session_id: str


HygieneMsg = Observed | IdleCheck | Resumed


@dataclass(frozen=True, slots=True)
class SetAway:
    agent_id: str
    misses: int


@dataclass(frozen=True, slots=True)
class EndIdle:
    takeover_id: str
    room_id: str
    idle_s: float


@dataclass(frozen=True, slots=True)
class Arm:
    """Check the takeover's idleness at trio time `at`."""

    takeover_id: str
    at: float


HygieneEffect = SetAway | EndIdle | Arm


# --- the pure rules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Watch:
    room_id: str
    session_id: str
    last: float  # trio time of the last message either way (or of the start)


@dataclass(frozen=True, slots=True)
class HygieneState:
    misses: Mapping[str, int] = field(default_factory=dict)
    takeovers: Mapping[str, Watch] = field(default_factory=dict)
    by_session: Mapping[str, str] = field(default_factory=dict)  # session id -> takeover id


def _without(state: HygieneState, takeover_id: str) -> HygieneState:
    watch = state.takeovers.get(takeover_id)
    if watch is None:
        return state
    takeovers = {k: v for k, v in state.takeovers.items() if k != takeover_id}
    sessions = {k: v for k, v in state.by_session.items() if v != takeover_id}
    return replace(state, takeovers=takeovers, by_session=sessions)


def _touch(state: HygieneState, takeover_id: str | None, now: float) -> HygieneState:
    watch = state.takeovers.get(takeover_id or "")
    if watch is None or takeover_id is None:
        return state
    return replace(state, takeovers={**state.takeovers, takeover_id: replace(watch, last=now)})


def _missed(
    state: HygieneState, agent_id: str, outcome: str, rules: HygieneRules
) -> tuple[HygieneState, list[HygieneEffect]]:
    count = state.misses.get(agent_id, 0)
    if outcome == "missed":
        count += 1
    elif outcome in ("accepted", "ignored"):
        count = 0
    effects: list[HygieneEffect] = []
    if rules.auto_away_after_misses and count >= rules.auto_away_after_misses:
        effects.append(SetAway(agent_id, count))
        count = 0
    return replace(state, misses={**state.misses, agent_id: count}), effects


def _watch(
    state: HygieneState, tid: str, room_id: str, sid: str, now: float, rules: HygieneRules
) -> tuple[HygieneState, list[HygieneEffect]]:
    if not rules.idle_takeover_end_s:
        return state, []
    takeovers = {**state.takeovers, tid: Watch(room_id, sid, now)}
    state = replace(state, takeovers=takeovers, by_session={**state.by_session, sid: tid})
    return state, [Arm(tid, now + rules.idle_takeover_end_s)]


def hygiene_step(
    state: HygieneState, msg: HygieneMsg, now: float, rules: HygieneRules
) -> tuple[HygieneState, list[HygieneEffect]]:
    match msg:
        case Observed(fact=fact):
            match fact:
                case OfferEnded(agent_id=agent_id, outcome=outcome):
                    return _missed(state, agent_id, outcome, rules)
                case TakeoverStarted(takeover_id=tid, session_id=sid, room_id=room_id):
                    if room_id is None:
                        return state, []
                    return _watch(state, tid, room_id, sid, now, rules)
                case TakeoverEnded(takeover_id=tid):
                    return _without(state, tid), []
                case CustomerMessaged(session_id=sid):
                    return _touch(state, state.by_session.get(sid), now), []
                case AgentMessaged(takeover_id=tid):
                    return _touch(state, tid, now), []
                case _:
                    return state, []
        case Resumed(takeover_id=tid, room_id=room_id, session_id=sid):
            return _watch(state, tid, room_id, sid, now, rules)
        case IdleCheck(takeover_id=tid):
            watch = state.takeovers.get(tid)
            if watch is None:
                return state, []
            if not rules.idle_takeover_end_s:  # switched off by a reload: stop watching
                return _without(state, tid), []
            idle = now - watch.last
            if idle >= rules.idle_takeover_end_s:
                return _without(state, tid), [EndIdle(tid, watch.room_id, idle)]
            return state, [Arm(tid, watch.last + rules.idle_takeover_end_s)]
        case _:
            assert_never(msg)


# --- the actor -------------------------------------------------------------------------------------


class Hygiene(Actor[HygieneMsg]):
    """`deliver` is `Domain.deliver`; `tell_away(agent, misses)` must not wait (it queues)."""

    __slots__ = ("_deliver", "_nursery", "_rules", "_tell_away", "dropped", "state")

    def __init__(
        self,
        rules: HygieneRules,
        *,
        deliver: Callable[[SlackFact], Awaitable[None]],
        tell_away: Callable[[str, int], None] = lambda agent_id, misses: None,
        capacity: int = 4_096,
    ) -> None:
        super().__init__(capacity)
        self._rules = rules
        self._deliver = deliver
        self._tell_away = tell_away
        self._nursery: trio.Nursery | None = None
        self.state = HygieneState()
        self.dropped = 0

    @property
    def rules(self) -> HygieneRules:
        return self._rules

    def set_rules(self, rules: HygieneRules) -> None:
        self._rules = rules

    def resume(self, takeovers: Iterable[tuple[str, str, str]]) -> None:
        """Before `run`: the open takeovers (takeover id, room id, session id) a restart found
        in the journal; each gets a whole idle period from the start."""
        for takeover_id, room_id, session_id in takeovers:
            try:
                tell_nowait(self.mailbox, Resumed(takeover_id, room_id, session_id))
            except ActorError as e:
                _log.warning("hygiene_resume_dropped", takeover=takeover_id, error=str(e))

    def observe(self, fact: Fact) -> None:
        """`FactTap` observer: queue the facts the rules look at; never waits."""
        if not isinstance(fact, _WATCHED):
            return
        try:
            tell_nowait(self.mailbox, Observed(fact))
        except ActorStopped:  # shutting down: the facts of the drain need no hygiene
            _log.debug("hygiene_fact_after_stop", fact=type(fact).__name__)
        except ActorError as e:
            self.dropped += 1
            _log.warning("hygiene_fact_dropped", fact=type(fact).__name__, error=str(e))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await super().run(task_status=task_status)
            nursery.cancel_scope.cancel()

    async def handle(self, message: HygieneMsg) -> None:
        self.state, effects = hygiene_step(self.state, message, trio.current_time(), self._rules)
        for effect in effects:
            match effect:
                case SetAway(agent_id, misses):
                    _log.info("agent_set_away", agent=agent_id, misses=misses)
                    await self._deliver(PresenceChanged(agent_id, False))
                    self._tell_away(agent_id, misses)
                case EndIdle(takeover_id, room_id, idle_s):
                    _log.info("takeover_idle_ended", takeover=takeover_id, idle_s=round(idle_s, 1))
                    await self._deliver(EndTakeoverRequested(room_id, IDLE_ENDER))
                case Arm(takeover_id, at):
                    assert self._nursery is not None
                    self._nursery.start_soon(self._timer, takeover_id, at)
                case _:
                    assert_never(effect)

    async def _timer(self, takeover_id: str, at: float) -> None:
        await trio.sleep_until(at)
        try:
            tell_nowait(self.mailbox, IdleCheck(takeover_id))
        except ActorError as e:
            _log.warning("hygiene_timer_dropped", takeover=takeover_id, error=str(e))
