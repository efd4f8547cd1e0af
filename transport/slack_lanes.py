"""Run jobs concurrently, but one after another within a lane. Owns `Lanes`.

The Slack actor executes commands through `Lanes`: jobs with the same key (a room, an offer)
run in the order they were submitted, one at a time; jobs of different keys, and jobs without a
key, run concurrently, so one slow Slack call never holds up the rest. At most `limit` jobs are
queued or running at once: `submit` waits for room (backpressure on the actor's mailbox).

A job that raises is logged (`slack_job_failed`) and the lane goes on with its next job.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
import trio

__all__ = ["Job", "Lanes", "LanesStatistics"]

_log = structlog.get_logger("transport.slack_lanes")

Job = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class LanesStatistics:
    queued_or_running: int
    lanes: int
    done: int
    failed: int


class Lanes:
    """Ordered lanes of jobs in `nursery`; give it a nursery that outlives the submitters."""

    def __init__(self, nursery: trio.Nursery, *, limit: int = 1_000) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self._nursery = nursery
        self._slots = trio.Semaphore(limit)
        self._lanes: dict[str, deque[tuple[str, Job]]] = {}
        self._done = self._failed = 0
        self._busy = 0
        self._idle = trio.Event()
        self._idle.set()
        self._finished = trio.Event()

    async def submit(self, key: str | None, name: str, job: Job) -> None:
        """Queue `job` behind the earlier jobs of `key` (None: no order); waits for a slot."""
        await self._slots.acquire()
        if self._busy == 0:
            self._idle = trio.Event()
        self._busy += 1
        if key is None:
            self._nursery.start_soon(self._run_one, name, job)
            return
        lane = self._lanes.get(key)
        if lane is not None:
            lane.append((name, job))
            return
        self._lanes[key] = deque([(name, job)])
        self._nursery.start_soon(self._drain, key)

    async def _drain(self, key: str) -> None:
        lane = self._lanes[key]
        while lane:
            name, job = lane[0]
            await self._run(name, job)
            lane.popleft()
        del self._lanes[key]

    async def _run_one(self, name: str, job: Job) -> None:
        await self._run(name, job)

    async def _run(self, name: str, job: Job) -> None:
        try:
            await job()
            self._done += 1
        except Exception:
            self._failed += 1
            _log.exception("slack_job_failed", job=name)
        finally:
            self._slots.release()
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()
            self._finished.set()
            self._finished = trio.Event()

    def absorbed(self) -> None:
        """Count as finished a command that needed no job of its own (another job does its
        work): `wait_finished` counts commands."""
        self._done += 1
        self._finished.set()
        self._finished = trio.Event()

    async def wait_idle(self) -> None:
        """Wait until no job is queued or running."""
        await self._idle.wait()

    async def wait_finished(self, count: int) -> None:
        """Wait until `count` jobs in all have finished (done or failed)."""
        while self._done + self._failed < count:
            await self._finished.wait()

    def statistics(self) -> LanesStatistics:
        return LanesStatistics(
            queued_or_running=self._busy,
            lanes=len(self._lanes),
            done=self._done,
            failed=self._failed,
        )
