"""The live progress display of a run (rich), refreshed a few times a second on stderr.

Owns `show_progress(ctx, monitor)`: phase and time, customers, escalations and offers with their
outcomes, messages each way with their rates over the last seconds, p99 so far of the four key
latencies, errors, and the daemon's and emulator's CPU and RSS. On a terminal that is not a TTY it
prints one plain line every `PLAIN_EVERY_S` instead.
"""

from __future__ import annotations

from collections import deque

import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from loadtest.context import RunContext
from loadtest.monitor import ProcessMonitor
from loadtest.recorder import METRICS
from loadtest.report import KEY_METRICS

__all__ = ["show_progress"]

REFRESH_S = 0.5
RATE_WINDOW_S = 5.0
PLAIN_EVERY_S = 10.0


class _Rates:
    """Rates over the last few seconds, from counter snapshots."""

    def __init__(self) -> None:
        self._snapshots: deque[tuple[float, dict[str, int]]] = deque()

    def update(self, now: float, counts: dict[str, int]) -> dict[str, float]:
        self._snapshots.append((now, dict(counts)))
        while len(self._snapshots) > 2 and now - self._snapshots[0][0] > RATE_WINDOW_S:
            self._snapshots.popleft()
        t0, first = self._snapshots[0]
        dt = now - t0
        return {k: (v - first.get(k, 0)) / dt if dt > 0 else 0.0 for k, v in counts.items()}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f} ms"


def _table(ctx: RunContext, monitor: ProcessMonitor, rates: dict[str, float]) -> Table:
    c, p = ctx.recorder.counts, ctx.profile
    t = Table(title=f"takeover load test - {ctx.phase}", title_justify="left", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row(
        "time", f"{ctx.now():.0f} s of {p.duration_s:.0f} s (+ drain up to {p.drain_s:.0f} s)"
    )
    t.add_row(
        "customers",
        f"{ctx.active_customers} active, {c['customers_started']} arrived, "
        f"{c['customers_done']} done ({rates['customers_started']:.1f}/s)",
    )
    t.add_row(
        "escalations",
        f"{c['escalations']} asked, {c['agent_joined']} joined, {c['no_agent']} nobody available",
    )
    t.add_row(
        "offers",
        f"{c['offers']} seen: {c['accepted']} accepted, {c['ignored']} ignored, "
        f"{c['missed']} missed, {c['withdrawn']} withdrawn, {c['too_late']} too late",
    )
    t.add_row(
        "messages",
        f"customer->room {c['relayed_to_room']} ({rates['relayed_to_room']:.0f}/s), "
        f"agent->customer {c['relayed_to_customer']} ({rates['relayed_to_customer']:.0f}/s)",
    )
    t.add_row(
        "p99 so far",
        ", ".join(
            f"{METRICS[m].split(' -> ')[-1]} {_ms(ctx.recorder.percentile(m, 99))}"
            for m in KEY_METRICS
        ),
    )
    for name in ("daemon", "emulator", "loadtest"):
        latest = monitor.latest(name)
        if latest is not None:
            t.add_row(name, f"{latest[0]:.2f} cores, {latest[1]:.0f} MiB")
    errors = ", ".join(f"{k} {v}" for k, v in sorted(ctx.recorder.errors.items())[:6])
    t.add_row("errors", f"{c['errors']}" + (f" ({errors})" if errors else ""))
    return t


async def show_progress(ctx: RunContext, monitor: ProcessMonitor, console: Console) -> None:
    rates = _Rates()
    if not console.is_terminal:
        while True:
            await trio.sleep(PLAIN_EVERY_S)
            c = ctx.recorder.counts
            console.print(
                f"[{ctx.now():.0f}s {ctx.phase}] customers {ctx.active_customers} active "
                f"{c['customers_started']} arrived; escalations {c['escalations']}; offers "
                f"{c['offers']}; relayed {c['relayed_to_room']}/{c['relayed_to_customer']}; "
                f"errors {c['errors']}",
                highlight=False,
            )
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            now_rates = rates.update(ctx.now(), ctx.recorder.counts)
            live.update(_table(ctx, monitor, now_rates))
            await trio.sleep(REFRESH_S)
