"""One simulated customer: talk to the bot, ask for a person, chat with the agent, leave.

Owns `simulate_customer(ctx, number)`. Through the customer API only, as a website would:
1. open a session (`customer_id` unique to the run, name `LT<number>`, which the offer DM shows);
2. ask the bot `bot_messages` questions, each answered before the next;
3. with probability `escalate_share`, ask for a person and wait for `agent_joined` or
   `no_agent_available` (the escalation's outcome);
4. once an agent joined: send `messages` tokened messages with think time between them; a
   customer drawn into `leave_share` closes the chat after the agent answered one of them, the
   others wait for the agent to end the takeover (`agent_left`);
5. close the session.
Every wait is bounded by the caller's cancel scope (the end of the run's drain).
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

import trio

from loadtest.context import RunContext
from loadtest.http import HttpFailure
from loadtest.inbox import Event, Inbox
from loadtest.ledger import TOKEN, Conversation, agent_token, customer_token

__all__ = ["simulate_customer"]

QUESTIONS = (
    "where is my parcel?",
    "how long does shipping take?",
    "what is your returns policy?",
    "can I pay with paypal?",
)
HANDOFF = "I want to talk to a human please"
CLOSE_WAIT_S = 10.0
CHATTER = ("it is order 4411", "yes, the blue one", "thanks, still waiting", "ok, and then?")


class _Gone(Exception):
    """The session ended under the customer (closed, or refused with 404/409)."""


def _on_event(ctx: RunContext, conv: Conversation, event: Event) -> None:
    kind, now = event.get("type"), ctx.now()
    if kind == "agent_message":
        for m in TOKEN.finditer(event.get("text") or ""):
            if m.group(1) == "a" and ctx.arrive(m.group(0), "agent_to_customer"):
                ctx.recorder.count("relayed_to_customer", now)
    elif kind == "agent_joined":
        conv.outcome = "agent_joined"
        ctx.recorder.count("agent_joined", now)
        clicked = ctx.accept_clicked_at.get(conv.number)
        if clicked is not None:
            ctx.recorder.record("accept_to_joined", now - clicked, now)
    elif kind == "no_agent_available":
        conv.outcome = "no_agent_available"
        ctx.recorder.count("no_agent", now)


async def _say(ctx: RunContext, conv: Conversation, text: str, token: str) -> int:
    """Send one message; returns its seq. Retries 429 and 503 after their Retry-After."""
    path = f"/api/sessions/{conv.session_id}/messages"
    while True:
        sent = ctx.now()
        ctx.sent_at.setdefault(token, sent)
        reply = await ctx.chat.call("POST", path, {"text": text}, token=conv.token)
        now = ctx.now()
        if reply.status == 202:
            ctx.recorder.record("customer_post", now - sent, now)
            seq = int(reply.body["seq"])
            conv.sent[token] = (seq, sent)
            return seq
        if reply.status in (429, 503):
            if reply.status == 429:
                ctx.recorder.count("http_429", now)
            await trio.sleep(float(reply.headers.get("retry-after", "1")))
            continue
        if reply.status in (404, 409):
            raise _Gone(reply.body.get("error", str(reply.status)))
        ctx.recorder.error(f"customer_post_{reply.status}", now)
        raise _Gone(f"message refused: {reply.status} {reply.body}")


async def _think(ctx: RunContext) -> None:
    span = ctx.profile.customers.think_s
    await trio.sleep(ctx.rng.uniform(span.min, span.max))


async def _converse(ctx: RunContext, conv: Conversation, inbox: Inbox, joined_seq: int) -> None:
    """Send the takeover's messages; leave early (`leave_share`), or when the arrival window
    ends (`until_end`), once the agent answered the last one; else wait for the agent to end."""
    p = ctx.profile.customers
    first = ctx.first_takeover_message
    last = ctx.last_takeover_message
    leave_after = None
    if p.until_end:
        leave_after = last
    elif p.messages and ctx.rng.random() < p.leave_share:
        leave_after = ctx.rng.randint(first, last)
    k = first
    while k <= last:
        if inbox.closed or inbox.last_end_seq > joined_seq:
            return
        await _think(ctx)
        token = customer_token(conv.number, k)
        await _say(ctx, conv, f"{token} {ctx.rng.choice(CHATTER)}", token)
        ctx.recorder.count("customer_messages", ctx.now())
        if k == leave_after or (p.until_end and ctx.now() >= ctx.profile.duration_s):
            await _wait_for_token(inbox, agent_token(conv.number, k), joined_seq)
            conv.closed_mid_takeover = True
            ctx.recorder.count("customers_left", ctx.now())
            return
        k += 1
    await inbox.wait_for(("agent_left", "closed"), joined_seq)


async def _wait_for_token(inbox: Inbox, token: str, after: int) -> None:
    """Until the agent's message carrying `token` arrives (or the takeover ends)."""
    await inbox.wait_until(
        lambda e: (
            e.get("type") in ("agent_left", "closed")
            or (e.get("type") == "agent_message" and token in (e.get("text") or ""))
        ),
        after,
    )


