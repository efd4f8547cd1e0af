"""Exponential backoff with jitter, shared by the Web API retries and the socket reconnects.

Owns `Backoff`, a frozen policy: the n-th consecutive failure (0-based) waits
``min(max_s, base_s * factor**n) * (1 - jitter * u)`` seconds, ``u`` drawn in [0, 1) from an
injected random source, so tests pass a fixed source and assert exact virtual times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "RandomSource"]

RandomSource = Callable[[], float]
"""A callable returning a float in [0, 1), like `random.random`."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait after consecutive failures; `jitter` is the randomised share of each delay."""

    base_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.max_s < self.base_s:
            raise ValueError("backoff needs 0 <= base_s <= max_s")
        if self.factor < 1:
            raise ValueError("backoff factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be within [0, 1]")

    def delay(self, failures: int, random: RandomSource) -> float:
        """Seconds to wait after `failures` + 1 consecutive failures (``failures`` counts from 0)."""
        # Cap the exponent so a long outage never overflows the float.
        raw = self.base_s * self.factor ** min(failures, 64)
        capped = min(self.max_s, raw)
        if self.jitter:
            return capped * (1.0 - self.jitter * random())
        return capped
