"""CPU and memory of the processes of a run, sampled with psutil.

Owns `ProcessMonitor`: every interval, each watched process's CPU time (user + system) and RSS;
the CPU used between `mark_start()` and `mark_end()` (the load window) in seconds and in cores;
peak RSS (the kernel's high-water mark `VmHWM` where /proc has it, else the highest sample). A
process that has exited keeps its last figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import trio

__all__ = ["ProcessMonitor", "ProcessSeries"]

MIB = 1024 * 1024


def _hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(slots=True)
class ProcessSeries:
    name: str
    pid: int
    times: list[float] = field(default_factory=list)
    cores: list[float] = field(default_factory=list)  # CPU cores used over the last interval
    rss_mib: list[float] = field(default_factory=list)
    peak_rss: int = 0
    cpu_at_start: float | None = None
    cpu_at_end: float | None = None
    last_cpu: float = 0.0
    window_s: float = 0.0

    @property
    def cpu_s(self) -> float | None:
        if self.cpu_at_start is None or self.cpu_at_end is None:
            return None
        return self.cpu_at_end - self.cpu_at_start

    @property
    def mean_cores(self) -> float | None:
        cpu = self.cpu_s
        return None if cpu is None or self.window_s <= 0 else cpu / self.window_s

    def to_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "cpu_s": self.cpu_s,
            "mean_cores": self.mean_cores,
            "max_cores": max(self.cores, default=None),
            "peak_rss_mib": self.peak_rss / MIB,
            "series": {"t": self.times, "cores": self.cores, "rss_mib": self.rss_mib},
        }


class ProcessMonitor:
    def __init__(
        self, processes: dict[str, int], clock: Callable[[], float], interval_s: float = 1.0
    ) -> None:
        self.interval_s = interval_s
        self._now = clock
        self.series = {name: ProcessSeries(name, pid) for name, pid in processes.items()}
        self._handles = {name: psutil.Process(pid) for name, pid in processes.items()}
        self._window_started: float | None = None

    def _cpu(self, name: str) -> float | None:
        try:
            t = self._handles[name].cpu_times()
        except psutil.Error:
            return None
        return float(t.user + t.system)

    def sample(self) -> None:
        now = self._now()
        for name, series in self.series.items():
            cpu = self._cpu(name)
            try:
                rss = int(self._handles[name].memory_info().rss)
            except psutil.Error:
                continue
            if cpu is None:
                continue
            if series.times:
                dt = now - series.times[-1]
                series.cores.append((cpu - series.last_cpu) / dt if dt > 0 else 0.0)
            else:
                series.cores.append(0.0)
            series.times.append(now)
            series.last_cpu = cpu
            series.rss_mib.append(rss / MIB)
            series.peak_rss = max(series.peak_rss, rss, _hwm(series.pid) or 0)

    def mark_start(self) -> None:
        self._window_started = self._now()
        for name, series in self.series.items():
            series.cpu_at_start = self._cpu(name)

    def mark_end(self) -> None:
        now = self._now()
        for name, series in self.series.items():
            cpu = self._cpu(name)
            series.cpu_at_end = cpu if cpu is not None else series.last_cpu
            series.window_s = now - (self._window_started or now)
            series.peak_rss = max(series.peak_rss, _hwm(series.pid) or 0)

    def latest(self, name: str) -> tuple[float, float] | None:
        """(cores over the last interval, RSS MiB) of a process, if sampled."""
        series = self.series.get(name)
        if series is None or not series.times:
            return None
        return series.cores[-1], series.rss_mib[-1]

    async def run(self) -> None:
        while True:
            self.sample()
            await trio.sleep(self.interval_s)
