"""Slack's per-method rate tiers, enforced as token buckets. Pure: the caller passes the time.

Owns the tier of each Web API method (today's Slack docs), the per-minute allowance of each tier,
chat.postMessage's special limit (about one message per second per channel, with a short burst)
and the `Retry-After` a refused call is told. Buckets are kept per token and method (per token and
channel for chat.postMessage), as Slack counts per app or user and workspace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["METHOD_TIERS", "TIER_PER_MINUTE", "RateLimiter"]

# Requests per minute; Slack tolerates bursts, so a bucket holds a whole minute's allowance.
TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}

METHOD_TIERS: dict[str, int | None] = {
    "auth.test": None,  # "special": thousands per minute
    "apps.connections.open": 1,
    "rtm.connect": 1,
    "chat.postMessage": None,  # special: see POST_MESSAGE_PER_SECOND
    "chat.postEphemeral": 4,
    "chat.update": 3,
    "chat.delete": 3,
    "conversations.open": 3,
    "conversations.create": 2,
    "conversations.invite": 3,
    "conversations.archive": 2,
    "conversations.unarchive": 2,
    "conversations.info": 3,
    "conversations.history": 3,
    "conversations.members": 4,
    "conversations.list": 2,
    "conversations.join": 3,
    "conversations.rename": 2,
    "conversations.setTopic": 2,
    "pins.add": 2,
    "users.info": 4,
    "users.list": 2,
    "users.getPresence": 3,
    "users.setPresence": 2,
    "users.profile.get": 4,
    "views.publish": 4,
}

POST_MESSAGE_PER_SECOND = 1.0
POST_MESSAGE_BURST = 5
_EPSILON = 1e-9  # refills are sums of small floats


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by (token, method[, channel])."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, ...], _Bucket] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def check(self, method: str, token: str, channel: str | None, now: float) -> int | None:
        """Take one call from the bucket; None if allowed, else the `Retry-After` in seconds."""
        if method == "chat.postMessage":
            rate, capacity = POST_MESSAGE_PER_SECOND, float(POST_MESSAGE_BURST)
            key: tuple[str, ...] = (token, method, channel or "")
        else:
            tier = METHOD_TIERS.get(method)
            if tier is None:
                return None
            capacity = float(TIER_PER_MINUTE[tier])
            rate = capacity / 60.0
            key = (token, method)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0 - _EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / rate - _EPSILON))
