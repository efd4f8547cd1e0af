"""The results of a run: the checks, the summary table, and the JSON report.

Owns `checks` (zero lost, zero duplicated, every escalation reached an outcome, nothing left
searching in the daemon, the audit complete), `summary_table` (rich) and `json_report` (the
profile, the machine, counters, every latency summary with its encoded HdrHistogram, per-interval
series, the processes' CPU and memory, the audit). The JSON's `ok` is what the exit code says.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from typing import Any

from rich.console import Group
from rich.table import Table

from loadtest.recorder import COUNTERS, METRICS
from loadtest.runner import RunResult

__all__ = ["checks", "json_report", "summary_table"]

KEY_METRICS = ("escalation_to_offer", "offer_to_outcome", "customer_to_room", "agent_to_customer")


def checks(result: RunResult) -> dict[str, bool]:
    searching = result.daemon_stats.get("escalations", {}).get("searching", 0)
    return {
        "no_message_lost": result.audit.lost == 0,
        "no_message_duplicated": result.audit.duplicated == 0,
        "every_escalation_reached_an_outcome": not result.without_outcome,
        "nothing_left_searching": searching == 0,
        "audit_complete": not result.unaudited,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.1f}"


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.1f}/s" if seconds > 0 else "-"


def summary_table(result: RunResult) -> Group:
    r, load_s = result.recorder, result.load_s
    latency = Table(title="Latency (ms)", title_justify="left")
    latency.add_column("measure")
    for col in ("n", "p50", "p90", "p99", "p99.9", "max"):
        latency.add_column(col, justify="right")
    for name, label in METRICS.items():
        s = r.summary(name)
        if s.count == 0 and name not in KEY_METRICS:
            continue
        latency.add_row(
            label, f"{s.count:,}", _ms(s.p50), _ms(s.p90), _ms(s.p99), _ms(s.p999), _ms(s.max)
        )
    counts = Table(title=f"Counts over {load_s:.0f} s of load", title_justify="left")
    counts.add_column("what")
    counts.add_column("count", justify="right")
    counts.add_column("rate", justify="right")
    for name, label in COUNTERS.items():
        if r.counts[name] or name in ("errors", "customer_messages", "agent_messages"):
            counts.add_row(label, f"{r.counts[name]:,}", _rate(r.counts[name], load_s))
    procs = Table(title="Processes (during the load)", title_justify="left")
    for col in ("process", "CPU s", "mean cores", "max cores", "peak RSS MiB"):
        procs.add_column(col, justify="right" if col != "process" else "left")
    for series in result.monitor.series.values():
        mean = series.mean_cores
        procs.add_row(
            series.name,
            "-" if series.cpu_s is None else f"{series.cpu_s:.1f}",
            "-" if mean is None else f"{mean:.2f}",
            f"{max(series.cores, default=0):.2f}",
            f"{series.peak_rss / 2**20:.0f}",
        )
    verdict = Table(title="Checks", title_justify="left")
    verdict.add_column("check")
    verdict.add_column("result")
    a = result.audit
    details = {
        "no_message_lost": f"{a.lost} lost of {a.expected_in_rooms + a.expected_by_customers}",
        "no_message_duplicated": f"{a.duplicated} duplicated",
        "every_escalation_reached_an_outcome": (
            f"{result.escalated - len(result.without_outcome)} of {result.escalated}"
        ),
        "nothing_left_searching": "daemon /api/stats",
        "audit_complete": f"{len(result.unaudited)} sessions unreadable",
    }
    for name, ok in checks(result).items():
        verdict.add_row(name.replace("_", " "), f"{'PASS' if ok else 'FAIL'}  ({details[name]})")
    return Group(latency, counts, procs, verdict)


def json_report(result: RunResult) -> dict[str, Any]:
    r, end = result.recorder, result.load_s
    passed = checks(result)
    return {
        "ok": all(passed.values()),
        "checks": passed,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "profile": result.profile.model_dump(mode="json"),
        "elapsed_s": result.elapsed_s,
        "load_s": result.load_s,
        "escalations": {
            "started": result.escalated,
            "without_outcome": result.without_outcome,
        },
        "counts": dict(r.counts),
        "rates_per_s": {k: (v / end if end > 0 else None) for k, v in r.counts.items()},
        "errors": dict(r.errors),
        "latency": {
            name: {
                "what": label,
                **r.summary(name).to_json(),
                "hdr_histogram_us": r.encoded(name),
                "series": r.series(name, end),
            }
            for name, label in METRICS.items()
        },
        "throughput_series_per_s": {name: r.rates(name, end) for name in COUNTERS},
        "processes": {name: s.to_json() for name, s in result.monitor.series.items()},
        "audit": {**result.audit.to_json(), "unaudited_sessions": result.unaudited},
        "daemon_stats_at_end": result.daemon_stats.get("escalations", {}),
    }
