"""A `FactSink` that shows every durable fact to read models, after the real sink has it.

Owns `FactTap`: `record(fact)` records through the sink it wraps (the journal) and, once the
fact is durable, hands it to each observer in turn. Observers are read models and watchers (the
escalation history, the hygiene actor): plain callables that never wait and never raise; one
that raises anyway is logged (`fact_observer_failed`) and the others still see the fact. A fact
the inner sink refuses (the journal failed) is shown to nobody: read models only ever hold what
a replay would.

    sink = FactTap(journal_sink, history.observe, hygiene.observe)
    domain = Domain(..., sink=sink)
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from actors.facts import Fact, FactSink

__all__ = ["FactObserver", "FactTap"]

_log = structlog.get_logger("actors.fact_tap")

FactObserver = Callable[[Fact], None]


class FactTap:
    __slots__ = ("_inner", "_observers", "observed")

    def __init__(self, inner: FactSink, *observers: FactObserver) -> None:
        self._inner = inner
        self._observers = observers
        self.observed = 0

    @property
    def inner(self) -> FactSink:
        return self._inner

    async def record(self, fact: Fact) -> None:
        await self._inner.record(fact)
        self.observed += 1
        for observe in self._observers:
            try:
                observe(fact)
            except Exception:
                _log.exception("fact_observer_failed", fact=type(fact).__name__)
