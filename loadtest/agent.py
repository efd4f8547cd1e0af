"""One simulated agent: watches Slack over RTM, answers offers, chats in rooms, ends takeovers.

Owns `SimAgent`. The agent sees what a person in Slack sees, through its own user token: an RTM
connection (`rtm.connect`, reconnecting if dropped) delivers the messages of its DMs and rooms as
they are posted or updated. It acts as a person does, through Slack: buttons are clicked and slash
commands run through the emulator's `/_emu/click` and `/_emu/command` (what only Slack's UI can
do), messages are posted with `chat.postMessage` and its user token.

- An offer DM (an `offer_accept` button): accept, ignore or let it be missed, by the profile's
  shares, after `answer_delay_s`; the DM's update tells the outcome (`offer_to_outcome`, and for a
  missed offer how late after its deadline the update came: the deadline taken as the moment the
  offer was seen plus `offer_timeout_s`, since the DM's expiry token only has whole seconds).
- A room header (a `takeover_end` button): the takeover starts (`loadtest.agent_room`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from loadtest import slack_view as view
from loadtest.agent_room import Room, run_room
from loadtest.context import RunContext
from loadtest.http import HttpFailure
from loadtest.wsclient import WsError, open_ws

__all__ = ["AgentUser", "SimAgent"]


@dataclass(frozen=True, slots=True)
class AgentUser:
    id: str
    name: str
    token: str


@dataclass(slots=True)
class _Offer:
    channel: str
    ts: str
    number: int | None
    seen_at: float
    outcome: str | None = None
    outcome_seen: trio.Event = field(default_factory=trio.Event)


class SimAgent:
    def __init__(self, ctx: RunContext, user: AgentUser, nursery: trio.Nursery) -> None:
        self.ctx = ctx
        self.user = user
        self._nursery = nursery
        self._offers: dict[str, _Offer] = {}  # by DM message ts
        self._rooms: dict[str, Room] = {}  # by channel id
        self.connected = trio.Event()

    async def call(self, method: str, **args: Any) -> dict[str, Any]:
        """A Web API call with the agent's user token; waits out 429s."""
        while True:
            reply = await self.ctx.emulator.call(
                "POST", f"/api/{method}", args, token=self.user.token
            )
            if reply.status == 429:
                self.ctx.recorder.count("http_429", self.ctx.now())
                await trio.sleep(float(reply.headers.get("retry-after", "1")))
                continue
            return reply.body

    async def ui(self, route: str, **body: Any) -> dict[str, Any]:
        """What only Slack's UI can do: `/_emu/click` or `/_emu/command`, as this user."""
        reply = await self.ctx.emulator.call(
            "POST", f"/_emu/{route}", {"user": self.user.id, **body}
        )
        return reply.body

    # --- the RTM stream ----------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                answer = await self.call("rtm.connect")
                if not answer.get("ok"):
                    self.ctx.recorder.error(f"rtm_connect_{answer.get('error')}", self.ctx.now())
                    await trio.sleep(1)
                    continue
                async with open_ws(answer["url"]) as ws:
                    while True:
                        frame = await ws.get_message()
                        self._on_frame(frame)
            except (OSError, WsError, HttpFailure) as e:
                self.ctx.recorder.error(f"agent_rtm_{type(e).__name__}", self.ctx.now())
                await trio.sleep(0.5)

    def _on_frame(self, frame: str | bytes) -> None:
        try:
            event = json.loads(frame)
        except ValueError:
            self.ctx.recorder.error("agent_bad_frame", self.ctx.now())
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "hello":
            self.connected.set()
        if event.get("type") != "message" or not isinstance(event.get("channel"), str):
            return
        channel = event["channel"]
        if event.get("subtype") == "message_changed":
            message = event.get("message")
            if isinstance(message, dict):
                self._on_update(channel, message)
        elif event.get("subtype") in (None, "bot_message"):
            self._on_message(channel, event)

    def _on_message(self, channel: str, message: dict[str, Any]) -> None:
        if message.get("user") == self.user.id:
            return  # our own post, echoed
        actions = view.action_ids(message)
        if view.ACCEPT in actions and isinstance(message.get("ts"), str):
            self._new_offer(channel, message)
        elif view.END in actions:
            self._new_room(channel, message)
        elif channel in self._rooms:
            self._rooms[channel].on_message(message)

    def _on_update(self, channel: str, message: dict[str, Any]) -> None:
        offer = self._offers.get(message.get("ts") or "")
        if offer is None or offer.channel != channel or offer.outcome is not None:
            return
        outcome = view.offer_outcome(message)
        if outcome is not None:
            offer.outcome = outcome
            offer.outcome_seen.set()

    @property
    def pending_offers(self) -> int:
        """Offers seen whose outcome has not been shown yet."""
        return len(self._offers)

    async def _guarded(self, what: str, run: Callable[[Any], Awaitable[None]], arg: Any) -> None:
        """One offer's or room's task: a failed call is counted, and only that task ends."""
        try:
            await run(arg)
        except HttpFailure as e:
            self.ctx.recorder.error(f"agent_{what}_http_{e.kind}", self.ctx.now())

    # --- offers ------------------------------------------------------------------------------

    def _new_offer(self, channel: str, message: dict[str, Any]) -> None:
        ctx, now = self.ctx, self.ctx.now()
        number = view.customer_number(message)
        offer = _Offer(channel, message["ts"], number, now)
        self._offers[offer.ts] = offer
        ctx.recorder.count("offers", now)
        conv = ctx.conversations.get(number) if number is not None else None
        if conv is not None and not conv.offered:
            conv.offered = True
            if conv.escalated_at is not None:
                ctx.recorder.record("escalation_to_offer", now - conv.escalated_at, now)
        self._nursery.start_soon(self._guarded, "offer", self._answer, offer)

    async def _answer(self, offer: _Offer) -> None:
        ctx, p = self.ctx, self.ctx.profile.agents
        roll = ctx.rng.random()
        choice = "accepted" if roll < p.accept_share else (
            "ignored" if roll < p.accept_share + p.ignore_share else "missed"
        )  # fmt: skip
        clicked = False
        if choice != "missed":
            with trio.move_on_after(ctx.rng.uniform(p.answer_delay_s.min, p.answer_delay_s.max)):
                await offer.outcome_seen.wait()  # withdrawn (or missed) before we answered
            if offer.outcome is None:
                action = view.ACCEPT if choice == "accepted" else view.IGNORE
                if choice == "accepted" and offer.number is not None:
                    ctx.accept_clicked_at[offer.number] = ctx.now()
                answer = await self.ui(
                    "click", channel=offer.channel, ts=offer.ts, action_id=action
                )
                clicked = bool(answer.get("ok"))
                if not clicked:
                    ctx.recorder.error(f"click_{answer.get('error')}", ctx.now())
        await offer.outcome_seen.wait()  # (an accepted one only once its room is open)
        now = ctx.now()
        del self._offers[offer.ts]
        assert offer.outcome is not None
        ctx.recorder.count(offer.outcome, now)
        ctx.recorder.record("offer_to_outcome", now - offer.seen_at, now)
        if offer.outcome == "missed":
            # The DM's expiry token has whole seconds; the offer was made just before it was seen.
            deadline = offer.seen_at + ctx.profile.daemon.offer_timeout_s
            ctx.recorder.record("missed_lateness", now - deadline, now)
        if clicked and offer.outcome != choice:
            ctx.recorder.count("too_late", now)

    # --- rooms -------------------------------------------------------------------------------

    def _new_room(self, channel: str, message: dict[str, Any]) -> None:
        number = view.customer_number(message)
        conv = self.ctx.conversations.get(number) if number is not None else None
        if conv is None or channel in self._rooms:
            return
        conv.rooms.append(channel)
        room = Room(self, channel, conv, str(message.get("ts")))
        self._rooms[channel] = room
        self._nursery.start_soon(self._guarded, "room", self._room, room)

    async def _room(self, room: Room) -> None:
        try:
            await run_room(room)
        finally:
            del self._rooms[room.channel]
