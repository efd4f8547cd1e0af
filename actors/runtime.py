"""The actor runtime: bounded mailboxes, tell and ask, the actor loop, and supervision.

Owns:
- `open_mailbox`: a bounded trio memory channel; the send side is an actor's address.
- `tell` (waits for room: backpressure) and `tell_nowait` (never waits; `MailboxFull` instead).
- `Reply` and `ask`: a request carries a one-shot reply channel; the caller waits under its own
  `trio.fail_after`. Requests still queued, or being handled, when an actor stops fail with
  `ActorStopped`, so no caller waits forever on a dead actor.
- `Actor`: serves one mailbox with the trio start protocol. A message whose handler raises is
  logged (`actor_message_failed`) and dropped; it is never retried.
- `supervise`: runs a service again when it crashes, within a restart budget measured on trio's
  clock (`trio.current_time()`, so it behaves the same under `MockClock`).

Error tree:
    ActorError
    ├── ActorStopped      the actor stopped before it could take or answer the message
    ├── MailboxFull       `tell_nowait` found no room
    └── MessageFailed     the handler of an ask raised; the request was dropped
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import structlog
import trio

__all__ = [
    "Actor",
    "ActorError",
    "ActorStopped",
    "MailboxFull",
    "MessageFailed",
    "Reply",
    "RestartBudget",
    "Service",
    "ask",
    "contained",
    "open_mailbox",
    "supervise",
    "tell",
    "tell_nowait",
]

M = TypeVar("M")
T = TypeVar("T")

_log = structlog.get_logger("actors.runtime")


class ActorError(Exception):
    """Base of the runtime's errors."""


class ActorStopped(ActorError):
    """The actor stopped before it could take or answer the message."""


class MailboxFull(ActorError):
    """`tell_nowait` found the mailbox full."""


class MessageFailed(ActorError):
    """The handler of an ask raised; the request was logged and dropped."""


