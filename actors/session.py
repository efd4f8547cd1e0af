"""SessionActor: one customer's conversation, in bot mode, searching, or taken over.

Accepts `SessionMsg`: the customer's messages and close (from the facade), the end of its
escalation, the takeover's room being ready, and the room's messages and end request (Slack
facts routed by room). Every customer-visible event is backed by a durable fact recorded first;
`seq` numbers are per session and strictly increasing.

- Bot mode: the bot answers; a hand-off, or an answer below `bot.confidence_threshold`,
  escalates (closed hours: the closed text instead). With `bot.live_chat_first`, the first
  customer message of a session escalates at once when the team is open (closed: the bot
  answers it as usual).
- Leads: a `LeaveLead` (the customer's email and question, when nobody could help) is taken
  in any mode but closed (`actors.session_leads`).
- Searching: messages join the transcript; the bot says the still-looking text once.
- Takeover: customer lines are relayed to the room in order, room lines to the customer once
  each (Slack redeliveries are recognised by message id); `/end-takeover` hands back to the bot.

A closed session stays alive only until its escalation or room setup has ended. An idle session
is this object, its mailbox and its task: keep it lean. A session rebuilt from the journal after
a restart (`actors.restore`) is given a `SessionResume`: instead of the greeting, its start
finishes what the restart interrupted (`actors.session_resume`).
"""

from __future__ import annotations

from functools import partial
from typing import assert_never

import structlog

from actors.bot import BotAnswer, HandOff
from actors.context import CustomerRecord, DomainContext, new_id
from actors.errors import SessionClosed
from actors.escalation import EscalationActor
from actors.facts import (
    BotReplied,
    CustomerMessaged,
    EscalationEnded,
    EscalationStarted,
    EscalationTrigger,
    SessionEnded,
)
from actors.messages import (
    CancelEscalation,
    CloseSession,
    CustomerSays,
    EscalationFinished,
    EventType,
    LeaveLead,
    SessionMsg,
    TakeoverReady,
)
from actors.ports import (
    AgentProfile,
    EndTakeoverRequested,
    RoomMessagePosted,
    TranscriptLine,
)
from actors.runtime import Actor, ActorError, contained, tell, tell_nowait
from actors.session_events import EventLog
from actors.session_leads import leave_lead
from actors.session_resume import SessionResume, resume_session
from actors.session_takeover import (
    BOT_ID,
    BOT_NAME,
    IDLE_ENDER,
    agent_line,
    end_takeover,
    held_until_ready,
    relay,
    start_takeover,
    takeover_ready,
)
from actors.stats import EscalationStats
from actors.takeover import Takeover

__all__ = ["SessionActor"]

_log = structlog.get_logger("actors.session")

MAILBOX = 16


