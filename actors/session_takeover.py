"""The takeover half of a session: room ready, relay from the room, and the end (design §2.6-§2.8).

Owns the steps a `SessionActor` takes for its takeover (kept apart to keep modules small): it starts a
takeover once an agent accepted, records it when the room is ready and relays the customer lines
said meanwhile, turns room messages into the customer's `agent_message` events (once each, by
Slack message id), and ends the takeover: the customer is told, the room archived (with a note
when the customer left), the agent's load released.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
import trio

from actors.context import new_id
from actors.facts import (
    AgentMessaged,
    RoomRequested,
    TakeoverEnded,
    TakeoverEndedBy,
    TakeoverStarted,
)
from actors.messages import AgentResponded, TakeoverFinished
from actors.ports import (
    AgentProfile,
    CloseRoom,
    EndTakeoverRequested,
    FetchRoomMessages,
    RelayToRoom,
    ResolveOffer,
    RoomMessagePosted,
    RoomOpened,
    TranscriptLine,
)
from actors.runtime import ask, tell
from actors.takeover import Takeover, open_room

if TYPE_CHECKING:
    from actors.session import SessionActor

__all__ = [
    "BOT_ID",
    "BOT_NAME",
    "CUSTOMER_LEFT_NOTE",
    "IDLE_ENDER",
    "IDLE_ROOM_NOTE",
    "agent_line",
    "catch_up",
    "end_takeover",
    "held_until_ready",
    "relay",
    "relay_post_id",
    "start_takeover",
    "takeover_ready",
]

_log = structlog.get_logger("actors.session")

CUSTOMER_LEFT_NOTE = "The customer closed the chat. This room is archived."
IDLE_ROOM_NOTE = (
    "No message for a while: the takeover has ended and the customer is back with the bot. "
    "This room is archived."
)
IDLE_ENDER = "idle"
"""The `user_id` of the `EndTakeoverRequested` the hygiene rules send (never a Slack user id)."""
BOT_ID = "bot"
BOT_NAME = "Bot"


def relay_post_id(takeover_id: str, seq: int) -> str:
    """The Slack post id of the customer line `seq` relayed to a takeover's room: the same
    line always gets the same id, so a relay sent again after a restart is found, not doubled."""
    return f"{takeover_id}-{seq}"


def relay(tk: Takeover, seq: int, line: TranscriptLine, *, resent: bool = False) -> RelayToRoom:
    assert tk.room_id is not None
    return RelayToRoom(tk.takeover_id, tk.room_id, line, relay_post_id(tk.takeover_id, seq), resent)


async def start_takeover(
    session: SessionActor, escalation_id: str, agent_id: str, offer_id: str
) -> None:
    """The agent accepted: open the room in the background (or end at once if the customer
    already left). `RoomRequested` records which transcript lines the room gets at its opening:
    the customer's lines after those are relayed to it."""
    ctx = session.ctx
    tk = Takeover(new_id("t"), escalation_id, agent_id, offer_id, trio.current_time())
    session.takeover = tk
    if session.closed:  # the customer left while the agent accepted: no room
        await record_takeover(session, tk, None, None)
        await end_takeover(session, tk, by="customer")
        return
    transcript = tuple(session.customer.lines)
    await ctx.sink.record(
        RoomRequested(
            tk.takeover_id,
            escalation_id,
            session.session_id,
            agent_id,
            offer_id,
            len(transcript),
            ctx.wall_clock(),
        )
    )
    request_room(session, tk, transcript)


def request_room(
    session: SessionActor,
    tk: Takeover,
    transcript: tuple[TranscriptLine, ...],
    *,
    resume: bool = False,
) -> None:
    """Open the takeover's room in the background; the session gets `TakeoverReady`."""
    ctx = session.ctx
    ctx.spawner().start_soon(
        open_room,
        ctx,
        session,
        tk.takeover_id,
        tk.agent_id,
        session.customer.customer_id,
        session.customer.display_name,
        transcript,
        resume,
    )


async def takeover_ready(
    session: SessionActor, takeover_id: str, room: RoomOpened | None, profile: AgentProfile
) -> None:
    ctx, tk = session.ctx, session.takeover
    if tk is None or tk.takeover_id != takeover_id:
        _log.warning("unknown_takeover_ready", takeover=takeover_id)
        if room is not None and ctx.rooms.get(room.room_id) is session:
            del ctx.rooms[room.room_id]
        return
    tk.profile = profile
    early, tk.early = tk.early, []
    at = await record_takeover(
        session, tk, room, session.events.next_seq if room and not session.closed else None
    )
    if room is None:
        await end_takeover(session, tk, by="failed")
        if not session.closed:
            await session.bot_says(ctx.texts.no_agent_text, "no_agent_available")
        return
    tk.room_id, tk.room_name = room.room_id, room.room_name
    if session.closed:
        await end_takeover(session, tk, by="customer")
        return
    ctx.rooms[room.room_id] = session
    session.emit("agent_joined", None, at, profile)
    _log.info(
        "takeover_started",
        session=session.session_id,
        takeover=tk.takeover_id,
        room=room.room_name,
    )
    pending, tk.pending = tk.pending, []
    for seq, line in pending:
        await tell(ctx.slack, relay(tk, seq, line))
    for fact in early:  # the room's first messages (or end), in the order Slack sent them
        await session.handle(fact)
    await catch_up(session, tk)


