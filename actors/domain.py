"""The domain's facade: what the chat API, the Slack actor and the daemon call.

Owns `Domain`: it builds the actors (one dispatcher, one actor per agent, then one session per
customer conversation and one escalation per escalation), runs them in one nursery under the
trio start protocol, and offers the customer side (`open_session`, `customer_says`, ...), the
Slack side (`deliver`) and `stats()`. Slack commands leave through the channel given to the
constructor; durable facts through the `FactSink`.

Non-blocking calls are plain methods (`check_token`, `events_after`, `stats`); the ones that wait
are `async` and take no timeout: the caller places it (`with trio.fail_after(...)`).

After a restart the domain is built from the journal's durable state (`recovered=`, from
`actors.restore.rebuild`): sessions, transcripts, stats and open takeovers come back as they
were, and `run` resumes what the stop interrupted (see `actors.restore`). Escalations that were
searching ask for their next agent once every agent's presence has been heard again, or after
`presence_grace_s`, whichever comes first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import assert_never

import structlog
import trio

from actors.agent import AgentActor
from actors.bot import Bot
from actors.context import CustomerRecord, DomainContext, new_id
from actors.dispatcher import Dispatcher
from actors.durable_state import DurableState
from actors.errors import DomainStopped, InvalidInput, SessionClosed, UnknownSession
from actors.facts import FactSink, SessionStarted
from actors.leads import Lead, check_lead
from actors.messages import CloseSession, CustomerEvent, CustomerSays, LeaveLead, SessionOpened
from actors.ports import (
    EndTakeoverRequested,
    OfferAnswered,
    PresenceChanged,
    RoomMessagePosted,
    SlackCommand,
    SlackFact,
    TellTooLate,
    TranscriptLine,
)
from actors.restore import Restored, restore_domain
from actors.routing import RoutingRules
from actors.runtime import ActorError, ActorStopped, ask, contained, supervise, tell, tell_nowait
from actors.session import SessionActor
from actors.settings import BotSettings, RoutingSettings
from actors.stats import DomainStats

__all__ = ["Domain"]

_log = structlog.get_logger("actors.domain")

_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_NAME = 200
_MAX_EMAIL = 320


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _optional(field: str, value: str | None, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters of text")
    return value.strip()


class Domain:
    """The actor system of one daemon. Start it with `await nursery.start(domain.run)`."""

    def __init__(
        self,
        *,
        routing: RoutingSettings,
        bot_settings: BotSettings,
        bot: Bot,
        slack: trio.MemorySendChannel[SlackCommand],
        sink: FactSink,
        agents: Iterable[str],
        is_open: Callable[[], bool] = lambda: True,
        next_opening: Callable[[], dt.datetime | None] = lambda: None,
        wall_clock: Callable[[], float] = time.time,
        greeting: str = "",
        slack_timeout_s: float = 10.0,
        room_timeout_s: float = 900.0,
        shutdown_grace_s: float = 5.0,
        recovered: DurableState | None = None,
        presence_grace_s: float = 30.0,
    ) -> None:
        """`recovered`: the journal's state after a restart (build the domain inside `trio.run`
        then); it is copied, so the journal sink may go on folding new facts into it."""
        self._agents = {agent_id: AgentActor(agent_id) for agent_id in dict.fromkeys(agents)}
        self._dispatcher = Dispatcher(
            RoutingRules.from_settings(routing),
            {agent_id: actor.mailbox for agent_id, actor in self._agents.items()},
        )
        self._ctx = DomainContext(
            sink=sink,
            slack=slack,
            dispatcher=self._dispatcher.mailbox,
            agents={agent_id: actor.mailbox for agent_id, actor in self._agents.items()},
            bot=bot,
            texts=bot_settings,
            is_open=is_open,
            next_opening=next_opening,
            wall_clock=wall_clock,
            greeting=greeting,
            offer_timeout_s=routing.offer_timeout_s,
            slack_timeout_s=slack_timeout_s,
            room_timeout_s=room_timeout_s,
            shutdown_grace_s=shutdown_grace_s,
        )
        self._presence_grace_s = presence_grace_s
        self._heard: set[str] = set()
        self._restored: Restored | None = None
        if recovered is not None:
            self._restored = restore_domain(
                self._ctx,
                recovered,
                self._agents,
                trio_now=trio.current_time(),
                wall_now=wall_clock(),
            )
            self._dispatcher.restore(self._restored.view)

    # --- lifetime -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every actor until cancelled; cancelling withdraws pending offers (shielded,
        bounded by `shutdown_grace_s`)."""
        try:
            async with trio.open_nursery() as nursery:
                for agent_id, agent in self._agents.items():
                    await nursery.start(partial(supervise, agent, name=f"agent:{agent_id}"))
                await nursery.start(partial(supervise, self._dispatcher, name="dispatcher"))
                self._ctx.nursery = nursery
                if self._restored is not None:
                    await self._resume(nursery, self._restored)
                    self._restored = None
                _log.info("domain_started", agents=len(self._agents))
                task_status.started()
        finally:
            self._ctx.nursery = None
            _log.info("domain_stopped")

    async def _resume(self, nursery: trio.Nursery, restored: Restored) -> None:
        """Start what the journal shows unfinished: sessions first (each finishes its own
        interrupted steps as it starts), then escalations; tell Slack again what may not have
        reached it."""
        for session in restored.sessions:
            await nursery.start(partial(contained, session, name="session"))
        for escalation in restored.escalations:
            await nursery.start(partial(contained, escalation, name="escalation"))
        for command in restored.resend:
            await tell(self._ctx.slack, command)
        if not self._agents:
            self._ctx.presence_settled.set()
        elif restored.escalations:
            nursery.start_soon(self._settle_presence_after_grace)
        _log.info(
            "domain_restored",
            sessions=len(self._ctx.sessions),
            resumed_sessions=len(restored.sessions),
            resumed_escalations=len(restored.escalations),
            open_rooms=len(self._ctx.rooms),
            resent=len(restored.resend),
        )

    async def _settle_presence_after_grace(self) -> None:
        with trio.move_on_after(self._presence_grace_s):
            await self._ctx.presence_settled.wait()
            return
        if not self._ctx.presence_settled.is_set():
            unheard = sorted(set(self._agents) - self._heard)
            _log.warning("presence_not_heard", agents=unheard, grace_s=self._presence_grace_s)
            self._ctx.presence_settled.set()

    def apply_settings(
        self,
        routing: RoutingSettings,
        bot_settings: BotSettings,
        *,
        bot: Bot | None = None,
        greeting: str | None = None,
    ) -> None:
        """A settings reload: timeouts, tries, limits and texts apply to what happens next; a
        new `bot` (rebuilt off the loop by the caller) answers from the next message on."""
        self._ctx.offer_timeout_s = routing.offer_timeout_s
        self._ctx.texts = bot_settings
        self._dispatcher.set_rules(RoutingRules.from_settings(routing))
        if bot is not None:
            self._ctx.bot = bot
        if greeting is not None:
            self._ctx.greeting = greeting

    # --- the customer side --------------------------------------------------------------------

    async def open_session(
        self, customer_id: str | None = None, name: str | None = None, email: str | None = None
    ) -> SessionOpened:
        """A new session; a returning `customer_id` keeps its transcript across sessions."""
        ctx = self._ctx
        nursery = ctx.spawner()
        if customer_id is None:
            customer_id = secrets.token_hex(8)
        elif not isinstance(customer_id, str) or not _CUSTOMER_ID.match(customer_id):
            raise InvalidInput("customer_id: 1 to 64 letters, digits, '_' or '-'")
        name = _optional("name", name, _MAX_NAME)
        email = _optional("email", email, _MAX_EMAIL)
        customer = ctx.customers.get(customer_id)
        if customer is None:
            customer = ctx.customers[customer_id] = CustomerRecord(customer_id, name, email)
        else:
            customer.name = name or customer.name
            customer.email = email or customer.email
        token = secrets.token_urlsafe(32)
        session_id = new_id("s")
        session = SessionActor(ctx, session_id, customer, _digest(token))
        fact = SessionStarted(
            session_id,
            customer_id,
            customer.name,
            customer.email,
            session.token_digest,
            ctx.wall_clock(),
        )
        await ctx.sink.record(fact)
        ctx.sessions[session_id] = session
        ctx.open_sessions += 1
        try:
            await nursery.start(partial(contained, session, name="session"))
        except RuntimeError:  # the nursery is closing: the domain is shutting down
            raise DomainStopped("the domain is shutting down") from None
        _log.info("session_opened", session=session_id, customer=customer_id)
        return SessionOpened(session_id, customer_id, token)

    def check_token(self, session_id: str, token: str) -> bool:
        """Constant-time check of a session's token; False for an unknown session."""
        session = self._ctx.sessions.get(session_id)
        expected = session.token_digest if session is not None else _digest("")
        ok = hmac.compare_digest(expected, _digest(token if isinstance(token, str) else ""))
        return ok and session is not None

    async def customer_says(self, session_id: str, text: str) -> int:
        """The customer's message; returns its seq once its fact is durable."""
        session = self._session(session_id)
        if session.closed:
            raise SessionClosed(session_id)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput("text: a message needs some text")
        try:
            return await ask(session.mailbox, lambda reply: CustomerSays(text, reply))
        except ActorStopped:
            raise SessionClosed(session_id) from None

    async def close_session(self, session_id: str) -> None:
        """Close the session (ends a takeover, cancels a search); closing twice is harmless."""
        session = self._session(session_id)
        if session.closed:
            return
        with contextlib.suppress(ActorStopped):
            await ask(session.mailbox, CloseSession)

    def events_after(self, session_id: str, after_seq: int) -> list[CustomerEvent]:
        return self._session(session_id).events.after(after_seq)

    async def wait_events(self, session_id: str, after_seq: int) -> list[CustomerEvent]:
        """The events after `after_seq`, waiting until there is at least one."""
        return await self._session(session_id).events.wait_after(after_seq)

    def transcript(self, session_id: str) -> tuple[TranscriptLine, ...]:
        """The customer's whole transcript, every session of theirs included."""
        return tuple(self._session(session_id).customer.lines)

    def mode(self, session_id: str) -> str:
        """bot, searching, takeover or closed."""
        return self._session(session_id).mode

    async def leave_lead(
        self, session_id: str, email: str, question: str, name: str | None = None
    ) -> Lead:
        """The customer's email and question, for when nobody could help: recorded with their
        transcript and posted to Slack's leads channel; the customer is told (a bot_message)
        when to expect an answer. Leaving the same lead again answers the first one.
        Raises `InvalidInput` (bad email, blank question, long name) and `TooManyLeads`."""
        session = self._session(session_id)
        if session.closed:
            raise SessionClosed(session_id)
        email, name, question = check_lead(email, name, question)
        try:
            return await ask(session.mailbox, lambda reply: LeaveLead(email, name, question, reply))
        except ActorStopped:
            raise SessionClosed(session_id) from None

    def leads(self) -> tuple[Lead, ...]:
        """The leads left (the latest 10,000), oldest first."""
        return self._ctx.leads.all()

    def _session(self, session_id: str) -> SessionActor:
        session = self._ctx.sessions.get(session_id)
        if session is None:
            raise UnknownSession(session_id)
        return session

    # --- the Slack side -----------------------------------------------------------------------

    async def deliver(self, fact: SlackFact) -> None:
        """An inbound Slack fact; unknown offers, rooms and agents are logged and ignored."""
        ctx = self._ctx
        match fact:
            case OfferAnswered(offer_id, agent_id, _):
                escalation = ctx.offers.get(offer_id)
                if escalation is not None:
                    if not escalation.accepts_click():
                        _log.warning("offer_answer_dropped", offer=offer_id, agent=agent_id)
                        return
                    try:
                        tell_nowait(escalation.mailbox, fact)
                        return
                    except ActorError:
                        pass  # it just ended: the click is too late
                if offer_id in ctx.ended_offers:
                    _log.info("offer_answer_too_late", offer=offer_id, agent=agent_id)
                    await tell(ctx.slack, TellTooLate(offer_id, agent_id))
                else:
                    _log.warning("offer_answer_unknown", offer=offer_id, agent=agent_id)
            case RoomMessagePosted(room_id=room_id) | EndTakeoverRequested(room_id=room_id):
                session = ctx.rooms.get(room_id)
                if session is None:  # kept a while: the room may be about to be routed
                    kept = ctx.unrouted.hold(room_id, fact)
                    _log.info("room_unknown", room=room_id, fact=type(fact).__name__, kept=kept)
                    return
                try:
                    await tell(session.mailbox, fact)
                except ActorError:
                    _log.warning("room_session_gone", room=room_id)
            case PresenceChanged(agent_id, active):
                if agent_id not in self._agents:
                    _log.info("presence_of_unknown_agent_ignored", agent=agent_id)
                    return
                _log.debug("presence_changed", agent=agent_id, active=active)
                await tell(self._dispatcher.mailbox, fact)
                if not self._ctx.presence_settled.is_set():
                    self._heard.add(agent_id)
                    if len(self._heard) == len(self._agents):
                        self._ctx.presence_settled.set()
            case _:
                assert_never(fact)

    # --- stats --------------------------------------------------------------------------------

    def stats(self) -> DomainStats:
        ctx, view = self._ctx, self._dispatcher.state
        agents = tuple(
            self._agents[agent_id].statistics(agent, view.rules)
            for agent_id, agent in view.agents.items()
        )
        live = tuple(e.statistics() for e in ctx.escalations.values())
        log = ctx.escalation_log
        by_outcome = {**log.counts, "searching": len(ctx.escalations)}
        return DomainStats(agents, live + tuple(log.finished), by_outcome, ctx.open_sessions)
