"""Limits on what a customer may send: message rate per session and request body size.

Owns: `TokenBucket` (pure arithmetic on a clock reading), `SessionRateLimiter` (one bucket per
session, on trio's clock so it runs under MockClock), `read_body()` (reads a request body,
refusing it with 413 as soon as it grows past the limit, before it is all in memory) and
`read_request_body()` (the same straight from an ASGI `receive`, for the hot routes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import trio

from transport.chat_errors import Malformed, RateLimited, TooLarge

__all__ = ["Receive", "SessionRateLimiter", "TokenBucket", "read_body", "read_request_body"]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


@dataclass(slots=True)
class TokenBucket:
    """Holds up to `capacity` tokens, refilled at `rate` per second; one message costs one token."""

    capacity: float
    rate: float
    tokens: float
    updated: float

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def try_take(self, now: float) -> float:
        """Take one token; returns 0.0 when taken, else the seconds until one is available."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def is_full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.capacity


class SessionRateLimiter:
    """`per_minute` messages per session: a burst of up to a minute's worth, then a steady rate.

    Buckets that have filled up again are forgotten (a full bucket is the same as none), so the
    table stays as small as the set of sessions that sent something in the last minute.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = trio.current_time) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._next_prune = 64

    def check(self, session_id: str) -> None:
        """Spend one message of the session's budget, or raise `RateLimited` with Retry-After."""
        now = self._clock()
        bucket = self._buckets.get(session_id)
        if bucket is None:
            bucket = TokenBucket(self._capacity, self._rate, self._capacity, now)
            self._buckets[session_id] = bucket
        wait = bucket.try_take(now)
        if wait > 0.0:
            raise RateLimited(
                "rate_limited",
                f"more than {int(self._capacity)} messages a minute; retry in {wait:.1f} s",
                retry_after=wait,
            )
        if len(self._buckets) >= self._next_prune:
            self._prune(now)

    def forget(self, session_id: str) -> None:
        self._buckets.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]
        # Amortised: the next sweep waits until the table has doubled again.
        self._next_prune = max(64, 2 * len(self._buckets))


def _check_declared(declared: str | bytes | None, limit: int) -> None:
    """`TooLarge` when a Content-Length over `limit` is declared (one that is not a number is
    ignored: the length read is checked anyway)."""
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        return
    if length > limit:
        raise TooLarge("body_too_large", f"request body is over {limit} bytes")


async def read_body(declared_length: str | None, chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, or `TooLarge` as soon as the declared or received length passes `limit`."""
    _check_declared(declared_length, limit)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise TooLarge("body_too_large", f"request body is over {limit} bytes")
    return bytes(body)


async def read_request_body(declared: str | bytes | None, receive: Receive, limit: int) -> bytes:
    """The whole body, or `TooLarge` as soon as the declared or received length passes `limit`
    (so an oversized body is refused without reading it all); `Malformed` if the client left."""
    _check_declared(declared, limit)
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                body = body + chunk if body else chunk
                if len(body) > limit:
                    raise TooLarge("body_too_large", f"request body is over {limit} bytes")
            if not message.get("more_body", False):
                return body
        elif message["type"] == "http.disconnect":
            raise Malformed("client_disconnected", "the client went away")
