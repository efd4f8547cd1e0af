"""Test harness for the domain: a fake Slack actor on the command port, a bot, and a runner.

`FakeSlack` consumes the domain's Slack commands the way the real Slack actor will: it answers
requests (presence, profiles, rooms) and records everything; tests drive the inbound side through
`Domain.deliver`. Nothing inside the domain is patched.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import trio
import trio.testing

from actors.bot import BotAnswer, HandOff, normalise
from actors.domain import Domain
from actors.facts import MemoryFactSink
from actors.ports import (
    AgentProfile,
    CloseRoom,
    ConfirmPresence,
    FetchAgentProfile,
    FetchRoomMessages,
    OfferView,
    OpenRoom,
    PostOffer,
    PresenceChanged,
    RelayToRoom,
    ResolveOffer,
    RoomMessagePosted,
    RoomOpened,
    SlackCommand,
    TellTooLate,
)
from actors.settings import BotSettings, RoutingSettings
from actors.stats import AgentStats

C = TypeVar("C")

EPOCH = 1_800_000_000.0


def wall_clock() -> float:
    """Wall time that follows trio's (mock) clock, so expiry times are exact in tests."""
    return EPOCH + trio.current_time()


class ScriptedBot:
    """Hands off on "human"; "unsure ..." answers with low confidence; else a confident echo."""

    def reply(self, text: str) -> BotAnswer | HandOff:
        words = normalise(text).split()
        if "human" in words:
            return HandOff("asked")
        if words[:1] == ["unsure"]:
            return BotAnswer("Maybe this helps?", 0.2)
        return BotAnswer(f"You said: {text}", 0.9)


class FakeSlack:
    """Consumes the domain's Slack commands; answers requests; records all of them."""

    def __init__(self) -> None:
        self.send: trio.MemorySendChannel[SlackCommand]
        self.send, self._receive = trio.open_memory_channel[SlackCommand](10_000)
        self.commands: list[tuple[float, SlackCommand]] = []
        self._by_type: defaultdict[type, list[SlackCommand]] = defaultdict(list)
        self.present: dict[str, bool] = {}
        self.hold_rooms = False
        self._held: list[OpenRoom] = []
        self._changed = trio.Event()
        self._cursor: dict[type, int] = {}
        self._room_numbers = itertools.count(1)
        self._names: set[str] = set()
        self.rooms: dict[str, RoomOpened] = {}  # by takeover id
        self.room_messages: dict[str, list[RoomMessagePosted]] = {}  # Slack's history, by room

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for command in self._receive:
            self.commands.append((trio.current_time(), command))
            self._by_type[type(command)].append(command)
            match command:
                case ConfirmPresence(agent_id, reply):
                    reply.send(self.present.get(agent_id, True))
                case FetchAgentProfile(agent_id, reply):
                    reply.send(
                        AgentProfile(agent_id, f"agent-{agent_id}", f"Agent {agent_id}", "Support")
                    )
                case FetchRoomMessages(room_id, _, reply):
                    reply.send(tuple(self.room_messages.get(room_id, ())))
                case OpenRoom():
                    if self.hold_rooms:
                        self._held.append(command)
                    else:
                        self._open(command)
                case _:
                    pass
            self._changed.set()
            self._changed = trio.Event()

    def _open(self, command: OpenRoom) -> None:
        base = f"swivl_user_{command.customer_id}"
        name = base
        for n in itertools.count(2):
            if name not in self._names:
                break
            name = f"{base}-{n}"
        self._names.add(name)
        room = RoomOpened(f"C{next(self._room_numbers):04d}", name)
        self.rooms[command.takeover_id] = room
        command.reply.send(room)

    def release_rooms(self) -> None:
        held, self._held = self._held, []
        for command in held:
            self._open(command)

    # --- reading what the domain sent -----------------------------------------------------

    def of(self, kind: type[C]) -> list[C]:
        return list(self._by_type[kind])  # type: ignore[arg-type]

    def timed(self, kind: type[C]) -> list[tuple[float, C]]:
        return [(t, c) for t, c in self.commands if isinstance(c, kind)]

    async def next(self, kind: type[C]) -> C:
        """The next command of `kind` not yet returned by `next`, waiting for it."""
        while True:
            seen = self._cursor.get(kind, 0)
            found = self._by_type[kind]
            if len(found) > seen:
                self._cursor[kind] = seen + 1
                return found[seen]  # type: ignore[return-value]
            await self._changed.wait()

    async def next_offer(self) -> OfferView:
        return (await self.next(PostOffer)).offer

    def offers(self) -> list[OfferView]:
        return [c.offer for c in self.of(PostOffer)]

    def resolved(self) -> dict[str, ResolveOffer]:
        return {c.offer_id: c for c in self.of(ResolveOffer)}

    def too_late(self) -> list[TellTooLate]:
        return self.of(TellTooLate)

    def relays(self) -> list[RelayToRoom]:
        return self.of(RelayToRoom)

    def closed_rooms(self) -> list[CloseRoom]:
        return self.of(CloseRoom)


@dataclass
class Harness:
    domain: Domain
    slack: FakeSlack
    sink: MemoryFactSink
    routing: RoutingSettings
    texts: BotSettings
    open_hours: list[bool] = field(default_factory=lambda: [True])

    async def settle(self) -> None:
        await trio.testing.wait_all_tasks_blocked()

    async def customer(self, customer_id: str | None = None, name: str = "Ada") -> str:
        opened = await self.domain.open_session(customer_id, name, None)
        return opened.session_id

    async def escalate(self, session_id: str, text: str = "I want a human") -> int:
        return await self.domain.customer_says(session_id, text)

    def event_types(self, session_id: str) -> list[str]:
        return [e.type for e in self.domain.events_after(session_id, 0)]

    def agent(self, agent_id: str) -> AgentStats:
        return next(a for a in self.domain.stats().agents if a.id == agent_id)


AGENTS = ("U01", "U02", "U03")


@asynccontextmanager
async def running(
    agents: tuple[str, ...] = AGENTS,
    *,
    present: tuple[str, ...] | None = None,
    offer_timeout_s: float = 45.0,
    max_tries: int = 3,
    max_chats_per_agent: int = 3,
    greeting: str = "",
) -> AsyncIterator[Harness]:
    """A running domain with a fake Slack; `present` agents (default: all) are active."""
    routing = RoutingSettings(
        agents=agents,
        offer_timeout_s=offer_timeout_s,
        max_tries=max_tries,
        max_chats_per_agent=max_chats_per_agent,
    )
    texts = BotSettings()
    slack = FakeSlack()
    sink = MemoryFactSink()
    open_hours = [True]
    domain = Domain(
        routing=routing,
        bot_settings=texts,
        bot=ScriptedBot(),
        slack=slack.send,
        sink=sink,
        agents=agents,
        is_open=lambda: open_hours[0],
        wall_clock=wall_clock,
        greeting=greeting,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(slack.run)
        await nursery.start(domain.run)
        for agent_id in agents if present is None else present:
            await domain.deliver(PresenceChanged(agent_id, True))
        harness = Harness(domain, slack, sink, routing, texts, open_hours)
        await harness.settle()
        yield harness
        nursery.cancel_scope.cancel()