class SessionActor(Actor[SessionMsg]):
    __slots__ = (
        "_resume",
        "closed",
        "ctx",
        "customer",
        "escalation_id",
        "events",
        "session_id",
        "still_looking_sent",
        "takeover",
        "token_digest",
    )

    def __init__(
        self,
        ctx: DomainContext,
        session_id: str,
        customer: CustomerRecord,
        token_digest: str,
        *,
        events: EventLog | None = None,
        resume: SessionResume | None = None,
    ) -> None:
        super().__init__(MAILBOX)
        self.ctx = ctx
        self.session_id = session_id
        self.customer = customer
        self.token_digest = token_digest
        self.events = events if events is not None else EventLog()
        self._resume = resume
        self.closed = False
        self.escalation_id: str | None = None
        self.still_looking_sent = False
        self.takeover: Takeover | None = None

    @property
    def mode(self) -> str:
        if self.closed:
            return "closed"
        if self.takeover is not None:
            return "takeover"
        return "searching" if self.escalation_id else "bot"

    async def on_start(self) -> None:
        if self._resume is not None:
            plan, self._resume = self._resume, None
            await resume_session(self, plan)
        elif self.ctx.greeting:
            await self.bot_says(self.ctx.greeting, "bot_message")

    async def handle(self, message: SessionMsg) -> None:
        match message:
            case CustomerSays(text, reply):
                if self.closed:
                    reply.fail(SessionClosed(self.session_id))
                    return
                seq, line = await self._customer_line(text)
                reply.send(seq)
                await self.after_customer_line(seq, line)
            case CloseSession(reply):
                if not self.closed:
                    await self._close()
                reply.send(None)
            case LeaveLead():
                await leave_lead(self, message)
            case EscalationFinished():
                await self._escalation_finished(message)
            case TakeoverReady(takeover_id, room, profile):
                await takeover_ready(self, takeover_id, room, profile)
            case RoomMessagePosted():
                await agent_line(self, message)
            case EndTakeoverRequested(room_id, user_id):
                tk = self.takeover
                if held_until_ready(self, message):
                    return
                if tk is None or tk.room_id != room_id:
                    _log.info("end_takeover_for_other_room", session=self.session_id, room=room_id)
                    return
                _log.info("takeover_end_requested", session=self.session_id, user=user_id)
                await end_takeover(self, tk, by="idle" if user_id == IDLE_ENDER else "agent")
            case _:
                assert_never(message)
        if self.closed and self.escalation_id is None and self.takeover is None:
            self.finish()

    # --- customer side ------------------------------------------------------------------------

    def emit(
        self, kind: EventType, text: str | None, at: float, agent: AgentProfile | None = None
    ) -> int:
        return self.events.append(kind, text, agent, at)

    async def _customer_line(self, text: str) -> tuple[int, TranscriptLine]:
        ctx, at = self.ctx, self.ctx.wall_clock()
        seq = self.events.next_seq
        await ctx.sink.record(
            CustomerMessaged(self.session_id, self.customer.customer_id, seq, text, at)
        )
        line = TranscriptLine(
            "customer", self.customer.customer_id, self.customer.display_name, text, at
        )
        self.customer.lines.append(line)
        self.emit("customer_message", text, at)
        return seq, line

    async def bot_says(self, text: str, kind: EventType) -> None:
        assert kind in ("bot_message", "searching", "no_agent_available")
        ctx, at = self.ctx, self.ctx.wall_clock()
        seq = self.events.next_seq
        await ctx.sink.record(
            BotReplied(self.session_id, self.customer.customer_id, seq, kind, text, at)
        )
        self.customer.lines.append(TranscriptLine("bot", BOT_ID, BOT_NAME, text, at))
        self.emit(kind, text, at)

    async def after_customer_line(self, seq: int, line: TranscriptLine) -> None:
        """Relay the customer's line to the room, or let the bot answer it (or escalate)."""
        ctx, text = self.ctx, line.text
        tk = self.takeover
        if tk is not None:
            if tk.room_id is None:
                tk.pending.append((seq, line))
            else:
                await tell(ctx.slack, relay(tk, seq, line))
            return
        if self.escalation_id is not None:
            if not self.still_looking_sent:
                self.still_looking_sent = True
                await self.bot_says(ctx.texts.still_looking_text, "bot_message")
            return
        if ctx.texts.live_chat_first and _first_customer_message(self.events) and ctx.is_open():
            await self._escalate("live_chat_first")
            return
        answer = ctx.bot.reply(text)
        match answer:
            case HandOff(reason):
                await self._escalate(reason)
            case BotAnswer(reply_text, confidence):
                if confidence < ctx.texts.confidence_threshold:
                    await self._escalate("low_confidence")
                else:
                    await self.bot_says(reply_text, "bot_message")

    # --- escalation ---------------------------------------------------------------------------

    async def _escalate(self, trigger: EscalationTrigger) -> None:
        ctx = self.ctx
        eid = new_id("e")
        at = ctx.wall_clock()
        await ctx.sink.record(
            EscalationStarted(eid, self.session_id, self.customer.customer_id, trigger, at)
        )
        if not ctx.is_open():
            await ctx.sink.record(
                EscalationEnded(eid, self.session_id, "closed", "closed_hours", None, 0.0, at)
            )
            ctx.escalation_log.add(
                EscalationStats(eid, self.session_id, "closed", "closed_hours", None, (), 0.0)
            )
            _log.info("escalation_closed_hours", session=self.session_id, escalation=eid)
            await self.bot_says(ctx.texts.closed_text, "no_agent_available")
            return
        self.escalation_id = eid
        self.still_looking_sent = False
        await self.bot_says(ctx.texts.searching_text, "searching")
        escalation = EscalationActor(
            ctx,
            escalation_id=eid,
            session_id=self.session_id,
            session=self.mailbox,
            customer=self.customer,
        )
        ctx.escalations[eid] = escalation
        _log.info("escalation_started", session=self.session_id, escalation=eid, trigger=trigger)
        await ctx.spawner().start(partial(contained, escalation, name="escalation"))

    async def _escalation_finished(self, done: EscalationFinished) -> None:
        if done.escalation_id != self.escalation_id:
            _log.warning("unknown_escalation_finished", escalation=done.escalation_id)
            return
        self.escalation_id = None
        ctx = self.ctx
        match done.outcome:
            case "accepted":
                assert done.agent_id is not None and done.offer_id is not None
                await start_takeover(self, done.escalation_id, done.agent_id, done.offer_id)
            case "exhausted":
                if not self.closed:
                    await self.bot_says(ctx.texts.no_agent_text, "no_agent_available")
            case "cancelled" | "closed":
                pass

    # --- close --------------------------------------------------------------------------------

    async def _close(self) -> None:
        ctx = self.ctx
        self.closed = True
        ctx.open_sessions -= 1
        if self.escalation_id is not None:
            escalation = ctx.escalations.get(self.escalation_id)
            if escalation is not None:
                try:
                    tell_nowait(escalation.mailbox, CancelEscalation("customer_left"))
                except ActorError as e:
                    _log.warning(
                        "escalation_unreachable", escalation=self.escalation_id, error=str(e)
                    )
        tk = self.takeover
        if tk is not None and tk.room_id is not None:
            await end_takeover(self, tk, by="customer")
        at, seq = ctx.wall_clock(), self.events.next_seq
        await ctx.sink.record(SessionEnded(self.session_id, seq, at))
        self.emit("closed", None, at)
        _log.info("session_closed", session=self.session_id)


def _first_customer_message(events: EventLog) -> bool:
    """Whether the customer message just received is the session's first one."""
    said = (e for e in events.after(0) if e.type == "customer_message")
    next(said, None)
    return next(said, None) is None
