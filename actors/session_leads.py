"""The lead step of a session: what a `SessionActor` does with a `LeaveLead` (see `actors.leads`).

1. A repeat of a lead this session already left (same email and question) answers that lead
   again, so a client retrying after a lost answer never leaves it twice; beyond
   `MAX_LEADS_PER_SESSION` different ones the request fails with `TooManyLeads`.
2. `LeadLeft` is recorded with the customer's transcript (the latest `TRANSCRIPT_LINES` lines).
3. The customer gets a `bot_message` saying where and when they will be answered: as soon as
   someone is free, or, when the team is closed, once it opens (e.g. "tomorrow at 09:00
   (Europe/Paris time)", from the domain's `next_opening`). The request is answered then.
4. `PostLead` goes to the Slack actor, which posts it in `slack.leads_channel` (when set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from actors.context import new_id
from actors.errors import SessionClosed
from actors.facts import LeadLeft
from actors.leads import (
    MAX_LEADS_PER_SESSION,
    TRANSCRIPT_LINES,
    Lead,
    TooManyLeads,
    expectation_text,
)
from actors.messages import LeaveLead
from actors.ports import PostLead
from actors.runtime import tell

if TYPE_CHECKING:
    from actors.session import SessionActor

__all__ = ["leave_lead"]

_log = structlog.get_logger("actors.session")


async def leave_lead(session: SessionActor, request: LeaveLead) -> None:
    """Record the lead, tell the customer when to expect an answer, and post it to Slack."""
    ctx, customer, reply = session.ctx, session.customer, request.reply
    if session.closed:
        reply.fail(SessionClosed(session.session_id))
        return
    book = ctx.leads
    earlier = book.find(session.session_id, request.email, request.question)
    if earlier is not None:
        reply.send(earlier)
        return
    if book.count_for(session.session_id) >= MAX_LEADS_PER_SESSION:
        reply.fail(TooManyLeads(f"a chat can leave at most {MAX_LEADS_PER_SESSION} questions"))
        return
    at = ctx.wall_clock()
    lead = Lead(
        new_id("l"),
        session.session_id,
        customer.customer_id,
        request.name or customer.name,
        request.email,
        request.question,
        at,
    )
    transcript = tuple(customer.lines[-TRANSCRIPT_LINES:])
    await ctx.sink.record(
        LeadLeft(
            lead.lead_id,
            lead.session_id,
            lead.customer_id,
            lead.name,
            lead.email,
            lead.question,
            transcript,
            at,
        )
    )
    book.add(lead)
    open_now = ctx.is_open()
    opening = None if open_now else ctx.next_opening()
    text = expectation_text(ctx.texts, lead.email, open_now=open_now, opening=opening, now=at)
    await session.bot_says(text, "bot_message")
    reply.send(lead)
    _log.info("lead_left", session=session.session_id, lead=lead.lead_id, open=open_now)
    await tell(
        ctx.slack,
        PostLead(
            lead.lead_id,
            lead.customer_id,
            lead.name,
            lead.email,
            lead.question,
            transcript,
            at,
        ),
    )
