"""Slack's per-method rate tiers as token buckets on trio's clock, and the queue in front of them.

Owns `Tier` (calls per minute plus a small burst), `RateLimits` (the method table: Slack's
published tiers by default, each entry overridable, or everything off) and `RateLimiter`, which
callers await before each Web API request.

A bucket is kept as a GCRA "theoretical arrival time", so with ``burst`` b and interval i the
first b calls pass at once and the next one passes exactly i seconds after the first. Waiters
queue FIFO behind a `trio.Lock` per bucket, so a caller never overtakes an earlier one. A 429
blocks its whole method until ``Retry-After`` has passed (`RateLimiter.block`); other methods
keep flowing. Per-channel tiers (chat.postMessage, about one per second per channel) keep one
bucket per channel and forget idle ones.

`eta(method, channel)` tells without waiting when a call made now would pass (behind the callers
already queued), so a caller with a budget of its own can decide not to queue at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import trio

__all__ = [
    "SLACK_TIERS",
    "TIER_1",
    "TIER_2",
    "TIER_3",
    "TIER_4",
    "MethodQueueStatistics",
    "RateLimiter",
    "RateLimiterStatistics",
    "RateLimits",
    "Tier",
]


@dataclass(frozen=True, slots=True)
class Tier:
    """At most `per_minute` calls a minute after a burst of `burst`; `per_channel` keys it by channel."""

    per_minute: float
    burst: int = 1
    per_channel: bool = False

    def __post_init__(self) -> None:
        if not self.per_minute > 0 or self.burst < 1:
            raise ValueError("a tier needs per_minute > 0 and burst >= 1")

    @property
    def interval(self) -> float:
        """Seconds between calls once the burst is spent."""
        return 60.0 / self.per_minute


# Slack's published tiers (https://api.slack.com/apis/rate-limits); "small bursts" are tolerated.
TIER_1 = Tier(1, burst=3)
TIER_2 = Tier(20, burst=5)
TIER_3 = Tier(50, burst=10)
TIER_4 = Tier(100, burst=20)
POST_PER_CHANNEL = Tier(60, burst=3, per_channel=True)

SLACK_TIERS: Mapping[str, Tier] = MappingProxyType(
    {
        "apps.connections.open": TIER_1,
        "auth.test": TIER_4,
        "chat.postEphemeral": TIER_4,
        "chat.postMessage": POST_PER_CHANNEL,
        "chat.update": TIER_3,
        "conversations.archive": TIER_2,
        "conversations.create": TIER_2,
        "conversations.history": TIER_3,
        "conversations.info": TIER_3,
        "conversations.invite": TIER_3,
        "conversations.members": TIER_4,
        "conversations.open": TIER_3,
        "conversations.rename": TIER_2,
        "conversations.replies": TIER_3,
        "conversations.setTopic": TIER_2,
        "conversations.unarchive": TIER_2,
        "pins.add": TIER_2,
        "rtm.connect": TIER_1,
        "users.getPresence": TIER_3,
        "users.info": TIER_4,
        "users.list": TIER_2,
        "users.profile.get": TIER_4,
        "users.setPresence": TIER_2,
        "views.publish": TIER_4,
    }
)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Which tier each method gets; `default` covers methods not in the table (None: unlimited)."""

    tiers: Mapping[str, Tier | None] = field(default_factory=lambda: SLACK_TIERS)
    default: Tier | None = TIER_3

    @classmethod
    def slack(cls) -> RateLimits:
        """Slack's published tiers."""
        return cls()

    @classmethod
    def off(cls) -> RateLimits:
        """No client-side pacing at all (429s from the server are still honoured)."""
        return cls(tiers=MappingProxyType({}), default=None)

    def with_tiers(self, overrides: Mapping[str, Tier | None]) -> RateLimits:
        """A copy where each method in `overrides` gets that tier (None: unlimited)."""
        return RateLimits(MappingProxyType({**self.tiers, **overrides}), self.default)

    def tier_for(self, method: str) -> Tier | None:
        return self.tiers.get(method, self.default)


@dataclass(frozen=True, slots=True)
class MethodQueueStatistics:
    """One method's queue: calls admitted, how many had to wait and for how long, 429 blocks."""

    admitted: int
    waited: int
    waiting: int
    queue_delay_total_s: float
    queue_delay_max_s: float
    rate_limited: int
    blocked_for_s: float
    channel_buckets: int


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    methods: Mapping[str, MethodQueueStatistics]
    waiting: int
    queue_delay_total_s: float
    queue_delay_max_s: float


class _Bucket:
    __slots__ = ("lock", "tat", "waiting")

    def __init__(self) -> None:
        self.tat = -math.inf  # GCRA theoretical arrival time of the next call
        self.lock = trio.Lock()
        self.waiting = 0  # callers queued on this bucket


