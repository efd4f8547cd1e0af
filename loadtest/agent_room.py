"""One takeover as the simulated agent lives it: read the customer, reply, end it.

Owns `Room` (a room the agent was invited to, fed by the agent's RTM stream) and `run_room`: for
each of the customer's takeover messages seen in the room (latency `customer_to_room`), wait
`reply_delay_s` and answer with the matching agent token via `chat.postMessage`; after answering
the customer's last one, wait `end_delay_s` and end the takeover with the End Takeover button
(`end_button_share`) or `/end-takeover`. The room is given up when the customer leaves (the
daemon's note) or when Slack refuses a post (archived).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import trio

from loadtest import slack_view as view
from loadtest.ledger import TOKEN, Conversation, agent_token

if TYPE_CHECKING:
    from loadtest.agent import SimAgent

__all__ = ["Room", "run_room"]

# Refusals that only mean the room is over (the customer left, the takeover ended).
ROOM_OVER = frozenset({"is_archived", "not_in_channel", "channel_not_found"})
REPLIES = ("Let me check that for you.", "Thanks, one moment.", "Done, anything else?")


class Room:
    def __init__(self, agent: SimAgent, channel: str, conv: Conversation, header_ts: str) -> None:
        self.agent = agent
        self.channel = channel
        self.conv = conv
        self.header_ts = header_ts
        self.send, self.receive = trio.open_memory_channel[int](1_000)
        self.left = False

    def on_message(self, message: dict[str, Any]) -> None:
        """A message in the room by someone else: the customer's lines, or the daemon's notes."""
        ctx = self.agent.ctx
        if view.says_customer_left(message):
            self.left = True
            self.send.close()
            return
        for m in TOKEN.finditer(message.get("text") or ""):
            kind, number, k = m.group(1), int(m.group(2)), int(m.group(3))
            if kind != "c" or number != self.conv.number or k < ctx.first_takeover_message:
                continue  # the transcript's earlier lines
            if ctx.arrive(m.group(0), "customer_to_room"):
                ctx.recorder.count("relayed_to_room", ctx.now())
                with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
                    self.send.send_nowait(k)


async def _reply(room: Room, k: int) -> bool:
    agent, ctx = room.agent, room.agent.ctx
    token = agent_token(room.conv.number, k)
    text = f"{token} {ctx.rng.choice(REPLIES)}"
    sent = ctx.now()
    ctx.sent_at[token] = sent
    answer = await agent.call("chat.postMessage", channel=room.channel, text=text)
    now = ctx.now()
    if not answer.get("ok"):
        if not (room.left or room.conv.closed_mid_takeover) or answer.get("error") not in ROOM_OVER:
            ctx.recorder.error(f"agent_post_{answer.get('error')}", now)
        return False
    ctx.recorder.record("agent_post", now - sent, now)
    ctx.recorder.count("agent_messages", now)
    room.conv.agent_sent[token] = sent
    return True


async def _end(room: Room) -> None:
    agent, ctx = room.agent, room.agent.ctx
    span = ctx.profile.agents.end_delay_s
    await trio.sleep(ctx.rng.uniform(span.min, span.max))
    if room.left:
        return
    if ctx.rng.random() < ctx.profile.agents.end_button_share:
        answer = await agent.ui(
            "click", channel=room.channel, ts=room.header_ts, action_id=view.END
        )
    else:
        answer = await agent.ui("command", channel=room.channel, command=view.END_COMMAND)
    if answer.get("ok"):
        ctx.recorder.count("takeovers_ended", ctx.now())
    elif answer.get("error") not in ROOM_OVER or not (room.left or room.conv.closed_mid_takeover):
        ctx.recorder.error(f"end_takeover_{answer.get('error')}", ctx.now())


async def run_room(room: Room) -> None:
    ctx = room.agent.ctx
    last = ctx.last_takeover_message
    if ctx.profile.customers.messages == 0 and not ctx.profile.customers.until_end:
        await _end(room)
        return
    span = ctx.profile.agents.reply_delay_s
    async with room.receive:
        async for k in room.receive:
            await trio.sleep(ctx.rng.uniform(span.min, span.max))
            if room.left or not await _reply(room, k):
                return
            if k >= last:
                await _end(room)
                return
