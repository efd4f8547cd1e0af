"""The processes under test: the emulator and the daemon, each in its own process.

Owns generating the run's settings file (the operator's settings as the base; the load tester
sets ports, the emulator's agents, tokens, the profile's routing knobs, a fresh journal), starting
`python run.py emulator` and then `python run.py` (`slack.mode: socket` against the emulator, as
with real Slack), waiting until each is ready, and stopping them with SIGTERM (the daemon first,
so it drains while Slack is still there). Readiness is polled against the real processes with a
hard deadline, and a process that exits early is reported with the tail of its stderr.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import yaml

from actors.settings import SettingsError, parse_settings
from loadtest.http import HttpFailure, JsonHttp
from loadtest.profile import Profile

__all__ = [
    "PROJECT_DIR",
    "Stack",
    "StackDied",
    "StackError",
    "daemon_settings",
    "free_port",
    "run_settings",
    "start_stack",
]

PROJECT_DIR = Path(__file__).resolve().parents[1]
AGENT_PREFIX = "lt-agent-"


class StackError(Exception):
    """The daemon or the emulator could not be started (one line, with their stderr's tail)."""


class StackDied(StackError):
    """The daemon or the emulator exited in the middle of the run."""


@dataclass(frozen=True, slots=True)
class Stack:
    chat_url: str
    emulator_url: str
    daemon_pid: int | None
    emulator_pid: int | None
    workdir: Path
    processes: tuple[tuple[str, trio.Process, Path], ...] = ()

    def failure(self) -> str | None:
        """Why the run cannot go on: a process under test that has exited, else None."""
        for name, process, stderr in self.processes:
            if process.returncode is not None:
                return f"the {name} exited with code {process.returncode}: {_tail(stderr)}"
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _base_settings(settings_path: str) -> tuple[dict[str, Any], Path]:
    path = Path(settings_path)
    if not path.exists():
        return {}, PROJECT_DIR
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise StackError(f"cannot read the settings {path}: {e}") from None
    if not isinstance(data, dict):
        raise StackError(f"settings {path}: the top level must be a mapping")
    return data, path.resolve().parent


def run_settings(
    settings_path: str, profile: Profile, workdir: Path, chat_port: int, emulator_port: int
) -> dict[str, Any]:
    """The run's settings, for the emulator (`slack.mode: emulator`, which seeds the agents and
    uses the tokens given); `daemon_settings` turns them into the daemon's."""
    data, base_dir = _base_settings(settings_path)
    d = profile.daemon

    def section(name: str) -> dict[str, Any]:
        value = data.get(name) or {}
        data[name] = dict(value) if isinstance(value, dict) else {}
        return data[name]

    section("http").update(
        host="127.0.0.1", port=chat_port, messages_per_minute=d.messages_per_minute
    )
    section("slack").update(
        mode="emulator",
        bot_token=f"xoxb-loadtest-{secrets.token_hex(12)}",
        app_token=f"xapp-loadtest-{secrets.token_hex(12)}",
        signing_secret=secrets.token_hex(16),
        api_url=f"http://127.0.0.1:{emulator_port}/api/",
    )
    section("emulator").update(
        host="127.0.0.1",
        port=emulator_port,
        rate_limits=d.rate_limits,
        agents=[
            {"name": f"{AGENT_PREFIX}{i:04d}", "real_name": f"Load Agent {i}", "title": "Simulated"}
            for i in range(1, profile.agents.count + 1)
        ],
    )
    section("routing").update(
        agents=[],
        offer_timeout_s=d.offer_timeout_s,
        max_tries=d.max_tries,
        max_chats_per_agent=d.max_chats_per_agent,
    )
    if d.presence_poll_interval_s is not None:
        data["routing"]["presence_poll_interval_s"] = d.presence_poll_interval_s
    bot = section("bot")
    kb = Path(str(bot.get("knowledge_base", "knowledge_base.yaml")))
    if not kb.is_absolute():
        kb = base_dir / kb if (base_dir / kb).exists() else PROJECT_DIR / kb
    bot["knowledge_base"] = str(kb)
    data["business_hours"] = {}  # a load test measures the agents' side, whatever the hour
    section("journal").update(path=str(workdir / "journal"), fsync=d.journal_fsync)
    data["log"] = {"level": d.log_level, "format": "json"}
    _check(data)
    return data


def daemon_settings(emulator_settings: dict[str, Any], agent_ids: list[str]) -> dict[str, Any]:
    """The daemon's: Socket Mode against the emulator, as against real Slack."""
    data = {**emulator_settings}
    data["slack"] = {**data["slack"], "mode": "socket"}
    data["routing"] = {**data["routing"], "agents": list(agent_ids)}
    _check(data)
    return data


def _check(data: dict[str, Any]) -> None:
    try:
        parse_settings(yaml.safe_load(yaml.safe_dump(data)))
    except SettingsError as e:
        raise StackError(f"the run's settings are invalid: {e}") from None


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


async def _wait_ready(
    name: str, process: trio.Process, stderr: Path, ready: Any, deadline: float
) -> None:
    while True:
        if process.returncode is not None:
            raise StackError(f"the {name} exited with code {process.returncode}: {_tail(stderr)}")
        try:
            if await ready():
                return
        except (HttpFailure, OSError):
            pass
        if trio.current_time() > deadline:
            raise StackError(f"the {name} was not ready in time: {_tail(stderr)}")
        await trio.sleep(0.2)


async def _spawn(name: str, args: list[str], workdir: Path) -> tuple[trio.Process, Path]:
    out, err = workdir / f"{name}.out.log", workdir / f"{name}.err.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            [sys.executable, str(PROJECT_DIR / "run.py"), *args],
            cwd=str(PROJECT_DIR),
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
    return process, err


async def _stop(process: trio.Process, grace_s: float = 20.0) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    with trio.move_on_after(grace_s):
        await process.wait()
        return
    process.kill()
    await process.wait()


@asynccontextmanager
async def start_stack(
    settings_path: str, profile: Profile, workdir: Path, log: Any = None
) -> AsyncIterator[Stack]:
    """Start the emulator then the daemon; yields once the daemon sees every agent available."""
    chat_port, emulator_port = free_port(), free_port()
    settings = run_settings(settings_path, profile, workdir, chat_port, emulator_port)
    emulator_file = _write(workdir / "emulator-settings.yaml", settings)
    chat_url, emulator_url = f"http://127.0.0.1:{chat_port}", f"http://127.0.0.1:{emulator_port}"
    deadline = trio.current_time() + profile.daemon.ready_timeout_s
    emulator, emulator_err = await _spawn(
        "emulator", ["emulator", "--settings", str(emulator_file)], workdir
    )
    daemon: trio.Process | None = None
    probe_emu, probe_chat = JsonHttp(emulator_url, connections=4), JsonHttp(chat_url, connections=4)
    try:

        async def emulator_ready() -> bool:
            return (await probe_emu.call("GET", "/_emu/app")).status == 200

        await _wait_ready("emulator", emulator, emulator_err, emulator_ready, deadline)
        users = (await probe_emu.call("GET", "/_emu/users")).body.get("users", [])
        ids = [u["id"] for u in users if str(u.get("name", "")).startswith(AGENT_PREFIX)]
        daemon_file = _write(workdir / "daemon-settings.yaml", daemon_settings(settings, ids))
        daemon, daemon_err = await _spawn("daemon", ["--settings", str(daemon_file)], workdir)

        async def daemon_ready() -> bool:
            if (await probe_chat.call("GET", "/healthz")).status != 200:
                return False
            stats = (await probe_chat.call("GET", "/api/stats")).body
            available = [a for a in stats.get("agents", []) if a.get("available")]
            return len(available) >= profile.agents.count

        await _wait_ready("daemon", daemon, daemon_err, daemon_ready, deadline)
        yield Stack(
            chat_url,
            emulator_url,
            daemon.pid,
            emulator.pid,
            workdir,
            (("daemon", daemon, daemon_err), ("emulator", emulator, emulator_err)),
        )
    finally:
        await probe_emu.aclose()
        await probe_chat.aclose()
        with trio.CancelScope(shield=True):
            if daemon is not None:
                await _stop(daemon)
            await _stop(emulator)