async def _open(ctx: RunContext, conv: Conversation) -> None:
    body: dict[str, Any] = {"customer_id": conv.customer_id, "name": f"LT{conv.number}"}
    while True:
        reply = await ctx.chat.call("POST", "/api/sessions", body)
        if reply.status == 201:
            conv.session_id, conv.token = reply.body["session_id"], reply.body["token"]
            return
        ctx.recorder.error(f"customer_open_{reply.status}", ctx.now())
        await trio.sleep(1)


async def simulate_customer(ctx: RunContext, number: int) -> None:
    p = ctx.profile.customers
    conv = ctx.conversations[number] = Conversation(number, f"lt{ctx.run_id}-{number}")
    ctx.recorder.count("customers_started", ctx.now())
    try:
        await _open(ctx, conv)
        inbox = Inbox(
            http=ctx.chat,
            base_url=ctx.chat_url,
            session_id=conv.session_id,
            token=conv.token,
            transport=p.transport,
            on_event=partial(_on_event, ctx, conv),
            on_error=lambda kind: ctx.recorder.error(kind, ctx.now()),
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(inbox.run)
            try:
                with contextlib.suppress(_Gone, trio.EndOfChannel):
                    await _journey(ctx, conv, inbox)
                    await _close(ctx, conv)
                with trio.move_on_after(CLOSE_WAIT_S):
                    await inbox.wait_for(("closed",))
                    await inbox.wait_done()
            except HttpFailure as e:
                ctx.recorder.error(f"customer_http_{e.kind}", ctx.now())
            nursery.cancel_scope.cancel()
    except HttpFailure as e:
        ctx.recorder.error(f"customer_http_{e.kind}", ctx.now())
    finally:
        ctx.recorder.count("customers_done", ctx.now())


async def _journey(ctx: RunContext, conv: Conversation, inbox: Inbox) -> None:
    p = ctx.profile.customers
    k = 0
    for _ in range(p.bot_messages):
        # No token here: an unknown word lowers the bot's confidence. A question the bot is not
        # sure about escalates on its own ("searching"), as it would for a real customer.
        k += 1
        sent = ctx.now()
        seq = await _say(ctx, conv, ctx.rng.choice(QUESTIONS), customer_token(conv.number, k))
        answer = await inbox.wait_for(("bot_message", "searching"), seq)
        ctx.recorder.record("bot_reply", ctx.now() - sent, ctx.now())
        if answer["type"] == "searching":
            conv.escalated_at = sent
            ctx.recorder.count("escalations", sent)
            await _after_escalation(ctx, conv, inbox, seq)
            return
        await _think(ctx)
    if ctx.rng.random() >= p.escalate_share:
        return
    k += 1
    token = customer_token(conv.number, k)
    conv.escalated_at = ctx.now()
    ctx.recorder.count("escalations", conv.escalated_at)
    seq = await _say(ctx, conv, f"{token} {HANDOFF}", token)
    await _after_escalation(ctx, conv, inbox, seq)


async def _after_escalation(ctx: RunContext, conv: Conversation, inbox: Inbox, seq: int) -> None:
    outcome = await inbox.wait_for(("agent_joined", "no_agent_available"), seq)
    if outcome["type"] == "agent_joined":
        await _converse(ctx, conv, inbox, outcome["seq"])


async def _close(ctx: RunContext, conv: Conversation) -> None:
    reply = await ctx.chat.call(
        "POST", f"/api/sessions/{conv.session_id}/close", {}, token=conv.token
    )
    if reply.status not in (200, 409):
        ctx.recorder.error(f"customer_close_{reply.status}", ctx.now())
