"""`python run.py --repair-journal`: the operator's way past damage in the middle of the journal."""

from __future__ import annotations

import signal
import sys
from functools import partial
from pathlib import Path

import httpx
import trio
import yaml

from actors.journal import JournalActor

ROOT = Path(__file__).resolve().parents[2]

_SESSION = {
    "type": "session_started",
    "schema": 1,
    "session_id": "s1",
    "customer_id": "c1",
    "name": "",
    "email": "",
    "token_digest": "d",
    "at": 1.0,
}


async def _damaged_journal(path: Path) -> None:
    journal = JournalActor(path, fsync="off")
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for _ in range(3):
            await journal.append(_SESSION)
        nursery.cancel_scope.cancel()


def _flip_a_middle_bit(path: Path) -> None:
    (segment,) = path.glob("segment-*.jrn")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x01  # the middle record: valid records follow it
    segment.write_bytes(bytes(data))


async def _wait_healthy(log: Path, process: trio.Process) -> str:
    while True:
        text = await trio.Path(log).read_text()
        assert process.returncode is None, text[-2000:]
        for line in text.splitlines():
            if '"daemon_started"' in line:
                url = yaml.safe_load(line)["widget"]
                async with httpx.AsyncClient() as client:
                    if (await client.get(url + "healthz")).status_code == 200:
                        return url
        await trio.sleep(0.1)


async def test_repair_flag_starts_on_a_damaged_journal_and_keeps_the_damage_aside(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal"
    log = tmp_path / "daemon.log"
    settings = tmp_path / "daemon.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "http": {"port": 0},
                "emulator": {"port": 0},
                "journal": {"path": str(journal)},
                "log": {"format": "json"},
            }
        )
    )
    with trio.fail_after(60):
        await _damaged_journal(journal)
        _flip_a_middle_bit(journal)
        with log.open("wb") as out:
            async with trio.open_nursery() as nursery:
                process: trio.Process = await nursery.start(
                    partial(
                        trio.run_process,
                        [sys.executable, "run.py", "--settings", str(settings), "--repair-journal"],
                        cwd=ROOT,
                        stdout=out,
                        stderr=out,
                        check=False,
                    )
                )
                await _wait_healthy(log, process)
                process.send_signal(signal.SIGTERM)
                assert await process.wait() == 0, log.read_text()[-2000:]
    text = log.read_text()
    assert "journal_segment_repaired" in text
    assert list(journal.glob("*.corrupt")), sorted(p.name for p in journal.iterdir())
