"""The actor runtime: tell/ask, failing asks when an actor stops, dropped bad messages, supervision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from actors.runtime import (
    Actor,
    ActorStopped,
    MailboxFull,
    MessageFailed,
    Reply,
    RestartBudget,
    ask,
    open_mailbox,
    supervise,
    tell,
    tell_nowait,
)


@dataclass(frozen=True, slots=True)
class Add:
    n: int


@dataclass(frozen=True, slots=True)
class Total:
    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class Boom:
    reply: Reply[int] | None = None


@dataclass(frozen=True, slots=True)
class Hang:
    reply: Reply[int]


Msg = Add | Total | Boom | Hang


class Counter(Actor[Msg]):
    def __init__(self, capacity: int = 8) -> None:
        super().__init__(capacity)
        self.total = 0
        self.starts = 0
        self.fail_starts = 0

    async def on_start(self) -> None:
        self.starts += 1
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("cannot start")

    async def handle(self, message: Msg) -> None:
        match message:
            case Add(n):
                self.total += n
            case Total(reply):
                reply.send(self.total)
            case Boom():
                raise ValueError("bad message")
            case Hang():
                await trio.sleep_forever()
            case _:
                assert_never(message)


async def test_tell_then_ask_in_order() -> None:
    counter = Counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.run)
        for n in range(5):
            await tell(counter.mailbox, Add(n))
        with trio.fail_after(1):
            assert await ask(counter.mailbox, Total) == 10
        nursery.cancel_scope.cancel()


async def test_a_crashing_message_is_logged_dropped_and_the_actor_goes_on() -> None:
    counter = Counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.run)
        with capture_logs() as logs:
            await tell(counter.mailbox, Boom())
            with pytest.raises(MessageFailed):
                await ask(counter.mailbox, Boom)
            await tell(counter.mailbox, Add(2))
            assert await ask(counter.mailbox, Total) == 2
        failed = [e for e in logs if e["event"] == "actor_message_failed"]
        assert [e["message"] for e in failed] == ["Boom", "Boom"]
        nursery.cancel_scope.cancel()


async def test_pending_asks_fail_when_the_actor_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    counter = Counter()
    results: list[str] = []

    async def asker(make: type[Hang] | type[Total]) -> None:
        try:
            await ask(counter.mailbox, make)
        except ActorStopped:
            results.append(make.__name__)

    async with trio.open_nursery() as outer, trio.open_nursery() as actor_nursery:
        await actor_nursery.start(counter.run)
        outer.start_soon(asker, Hang)  # being handled when the actor stops
        await trio.testing.wait_all_tasks_blocked()
        outer.start_soon(asker, Total)  # still queued when the actor stops
        await trio.testing.wait_all_tasks_blocked()
        actor_nursery.cancel_scope.cancel()
    assert sorted(results) == ["Hang", "Total"]
    with pytest.raises(ActorStopped):
        await tell(counter.mailbox, Add(1))
    assert trio.current_time() == 0


async def test_ask_deadline_is_the_callers(autojump_clock: trio.testing.MockClock) -> None:
    counter = Counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(counter.run)
        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(2.5):
                await ask(counter.mailbox, Hang)
        assert trio.current_time() == 2.5
        nursery.cancel_scope.cancel()


def test_tell_nowait_reports_a_full_mailbox() -> None:
    send: trio.MemorySendChannel[Add]
    send, receive = open_mailbox(1)
    tell_nowait(send, Add(1))
    with pytest.raises(MailboxFull):
        tell_nowait(send, Add(2))
    receive.close()
    with pytest.raises(ActorStopped):
        tell_nowait(send, Add(3))


def test_a_reply_is_answered_once() -> None:
    reply: Reply[int] = Reply()
    assert reply.send(1)
    assert not reply.send(2)
    assert not reply.fail(RuntimeError())
    assert reply.answered


class Flaky:
    """A service that crashes `crashes` times, `every` seconds after it starts."""

    def __init__(self, crashes: int, every: float) -> None:
        self.crashes, self.every, self.runs = crashes, every, 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.runs += 1
        task_status.started()
        await trio.sleep(self.every)
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("crash")
        await trio.sleep_forever()


async def test_supervisor_restarts_within_budget(autojump_clock: trio.testing.MockClock) -> None:
    flaky = Flaky(crashes=3, every=15)
    async with trio.open_nursery() as nursery:
        with capture_logs() as logs:
            await nursery.start(
                lambda task_status: supervise(
                    flaky, name="flaky", budget=RestartBudget(2, 25.0), task_status=task_status
                )
            )
            await trio.sleep(100)
        nursery.cancel_scope.cancel()
    # crashes at t=15, 30, 45: never more than 2 restarts within 25 s, so it keeps going
    assert flaky.runs == 4
    assert [e["event"] for e in logs] == ["actor_restarted"] * 3


async def test_supervisor_gives_up_beyond_budget(autojump_clock: trio.testing.MockClock) -> None:
    flaky = Flaky(crashes=10, every=1)
    gave_up: list[float] = []
    with pytest.RaisesGroup(RuntimeError, flatten_subgroups=True), capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: supervise(
                    flaky,
                    name="flaky",
                    budget=RestartBudget(2, 60.0),
                    on_give_up=lambda: gave_up.append(trio.current_time()),
                    task_status=task_status,
                )
            )
    # started at 0, crashes at 1, 2 (restarted) and 3 (over budget)
    assert gave_up == [3.0]
    assert flaky.runs == 3
    assert logs[-1]["event"] == "actor_gave_up"
