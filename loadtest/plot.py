"""The PNG of a run: latency percentiles over time, throughput and CPU, and latency histograms.

Owns `write_plot(result, path)`, with matplotlib's Agg backend (no display needed). Layout:
- one panel per key latency (escalation -> offer, offer -> outcome, customer -> room,
  agent -> customer): p50, p99 and max per interval over the run, log scale;
- throughput per interval (messages each way, escalations) with the daemon's CPU in cores;
- the four latencies' histograms (log-spaced bins), with p50 and p99 marked.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from loadtest.recorder import METRICS
from loadtest.report import KEY_METRICS
from loadtest.runner import RunResult

__all__ = ["write_plot"]


def _ms(values: list[float | int | None]) -> list[float]:
    return [math.nan if v is None else float(v) * 1000 for v in values]


def write_plot(result: RunResult, path: str | Path) -> None:
    r, end = result.recorder, result.load_s
    fig, axes = plt.subplots(3, 4, figsize=(20, 12), constrained_layout=True)
    fig.suptitle(
        f"takeover load test: {result.profile.agents.count} agents, "
        f"{r.counts['customers_started']} customers, {end:.0f} s"
    )
    for col, name in enumerate(KEY_METRICS):
        ax = axes[0][col]
        series = r.series(name, end)
        t = [row["t"] for row in series]
        for key, style in (("p50", ".-"), ("p99", ".-"), ("max", ".:")):
            ax.plot(t, _ms([row[key] for row in series]), style, label=key, markersize=3)
        ax.set_title(METRICS[name], fontsize=10)
        ax.set_xlabel("run time (s)")
        ax.set_ylabel("ms")
        if r.summary(name).count:
            ax.set_yscale("log")
            ax.legend(fontsize=8)
    ax = axes[1][0]
    for counter, label in (
        ("relayed_to_room", "customer -> room"),
        ("relayed_to_customer", "agent -> customer"),
        ("escalations", "escalations"),
        ("offers", "offers"),
    ):
        rates = r.rates(counter, end)
        ax.plot([i * r.interval_s for i in range(len(rates))], rates, label=label)
    ax.set_title("throughput (per second)", fontsize=10)
    ax.set_xlabel("run time (s)")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    for proc in result.monitor.series.values():
        ax.plot(proc.times, proc.cores, label=proc.name)
    ax.set_title("CPU (cores)", fontsize=10)
    ax.set_xlabel("run time (s)")
    ax.legend(fontsize=8)
    ax = axes[1][2]
    for proc in result.monitor.series.values():
        ax.plot(proc.times, proc.rss_mib, label=proc.name)
    ax.set_title("RSS (MiB)", fontsize=10)
    ax.set_xlabel("run time (s)")
    ax.legend(fontsize=8)
    ax = axes[1][3]
    rates = r.rates("customers_started", end)
    ax.plot([i * r.interval_s for i in range(len(rates))], rates, label="arrivals")
    ax.set_title("customers arriving (per second)", fontsize=10)
    ax.set_xlabel("run time (s)")
    for col, name in enumerate(KEY_METRICS):
        ax = axes[2][col]
        values = [v * 1000 for v in r.values(name) if v > 0]
        ax.set_title(f"{METRICS[name]} (histogram)", fontsize=10)
        ax.set_xlabel("ms")
        if not values:
            continue
        low, high = max(min(values), 1e-3), max(max(values), 1e-3) * 1.01
        bins = [low * (high / low) ** (i / 60) for i in range(61)] if high > low else 10
        ax.hist(values, bins=bins)
        ax.set_xscale("log")
        s = r.summary(name)
        for value, label in ((s.p50, "p50"), (s.p99, "p99")):
            if value is not None:
                ax.axvline(value * 1000, color="red" if label == "p99" else "black", ls="--")
                ax.text(value * 1000, ax.get_ylim()[1] * 0.9, f" {label}", fontsize=8)
    fig.savefig(path, dpi=80)
    plt.close(fig)
