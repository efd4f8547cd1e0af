"""Idle customer sessions in the real daemon: RSS of the daemon process as sessions are opened.

    python benchmarks/daemon_idle_sessions.py [--sessions 10000 100000] [--parallel 64]

Starts the emulator and the daemon in their own processes, as `python run.py loadtest` does
(journal on disk, `fsync: batch`, Socket Mode against the emulator, 3 agents), then opens sessions
through the customer API (`POST /api/sessions`, each greeted by the bot) and leaves them idle, no
socket held. After each step the daemon's RSS (psutil) and its peak (VmHWM) are read; the bytes per
session are the growth divided by the sessions opened. The baseline, measured in the same run, is
the same daemon right after start-up (no session).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loadtest.http import JsonHttp
from loadtest.monitor import _hwm
from loadtest.processes import start_stack
from loadtest.profile import load_profile

MIB = 1024 * 1024


async def open_sessions(http: JsonHttp, start: int, n: int, parallel: int) -> None:
    limit = trio.CapacityLimiter(parallel)

    async def one(i: int) -> None:
        async with limit:
            reply = await http.call("POST", "/api/sessions", {"customer_id": f"idle{i}"})
            if reply.status != 201:
                raise RuntimeError(f"session {i}: {reply.status} {reply.body}")

    async with trio.open_nursery() as nursery:
        for i in range(start, start + n):
            nursery.start_soon(one, i)


async def run(args: argparse.Namespace) -> None:
    profile = load_profile(None, {"agents.count": 3, "daemon.log_level": "warning"})
    workdir = Path(tempfile.mkdtemp(prefix="takeover-idle-"))
    async with start_stack(str(Path(args.settings)), profile, workdir) as stack:
        assert stack.daemon_pid is not None
        daemon = psutil.Process(stack.daemon_pid)
        http = JsonHttp(stack.chat_url, connections=args.parallel)
        await trio.sleep(2)
        base = daemon.memory_info().rss
        print(f"daemon after start-up: RSS {base / MIB:.1f} MiB (baseline)")
        print(f"{'sessions':>9} {'RSS MiB':>9} {'peak MiB':>9} {'bytes/session':>14} {'open/s':>8}")
        opened = 0
        for target in args.sessions:
            started = time.perf_counter()
            await open_sessions(http, opened, target - opened, args.parallel)
            rate = (target - opened) / (time.perf_counter() - started)
            opened = target
            await trio.sleep(2)  # let the journal's batches and the allocator settle
            rss = daemon.memory_info().rss
            peak = _hwm(daemon.pid) or rss
            print(f"{opened:>9} {rss / MIB:>9.1f} {peak / MIB:>9.1f} "
                  f"{(rss - base) / opened:>14.0f} {rate:>8.0f}")  # fmt: skip
        await http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument(
        "--settings", default=str(Path(__file__).resolve().parents[1] / "settings.yaml")
    )
    trio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
