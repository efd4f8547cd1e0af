"""A session's customer events: an append-only list read by `seq`, and a lazy wake-up for waiters.

Owns `EventLog`. Sequence numbers start at 1 and increase by one, so an event's index is its
seq minus one and reading after a seq is a slice. The `trio.Event` for waiters exists only while
someone waits, which keeps an idle session small.
"""

from __future__ import annotations

from collections.abc import Iterable

import trio

from actors.messages import CustomerEvent, EventType
from actors.ports import AgentProfile

__all__ = ["EventLog"]


class EventLog:
    __slots__ = ("_events", "_waiter")

    def __init__(self, events: Iterable[CustomerEvent] = ()) -> None:
        """`events`: restored ones, numbered 1, 2, 3... (see `actors.restore`)."""
        self._events: list[CustomerEvent] = list(events)
        self._waiter: trio.Event | None = None

    def __len__(self) -> int:
        return len(self._events)

    @property
    def next_seq(self) -> int:
        return len(self._events) + 1

    def append(
        self, kind: EventType, text: str | None, agent: AgentProfile | None, at: float
    ) -> int:
        seq = self.next_seq
        self._events.append(CustomerEvent(seq, kind, text, agent, at))
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None
        return seq

    def after(self, seq: int) -> list[CustomerEvent]:
        return self._events[max(0, seq) :]

    async def wait_after(self, seq: int) -> list[CustomerEvent]:
        """The events after `seq`, waiting for one if there is none yet."""
        while not (events := self.after(seq)):
            if self._waiter is None:
                self._waiter = trio.Event()
            await self._waiter.wait()
        return events
