"""`python run.py emulator`: seeded from the settings, logs its console URL, stops cleanly on signals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = """
slack: {mode: emulator}
emulator:
  port: 0
  agents:
    - {name: zoe, real_name: Zoe Q, title: Night shift}
log: {format: json}
"""


async def started_url(process: trio.Process) -> str:
    """Read the JSON log lines until `emulator_started`; returns its URL."""
    assert process.stdout is not None
    buffer = b""
    while True:
        chunk = await process.stdout.receive_some()
        assert chunk, "the emulator exited before it started"
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            record = json.loads(line)
            if record["event"] == "emulator_started":
                assert record["console"] == record["url"] + "/_emu/"
                return str(record["url"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_standalone_serves_the_seeded_agents_and_stops_on_signal(
    tmp_path: Path, signum: int
) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(SETTINGS)
    command = [sys.executable, "run.py", "emulator", "--settings", str(settings), "--port", "0"]
    process = await trio.lowlevel.open_process(command, cwd=ROOT, stdout=subprocess.PIPE)
    try:
        with trio.fail_after(20):
            url = await started_url(process)
            async with httpx.AsyncClient() as http:
                users = (await http.get(url + "/_emu/users")).json()["users"]
            assert [(u["name"], u["presence"]) for u in users] == [("zoe", "active")]
            process.send_signal(signum)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_a_port_in_use_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(SETTINGS)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [
            sys.executable,
            "run.py",
            "emulator",
            "--settings",
            str(settings),
            "--port",
            str(port),
        ]
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=20, check=False
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"emulator: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