async def catch_up(session: SessionActor, tk: Takeover) -> None:
    """After a restart: the room's messages the stopped daemon may never have recorded, read
    back from Slack once (those already seen are skipped by their message ids)."""
    ctx, since = session.ctx, tk.catch_up_since
    if since is None or tk.room_id is None or session.takeover is not tk:
        return
    tk.catch_up_since = None
    room_id = tk.room_id
    facts: tuple[RoomMessagePosted, ...]
    try:
        with trio.fail_after(ctx.slack_timeout_s):
            facts = await ask(ctx.slack, lambda r: FetchRoomMessages(room_id, since, r))
    except Exception as e:  # Slack down or slow: what it holds stays unread, nothing breaks
        _log.warning("room_catch_up_failed", session=session.session_id, error=repr(e))
        return
    before = len(session.events)
    for fact in facts:
        if session.takeover is tk and fact.room_id == room_id:
            await agent_line(session, fact)
    _log.info(
        "room_caught_up",
        session=session.session_id,
        room=room_id,
        read=len(facts),
        new=len(session.events) - before,
    )


def held_until_ready(session: SessionActor, fact: RoomMessagePosted | EndTakeoverRequested) -> bool:
    """Keep a fact of the room being opened until `TakeoverReady` is handled; True when kept.

    The room is routed here as soon as Slack answers `OpenRoom`, while `TakeoverReady` may still
    be on its way: whatever the room says meanwhile comes after it."""
    tk = session.takeover
    if tk is None or tk.room_id is not None:
        return False
    tk.early.append(fact)
    return True


async def record_takeover(
    session: SessionActor, tk: Takeover, room: RoomOpened | None, seq: int | None
) -> float:
    """Record the takeover's start and resolve the accepted offer's DM (with its room)."""
    ctx, at = session.ctx, session.ctx.wall_clock()
    room_id, room_name = (room.room_id, room.room_name) if room else (None, None)
    await ctx.sink.record(
        TakeoverStarted(
            tk.takeover_id,
            tk.escalation_id,
            session.session_id,
            session.customer.customer_id,
            tk.profile,
            room_id,
            room_name,
            seq,
            at,
        )
    )
    await tell(ctx.slack, ResolveOffer(tk.offer_id, tk.agent_id, "accepted", room_name))
    return at


async def agent_line(session: SessionActor, posted: RoomMessagePosted) -> None:
    if held_until_ready(session, posted):
        return
    ctx, tk = session.ctx, session.takeover
    if tk is None or tk.room_id != posted.room_id:
        _log.info("room_message_for_other_room", session=session.session_id, room=posted.room_id)
        return
    if posted.message_id in tk.seen:
        _log.info("room_message_duplicate", session=session.session_id, message=posted.message_id)
        return
    tk.seen.append(posted.message_id)
    if posted.user_id == tk.agent_id:
        profile = tk.profile
    else:
        profile = AgentProfile(posted.user_id, posted.user_id)
    at, seq = ctx.wall_clock(), session.events.next_seq
    await ctx.sink.record(
        AgentMessaged(
            tk.takeover_id,
            session.session_id,
            session.customer.customer_id,
            posted.user_id,
            posted.message_id,
            seq,
            posted.text,
            at,
        )
    )
    name = profile.display_name or profile.real_name or profile.id
    session.customer.lines.append(TranscriptLine("agent", posted.user_id, name, posted.text, at))
    session.emit("agent_message", posted.text, at, profile)
    if posted.user_id == tk.agent_id and not tk.responded:
        tk.responded = True
        box = ctx.agents.get(tk.agent_id)
        if box is not None:
            await tell(box, AgentResponded(tk.agent_id, trio.current_time() - tk.accepted_at))


async def end_takeover(session: SessionActor, tk: Takeover, *, by: TakeoverEndedBy) -> None:
    """End the takeover: tell the customer (agent ending, or idle), archive the room (with a note
    when the customer left or it went idle), free the agent."""
    ctx = session.ctx
    at = ctx.wall_clock()
    told = by in ("agent", "idle") and not session.closed
    seq = session.events.next_seq if told else None
    text: str | None = None
    if told:
        text = ctx.texts.idle_end_text if by == "idle" else ctx.texts.agent_left_text
    await ctx.sink.record(
        TakeoverEnded(tk.takeover_id, session.session_id, tk.agent_id, by, seq, at, text)
    )
    if text is not None:
        session.customer.lines.append(TranscriptLine("bot", BOT_ID, BOT_NAME, text, at))
        session.emit("agent_left", text, at, tk.profile)
    if tk.room_id is not None:
        note = {"customer": CUSTOMER_LEFT_NOTE, "idle": IDLE_ROOM_NOTE}.get(by)
        await tell(ctx.slack, CloseRoom(tk.takeover_id, tk.room_id, note))
        ctx.rooms.pop(tk.room_id, None)
    duration = trio.current_time() - tk.accepted_at
    await tell(ctx.dispatcher, TakeoverFinished(tk.agent_id, tk.takeover_id, duration))
    session.takeover = None
    _log.info("takeover_ended", session=session.session_id, takeover=tk.takeover_id, by=by)