class _MethodState:
    __slots__ = (
        "admitted",
        "blocked_until",
        "bucket",
        "channels",
        "delay_max",
        "delay_total",
        "lock",
        "prune_at",
        "rate_limited",
        "tier",
        "waited",
        "waiting",
    )

    def __init__(self, tier: Tier | None) -> None:
        self.tier = tier
        self.blocked_until = -math.inf
        self.lock = trio.Lock()  # queue for unpaced methods while blocked by a 429
        self.bucket = _Bucket() if tier is not None and not tier.per_channel else None
        self.channels: dict[str, _Bucket] = {}
        self.prune_at = 256
        self.admitted = self.waited = self.waiting = self.rate_limited = 0
        self.delay_total = self.delay_max = 0.0

    def bucket_for(self, channel: str | None) -> _Bucket | None:
        if self.tier is None or not self.tier.per_channel:
            return self.bucket
        key = channel or ""
        bucket = self.channels.get(key)
        if bucket is None:
            if len(self.channels) >= self.prune_at:
                self._prune()
            bucket = self.channels[key] = _Bucket()
        return bucket

    def _prune(self) -> None:
        """Forget channel buckets that are full again and idle: a fresh bucket behaves the same."""
        now = trio.current_time()
        idle = [k for k, b in self.channels.items() if b.tat <= now and not b.lock.locked()]
        for key in idle:
            del self.channels[key]
        self.prune_at = max(256, 2 * len(self.channels))


class RateLimiter:
    """Paces calls per method (and per channel where the tier says so); callers wait their turn."""

    def __init__(self, limits: RateLimits | None = None) -> None:
        self._limits = limits if limits is not None else RateLimits.slack()
        self._states: dict[str, _MethodState] = {}

    def _state(self, method: str) -> _MethodState:
        state = self._states.get(method)
        if state is None:
            state = self._states[method] = _MethodState(self._limits.tier_for(method))
        return state

    async def acquire(self, method: str, channel: str | None = None) -> float:
        """Wait for this method's (and channel's) turn; returns the seconds spent queueing."""
        state = self._states.get(method) or self._state(method)
        bucket = state.bucket_for(channel)
        now = trio.current_time()
        if state.blocked_until <= now:
            if bucket is None:
                state.admitted += 1
                return 0.0
            tier = state.tier
            assert tier is not None
            if not bucket.lock.locked() and bucket.tat - (tier.burst - 1) * tier.interval <= now:
                bucket.tat = max(bucket.tat, now) + tier.interval
                state.admitted += 1
                return 0.0
        return await self._queue(state, bucket, now)

    def eta(self, method: str, channel: str | None = None) -> float:
        """Seconds from now until a call of `method` (on `channel`) made now would pass: 0.0
        when at once. Counts the callers already queued ahead of it and any 429 block; does
        not wait and does not take a turn."""
        state = self._states.get(method)
        if state is None:
            return 0.0  # never called: a fresh, full bucket
        now = trio.current_time()
        start = max(now, state.blocked_until)
        tier = state.tier
        if tier is None:
            return start - now
        bucket = state.bucket if not tier.per_channel else state.channels.get(channel or "")
        if bucket is None:
            return start - now
        # GCRA: the k-th of the calls from `start` on passes at
        # max(start, max(tat, start) + (k - burst) * interval); ours is k = waiting + 1.
        ahead = bucket.waiting + 1 - tier.burst
        ready = max(start, max(bucket.tat, start) + ahead * tier.interval)
        return ready - now

    async def _queue(self, state: _MethodState, bucket: _Bucket | None, start: float) -> float:
        tier = state.tier
        state.waiting += 1
        if bucket is not None:
            bucket.waiting += 1
        try:
            async with bucket.lock if bucket is not None else state.lock:
                while True:
                    now = trio.current_time()
                    ready = state.blocked_until
                    if bucket is not None and tier is not None:
                        ready = max(ready, bucket.tat - (tier.burst - 1) * tier.interval)
                    if ready <= now:
                        break
                    await trio.sleep_until(ready)
                if bucket is not None and tier is not None:
                    bucket.tat = max(bucket.tat, now) + tier.interval
        finally:
            state.waiting -= 1
            if bucket is not None:
                bucket.waiting -= 1
        delay = now - start
        state.admitted += 1
        if delay > 0:
            state.waited += 1
            state.delay_total += delay
            state.delay_max = max(state.delay_max, delay)
        return delay

    def block(self, method: str, retry_after: float) -> None:
        """Slack answered 429 for `method`: hold all its callers for `retry_after` seconds."""
        state = self._state(method)
        state.rate_limited += 1
        state.blocked_until = max(state.blocked_until, trio.current_time() + max(0.0, retry_after))

    def statistics(self) -> RateLimiterStatistics:
        now = trio.current_time()
        methods = {
            name: MethodQueueStatistics(
                admitted=s.admitted,
                waited=s.waited,
                waiting=s.waiting,
                queue_delay_total_s=s.delay_total,
                queue_delay_max_s=s.delay_max,
                rate_limited=s.rate_limited,
                blocked_for_s=max(0.0, s.blocked_until - now),
                channel_buckets=len(s.channels),
            )
            for name, s in sorted(self._states.items())
        }
        return RateLimiterStatistics(
            methods=MappingProxyType(methods),
            waiting=sum(m.waiting for m in methods.values()),
            queue_delay_total_s=sum(m.queue_delay_total_s for m in methods.values()),
            queue_delay_max_s=max((m.queue_delay_max_s for m in methods.values()), default=0.0),
        )
