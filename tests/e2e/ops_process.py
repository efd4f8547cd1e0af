"""The daemon as a real process (`python run.py --settings ...`), for signals: SIGHUP, SIGTERM.

Owns `Daemon`: starts the process, keeps every JSON log line it writes (and the raw bytes, for
the secrets scan), and waits for a log event by name, or for the exit, by polling its output
with a hard deadline (only real processes are waited on that way). `write_settings` writes a
settings file the daemon reads (and reads again on SIGHUP).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
import yaml

__all__ = ["ROOT", "Daemon", "write_settings"]

ROOT = Path(__file__).resolve().parents[2]


def write_settings(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


class Daemon:
    def __init__(self, settings: Path) -> None:
        self.settings = settings
        self.lines: list[dict[str, Any]] = []
        self.raw = bytearray()
        self._changed = trio.Event()
        self._proc: trio.Process | None = None
        self.returncode: int | None = None

    async def start(self, nursery: trio.Nursery) -> None:
        args = [sys.executable, "run.py", "--settings", str(self.settings)]
        self._proc = await trio.lowlevel.open_process(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        nursery.start_soon(self._read, self._proc)

    async def _read(self, proc: trio.Process) -> None:
        assert proc.stdout is not None
        buffer = b""
        async for chunk in proc.stdout:
            self.raw += chunk
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = {"event": "not_json", "text": line.decode("utf-8", "replace")}
                self.lines.append(entry if isinstance(entry, dict) else {"event": "not_json"})
            self._changed.set()
            self._changed = trio.Event()
        self.returncode = await proc.wait()
        self._changed.set()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    async def wait_log(
        self,
        name: str,
        *,
        count: int = 1,
        where: Callable[[dict[str, Any]], bool] = lambda line: True,
        deadline_s: float = 60.0,
    ) -> dict[str, Any]:
        """The `count`th log line of event `name` matching `where`."""
        with trio.fail_after(deadline_s):
            while True:
                found = [line for line in self.events(name) if where(line)]
                if len(found) >= count:
                    return found[count - 1]
                if self.returncode is not None:
                    raise AssertionError(f"the daemon exited ({self.returncode}) before {name}")
                await self._changed.wait()

    def signal(self, signum: signal.Signals) -> None:
        assert self._proc is not None
        self._proc.send_signal(signum)

    async def wait_exit(self, deadline_s: float = 60.0) -> int:
        assert self._proc is not None
        with trio.fail_after(deadline_s):
            return await self._proc.wait()

    def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
