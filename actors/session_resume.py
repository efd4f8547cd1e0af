"""What a session rebuilt after a restart still has to do: its `SessionResume` and the steps.

Owns `SessionResume` (built by `actors.restore` from the durable state) and `resume_session`,
which a restored `SessionActor` runs when it starts, before it takes any message, so whatever
it sends to Slack goes out before anything new:

1. Slack commands that may not have reached Slack before the crash are sent again, marked so
   that Slack finds what did arrive instead of posting it twice: the customer lines relayed to
   the room lately (`RelayToRoom(resent=True)`, deterministic post ids) and the accepted offer's
   DM update. An open room's messages since shortly before the last one recorded are read back
   (`FetchRoomMessages`): those Slack delivered to the stopped daemon reach the customer now.
2. The takeover goes on from where the journal left it: an accepted escalation whose room was
   never asked for gets its room now; a room whose opening was cut short is opened again with
   `OpenRoom(resume=True)` (Slack finds the room and posts only what it lacks); a takeover
   recorded without a room is ended.
3. The customer is told what the crash kept from them: "nobody is available" after an
   exhausted escalation, or the bot's answer to a last message that had none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from actors.ports import SlackCommand, TranscriptLine
from actors.runtime import tell
from actors.session_takeover import catch_up, end_takeover, request_room, start_takeover

if TYPE_CHECKING:
    from actors.session import SessionActor

__all__ = ["SessionResume", "TakeoverStep", "resume_session"]

TakeoverStep = Literal["start", "reopen", "end"]


@dataclass(frozen=True, slots=True)
class SessionResume:
    """`takeover`: start (`accepted` names the escalation, agent and offer), reopen (the first
    `transcript_lines` lines went with the room), end (recorded without a room).
    `answer`: the seq and line of a customer message the bot never answered."""

    resend: tuple[SlackCommand, ...] = ()
    takeover: TakeoverStep | None = None
    accepted: tuple[str, str, str] | None = None
    transcript_lines: int = 0
    owes_no_agent: bool = False
    answer: tuple[int, TranscriptLine] | None = None


async def resume_session(session: SessionActor, plan: SessionResume) -> None:
    ctx = session.ctx
    for command in plan.resend:
        await tell(ctx.slack, command)
    if session.takeover is not None and session.takeover.room_id is not None:
        await catch_up(session, session.takeover)
    match plan.takeover:
        case "start":
            assert plan.accepted is not None
            escalation_id, agent_id, offer_id = plan.accepted
            await start_takeover(session, escalation_id, agent_id, offer_id)
        case "reopen":
            assert session.takeover is not None
            transcript = tuple(session.customer.lines[: plan.transcript_lines])
            request_room(session, session.takeover, transcript, resume=True)
        case "end":
            assert session.takeover is not None
            by: Literal["customer", "failed"] = "customer" if session.closed else "failed"
            await end_takeover(session, session.takeover, by=by)
            if not session.closed:
                await session.bot_says(ctx.texts.no_agent_text, "no_agent_available")
        case None:
            pass
    if plan.owes_no_agent and not session.closed:
        await session.bot_says(ctx.texts.no_agent_text, "no_agent_available")
    if plan.answer is not None and session.mode == "bot":
        seq, line = plan.answer
        await session.after_customer_line(seq, line)