class Reply(Generic[T]):
    """A one-shot reply channel: the first `send` or `fail` wins, later ones are ignored.

    Answering never blocks, so an actor can answer from inside its handler without any risk of
    waiting on the caller. The caller takes the answer with `await reply.receive()`.
    """

    __slots__ = ("_error", "_event", "_has_value", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None
        self._has_value = False
        self._error: BaseException | None = None

    @property
    def answered(self) -> bool:
        return self._event.is_set()

    def send(self, value: T) -> bool:
        """Answer; returns False when the reply was already answered."""
        if self._event.is_set():
            return False
        self._value, self._has_value = value, True
        self._event.set()
        return True

    def fail(self, error: BaseException) -> bool:
        """Answer with an error raised in the caller; False when already answered."""
        if self._event.is_set():
            return False
        self._error = error
        self._event.set()
        return True

    async def receive(self) -> T:
        await self._event.wait()
        if self._error is not None:
            raise self._error
        assert self._has_value
        return self._value  # type: ignore[return-value]


def open_mailbox(
    capacity: int,
) -> tuple[trio.MemorySendChannel[M], trio.MemoryReceiveChannel[M]]:
    """A bounded mailbox; hand out the send side as the actor's address."""
    if capacity < 1:
        raise ValueError("a mailbox holds at least one message")
    return trio.open_memory_channel[M](capacity)


async def tell(to: trio.MemorySendChannel[M], message: M) -> None:
    """Send without waiting for an answer; waits while the mailbox is full."""
    try:
        await to.send(message)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        raise ActorStopped(f"cannot deliver {type(message).__name__}: the actor stopped") from None


def tell_nowait(to: trio.MemorySendChannel[M], message: M) -> None:
    """Send at once or raise `MailboxFull`; for actors that must never wait on each other."""
    try:
        to.send_nowait(message)
    except trio.WouldBlock:
        raise MailboxFull(f"mailbox full, {type(message).__name__} not delivered") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        raise ActorStopped(f"cannot deliver {type(message).__name__}: the actor stopped") from None


async def ask(to: trio.MemorySendChannel[M], make: Callable[[Reply[T]], M]) -> T:
    """Send the request built by `make(reply)` and wait for its answer.

    The caller places the deadline: `with trio.fail_after(5): await ask(box, Ping)`.
    """
    reply: Reply[T] = Reply()
    await tell(to, make(reply))
    return await reply.receive()


def _reply_of(message: object) -> Reply[Any] | None:
    reply = getattr(message, "reply", None)
    return reply if isinstance(reply, Reply) else None


def _fail_request(message: object, error: BaseException) -> None:
    reply = _reply_of(message)
    if reply is not None:
        reply.fail(error)


class Actor(abc.ABC, Generic[M]):
    """Serves one mailbox: one message at a time, in arrival order.

    Subclasses implement `handle` (a `match` over their mailbox union ending in `assert_never`).
    `run` follows the trio start protocol. When `run` ends (cancelled, or the mailbox closed) the
    mailbox is closed and queued requests fail with `ActorStopped`. When `run` crashes the mailbox
    stays open, so a supervisor can run the same actor again without losing its address.
    """

    __slots__ = ("_current", "_finishing", "_inbox", "mailbox")

    def __init__(self, capacity: int) -> None:
        self.mailbox: trio.MemorySendChannel[M]
        self.mailbox, self._inbox = open_mailbox(capacity)
        self._current: M | None = None
        self._finishing = False

    def finish(self) -> None:
        """Stop once the mailbox is empty (called from `handle` when the actor's work is done)."""
        self._finishing = True

    @property
    def queued(self) -> int:
        """Messages waiting in the mailbox."""
        return self.mailbox.statistics().current_buffer_used

    @abc.abstractmethod
    async def handle(self, message: M) -> None:
        """Handle one message; an exception here drops the message (it is logged)."""

    async def on_start(self) -> None:
        """Set up before the actor reports itself started; may raise."""

    def _log_failure(self, message: M) -> None:
        _log.exception(
            "actor_message_failed", actor=type(self).__name__, message=type(message).__name__
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await self.on_start()
            task_status.started()
            async for message in self._inbox:
                self._current = message
                try:
                    await self.handle(message)
                except Exception:
                    self._log_failure(message)
                    _fail_request(message, MessageFailed(f"{type(message).__name__} failed"))
                self._current = None
                if self._finishing and not self.queued:
                    break
        except Exception:
            self._fail_current()
            raise
        except BaseException:
            self.stop()
            raise
        else:
            self.stop()

    def _fail_current(self) -> None:
        if self._current is not None:
            _fail_request(self._current, ActorStopped(f"{type(self).__name__} stopped"))
            self._current = None

    def stop(self) -> None:
        """Close the mailbox: senders get `ActorStopped`, queued and current requests fail."""
        self._fail_current()
        error = ActorStopped(f"{type(self).__name__} stopped")
        while True:
            try:
                message = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            _fail_request(message, error)
        self._inbox.close()


class Service(Protocol):
    async def run(self, *, task_status: trio.TaskStatus[Any] = ...) -> None: ...


@dataclass(frozen=True, slots=True)
class RestartBudget:
    """At most `max_restarts` restarts within any `within_s` seconds of trio time."""

    max_restarts: int = 3
    within_s: float = 60.0


async def supervise(
    service: Service,
    *,
    name: str,
    budget: RestartBudget = RestartBudget(),
    on_give_up: Callable[[], Awaitable[None] | None] | None = None,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run `service` and run it again when it crashes, until the budget is spent.

    The first start is reported through `task_status` (a crash before it propagates at once: a
    service that cannot start is a configuration problem, not a transient one). A crash beyond
    the budget is logged (`actor_gave_up`) and re-raised to the parent nursery.
    """
    restarts: deque[float] = deque()
    first = True
    while True:
        try:
            async with trio.open_nursery() as nursery:
                value = await nursery.start(service.run)
                if first:
                    first = False
                    task_status.started(value)
            return
        except Exception as exc:
            if first:
                raise
            now = trio.current_time()
            while restarts and now - restarts[0] >= budget.within_s:
                restarts.popleft()
            if len(restarts) >= budget.max_restarts:
                _log.error("actor_gave_up", actor=name, restarts=len(restarts), error=repr(exc))
                if on_give_up is not None:
                    result = on_give_up()
                    if result is not None:
                        await result
                raise
            restarts.append(now)
            _log.warning("actor_restarted", actor=name, restarts=len(restarts), error=repr(exc))


class _Status:
    """A task_status that remembers whether the service reported itself started."""

    __slots__ = ("_inner", "started_yet")

    def __init__(self, inner: trio.TaskStatus[Any]) -> None:
        self._inner = inner
        self.started_yet = False

    def started(self, value: Any = None) -> None:
        self.started_yet = True
        self._inner.started(value)


async def contained(
    service: Service, *, name: str, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a service that must not take its siblings down: a crash after it started is logged
    (`actor_crashed`) and ends only this service; a crash before it started is raised to the
    caller of `nursery.start`."""
    status = _Status(task_status)
    try:
        await service.run(task_status=status)
    except Exception:
        if not status.started_yet:
            raise
        _log.exception("actor_crashed", actor=name)
