"""EscalationActor: one escalation's life, a thin shell around the pure `step`.

The escalation walks its chain one offer at a time: it asks the dispatcher for an agent, confirms
the agent's presence through the Slack port, makes the offer and starts its deadline timer (a
cancel scope with `routing.offer_timeout_s`; the timer is delivered as an `OfferDeadline`
message). Its mailbox is the one place an offer's fate is decided, so the first of Accept,
Ignore, the deadline, the agent going away or the customer leaving wins and every later click is
told it came too late. Accepts `EscalationMsg`; everything is sent to it with `tell_nowait`.

On shutdown (cancellation) a pending offer is withdrawn within a shielded, bounded scope: the
DM is updated and the outcome recorded; the escalation itself stays open for a replay to resume.

Resumed after a restart (`restored` state from `actors.restore`): an offer the journal shows
accepted finishes the escalation at once; a pending offer is withdrawn (recorded, DM updated,
nobody blamed); then, once the agents' presence is known again (`ctx.presence_settled`), the
chain goes on with the same exclusions and tries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, assert_never

import structlog
import trio

from actors.context import CustomerRecord, DomainContext, new_id
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
from actors.facts import EscalationEnded, OfferEnded, OfferMade
from actors.messages import (
    CancelRequest,
    EscalationFinished,
    EscalationMsg,
    OfferDeadline,
    OfferFinished,
    OfferStarted,
    PresenceConfirmed,
    ReleaseAgent,
    RequestAgent,
    SessionMsg,
)
from actors.ports import (
    ConfirmPresence,
    OfferOutcome,
    OfferView,
    PostOffer,
    ResolveOffer,
    TellTooLate,
)
from actors.routing import end_offer
from actors.runtime import Actor, ActorError, ask, tell, tell_nowait
from actors.stats import EscalationStats, OfferStats

__all__ = ["EscalationActor"]

_log = structlog.get_logger("actors.escalation")

# Room kept in an escalation's mailbox for the domain's own messages: Slack clicks are refused
# (logged) rather than allowed to fill it.
MAILBOX = 64
CLICK_ROOM = 32


@dataclass(frozen=True, slots=True)
class _Who:
    session_id: str
    session: trio.MemorySendChannel[SessionMsg]
    customer: CustomerRecord


class EscalationActor(Actor[EscalationMsg]):
    __slots__ = ("_ctx", "_nursery", "_resumed", "_timer", "_who", "state")

    def __init__(
        self,
        ctx: DomainContext,
        *,
        escalation_id: str,
        session_id: str,
        session: trio.MemorySendChannel[SessionMsg],
        customer: CustomerRecord,
        restored: EscalationState | None = None,
    ) -> None:
        super().__init__(MAILBOX)
        self._ctx = ctx
        self._who = _Who(session_id, session, customer)
        self._resumed = restored is not None
        if restored is not None:
            assert restored.escalation_id == escalation_id
            self.state = restored
        else:
            self.state = EscalationState(escalation_id, since=trio.current_time())
        self._nursery: trio.Nursery | None = None
        self._timer: trio.CancelScope | None = None

    @property
    def escalation_id(self) -> str:
        return self.state.escalation_id

    def accepts_click(self) -> bool:
        return self.queued < MAILBOX - CLICK_ROOM

    def statistics(self) -> EscalationStats:
        s = self.state
        return EscalationStats(
            escalation_id=s.escalation_id,
            session_id=self._who.session_id,
            outcome=s.outcome,
            reason=s.reason,
            agent_id=s.agent_id if s.outcome == "accepted" else None,
            offers=tuple(
                OfferStats(
                    o.offer_id,
                    o.agent_id,
                    o.outcome,
                    None if o.ended_at is None else o.ended_at - o.made_at,
                )
                for o in s.offers
            ),
            waited_s=s.waited_s,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if not self._resumed:
                    await self._perform([Request(self.state.excluded, self.state.tries)])
                    await super().run(task_status=task_status)
                elif await self._resume():
                    task_status.started()  # it finished while resuming
                    self.stop()
                else:
                    await super().run(task_status=task_status)
                nursery.cancel_scope.cancel()
        finally:
            self._retire()
            if self.state.current is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(self._ctx.shutdown_grace_s):
                    await self._withdraw_on_shutdown()

    async def _resume(self) -> bool:
        """Go on after a restart; True when that finished the escalation."""
        s = self.state
        last = s.offers[-1] if s.offers else None
        if s.outcome == "accepted" and last is not None:
            await self._finish("accepted", "accepted", last.agent_id, last.offer_id)
            return True
        current = s.current
        if current is not None:
            now = trio.current_time()
            ended = end_offer(current, "withdrawn", now)
            assert ended is not None
            self.state = replace(s, phase="waiting", agent_id=None, offers=(*s.offers[:-1], ended))
            await self._end_offer(
                current.offer_id, current.agent_id, "withdrawn", now - current.made_at
            )
        assert self._nursery is not None
        self._nursery.start_soon(self._request_when_settled)
        return False

    async def _request_when_settled(self) -> None:
        await self._ctx.presence_settled.wait()
        if self.state.phase == "waiting":  # not cancelled meanwhile
            await self._perform([Request(self.state.excluded, self.state.tries)])

    async def handle(self, message: EscalationMsg) -> None:
        self.state, effects = step(
            self.state,
            message,
            now=trio.current_time(),
            offer_timeout_s=self._ctx.offer_timeout_s,
            offer_id=new_id("o"),
        )
        await self._perform(effects)

    # --- effects --------------------------------------------------------------------------

    async def _perform(self, effects: list[EscalationEffect]) -> None:
        ctx, eid = self._ctx, self.state.escalation_id
        for effect in effects:
            match effect:
                case Request(excluded, tries):
                    request = RequestAgent(eid, excluded, tries, self.state.since, self.mailbox)
                    await tell(ctx.dispatcher, request)
                case Confirm(attempt, agent_id):
                    assert self._nursery is not None
                    self._nursery.start_soon(self._confirm, attempt, agent_id)
                case Release(agent_id, active):
                    await tell(ctx.dispatcher, ReleaseAgent(eid, agent_id, active))
                case MakeOffer(offer):
                    await self._make_offer(offer.offer_id, offer.agent_id, offer.deadline)
                case EndOffer(offer_id, agent_id, outcome, after_s):
                    await self._end_offer(offer_id, agent_id, outcome, after_s)
                case TooLate(offer_id, agent_id):
                    _log.info("offer_answer_too_late", offer=offer_id, agent=agent_id)
                    await tell(ctx.slack, TellTooLate(offer_id, agent_id))
                case Dequeue():
                    await tell(ctx.dispatcher, CancelRequest(eid))
                case Finish(outcome, reason, agent_id, offer_id):
                    await self._finish(outcome, reason, agent_id, offer_id)
                case _:
                    assert_never(effect)

    async def _confirm(self, attempt: int, agent_id: str) -> None:
        active: bool
        try:
            with trio.fail_after(self._ctx.slack_timeout_s):
                active = await ask(self._ctx.slack, lambda r: ConfirmPresence(agent_id, r))
        except Exception as e:  # Slack down or slow: do not offer to someone unconfirmed
            _log.warning("presence_unconfirmed", agent=agent_id, error=repr(e))
            active = False
        self._tell_self(PresenceConfirmed(attempt, agent_id, active))

    def _tell_self(self, message: EscalationMsg) -> None:
        try:
            tell_nowait(self.mailbox, message)
        except ActorError as e:
            _log.warning("escalation_unreachable", escalation=self.escalation_id, error=str(e))

    async def _make_offer(self, offer_id: str, agent_id: str, deadline: float) -> None:
        ctx, eid, customer = self._ctx, self.state.escalation_id, self._who.customer
        ctx.offers[offer_id] = self
        # the deadline runs first: whatever fails below, the offer still ends and the chain goes on
        self._timer = trio.CancelScope(deadline=deadline)
        assert self._nursery is not None
        self._nursery.start_soon(self._deadline, self._timer, offer_id)
        at = ctx.wall_clock()
        expires_at = at + max(0.0, deadline - trio.current_time())
        await ctx.sink.record(OfferMade(offer_id, eid, agent_id, at, expires_at))
        await tell(ctx.dispatcher, OfferStarted(eid, offer_id, agent_id))
        view = OfferView(
            offer_id=offer_id,
            escalation_id=eid,
            agent_id=agent_id,
            customer_id=customer.customer_id,
            customer_name=customer.display_name,
            last_message=customer.last_customer_message(),
            excerpt=customer.excerpt(),
            expires_at=expires_at,
        )
        await tell(ctx.slack, PostOffer(view))
        _log.info("offer_made", escalation=eid, offer=offer_id, agent=agent_id)

    async def _deadline(self, scope: trio.CancelScope, offer_id: str) -> None:
        with scope:
            await trio.sleep_forever()
        if trio.current_time() >= scope.deadline:
            self._tell_self(OfferDeadline(offer_id))

    async def _end_offer(
        self, offer_id: str, agent_id: str, outcome: OfferOutcome, after_s: float
    ) -> None:
        ctx, eid = self._ctx, self.state.escalation_id
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # the routing view first: the agent is free (or their load counted) whatever comes next
        await tell(ctx.dispatcher, OfferFinished(eid, offer_id, agent_id, outcome, after_s))
        await ctx.sink.record(OfferEnded(offer_id, eid, agent_id, outcome, ctx.wall_clock()))
        if outcome != "accepted":  # an accepted DM is resolved with its room, by the session
            await tell(ctx.slack, ResolveOffer(offer_id, agent_id, outcome))
        _log.info(f"offer_{outcome}", escalation=eid, offer=offer_id, agent=agent_id)

    async def _finish(
        self,
        outcome: Literal["accepted", "exhausted", "cancelled"],
        reason: str,
        agent_id: str | None,
        offer_id: str | None,
    ) -> None:
        ctx, s = self._ctx, self.state
        fact = EscalationEnded(
            s.escalation_id,
            self._who.session_id,
            outcome,
            reason,
            agent_id,
            s.waited_s,
            ctx.wall_clock(),
        )
        await ctx.sink.record(fact)
        ctx.escalation_log.add(self.statistics())
        ctx.escalations.pop(s.escalation_id, None)
        _log.info(f"escalation_{outcome}", escalation=s.escalation_id, reason=reason)
        finished = EscalationFinished(s.escalation_id, outcome, reason, agent_id, offer_id)
        try:
            await tell(self._who.session, finished)
        except ActorError:
            _log.warning("session_gone", escalation=s.escalation_id, session=self._who.session_id)
        self.finish()

    def _retire(self) -> None:
        """The actor stopped: later clicks on its offers are answered as too late."""
        ctx = self._ctx
        for offer in self.state.offers:
            if ctx.offers.get(offer.offer_id) is self:
                del ctx.offers[offer.offer_id]
                ctx.ended_offers.add(offer.offer_id, offer.agent_id)
        if ctx.escalations.get(self.state.escalation_id) is self:
            del ctx.escalations[self.state.escalation_id]

    async def _withdraw_on_shutdown(self) -> None:
        offer = self.state.current
        assert offer is not None
        ended = end_offer(offer, "withdrawn", trio.current_time())
        assert ended is not None
        self.state = replace(self.state, offers=(*self.state.offers[:-1], ended))
        ctx = self._ctx
        fact = OfferEnded(
            offer.offer_id, self.escalation_id, offer.agent_id, "withdrawn", ctx.wall_clock()
        )
        await ctx.sink.record(fact)
        await tell(ctx.slack, ResolveOffer(offer.offer_id, offer.agent_id, "withdrawn"))
        _log.info(
            "offer_withdrawn_on_shutdown",
            escalation=self.escalation_id,
            offer=offer.offer_id,
            agent=offer.agent_id,
        )
