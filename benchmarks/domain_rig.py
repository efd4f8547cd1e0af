"""A Domain in one process for the in-process benchmarks: a Slack port that answers at once.

Owns `AutoSlack` (consumes the domain's Slack commands the way the Slack actor does, with no I/O:
presence is confirmed active, profiles and rooms are made up, offers are timestamped), and
`CountingSink` (a `FactSink` that keeps nothing but counts and, optionally, the facts a benchmark
asks for). Used by idle_memory.py, escalation_deadlines.py and dispatcher_decisions.py.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actors.facts import Fact  # noqa: E402
from actors.log import configure_logging  # noqa: E402
from actors.ports import (  # noqa: E402
    AgentProfile,
    ConfirmPresence,
    FetchAgentProfile,
    OpenRoom,
    PostOffer,
    RoomOpened,
    SlackCommand,
)

__all__ = ["ROOT", "AutoSlack", "CountingSink"]

# As the daemon logs in production: one line per handled message is not what is measured here.
configure_logging("warning", "json")


class CountingSink:
    """Durable at once; keeps only the facts whose type is in `keep` (none by default)."""

    __slots__ = ("count", "keep", "kept", "on_fact")

    def __init__(
        self, keep: tuple[type, ...] = (), on_fact: Callable[[Fact], None] | None = None
    ) -> None:
        self.count = 0
        self.keep = keep
        self.kept: list[Any] = []
        self.on_fact = on_fact

    async def record(self, fact: Fact) -> None:
        self.count += 1
        if self.keep and isinstance(fact, self.keep):
            self.kept.append(fact)
        if self.on_fact is not None:
            self.on_fact(fact)


class AutoSlack:
    """Answers every request at once; calls `on_offer(command, trio time)` for each offer."""

    def __init__(
        self,
        *,
        capacity: int = 100_000,
        on_offer: Callable[[PostOffer, float], None] | None = None,
        on_command: Callable[[SlackCommand, float], None] | None = None,
    ) -> None:
        self.send: trio.MemorySendChannel[SlackCommand]
        self.send, self._receive = trio.open_memory_channel[SlackCommand](capacity)
        self.on_offer = on_offer
        self.on_command = on_command
        self.commands = 0
        self._rooms = itertools.count(1)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for command in self._receive:
            self.commands += 1
            now = trio.current_time()
            match command:
                case ConfirmPresence(_, reply):
                    reply.send(True)
                case FetchAgentProfile(agent_id, reply):
                    reply.send(AgentProfile(agent_id, f"agent-{agent_id}"))
                case OpenRoom(customer_id=customer_id, reply=reply):
                    n = next(self._rooms)
                    reply.send(RoomOpened(f"C{n:07d}", f"swivl_user_{customer_id}"))
                case PostOffer() if self.on_offer is not None:
                    self.on_offer(command, now)
                case _:
                    pass
            if self.on_command is not None:
                self.on_command(command, now)
