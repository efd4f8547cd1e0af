"""Benchmark: Socket Mode envelopes per second from the emulator to one app.

    python benchmarks/emulator_socket_mode.py [--rate 1000] [--seconds 10] [--posters 8]

Starts `python run.py emulator` in its own process and connects one Socket Mode app (a plain
WebSocket client that acks every envelope at once). Agents then post messages; every message in a
room the app's bot is in raises one `events_api` envelope. Phases, each `--seconds` long:

- rtm paced (the target): one agent posts over RTM (a WebSocket frame per message, the cheapest
  way in) at `--rate` messages per second into the bot's room. Reported: envelopes delivered per
  second, post-to-envelope latency, redeliveries, and the emulator process's CPU.
- rtm baseline: the same paced posting into a room without the bot (no envelope); the ratio of
  the two CPU figures is what Socket Mode delivery costs.
- http: `--posters` agents post through the Web API (chat.postMessage) as fast as answers come
  back, first without the bot in the room (baseline posts/s), then with it (envelopes/s).

Everything runs on this machine: the emulator, the app and the agents share its cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import trio
import trio_websocket

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = """
slack: {mode: emulator}
emulator:
  port: 0
  agents:
%s
log: {format: json, level: info}
"""


@dataclass
class App:
    """The Socket Mode app: acks each envelope and notes when each message's event arrived."""

    received: dict[str, float] = field(default_factory=dict)
    envelopes: int = 0
    _waiters: list[tuple[Callable[[], bool], trio.Event]] = field(default_factory=list)

    async def run(self, ws: trio_websocket.WebSocketConnection) -> None:
        while True:
            envelope = json.loads(await ws.get_message())
            if "envelope_id" not in envelope:
                continue
            await ws.send_message(json.dumps({"envelope_id": envelope["envelope_id"]}))
            self.envelopes += 1
            self.received.setdefault(
                envelope["payload"]["event"].get("text", ""), time.perf_counter()
            )
            for condition, event in self._waiters:
                if condition():
                    event.set()

    async def wait(self, condition: Callable[[], bool], seconds: float) -> None:
        """Wait until `condition()` holds after some envelope, at most `seconds`."""
        event = trio.Event()
        self._waiters.append((condition, event))
        with trio.move_on_after(seconds):
            if not condition():
                await event.wait()
        self._waiters.remove((condition, event))


class Cpu:
    """CPU seconds the emulator process used during a `with` block, as a share of one core."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.share = 0.0

    def __enter__(self) -> Cpu:
        self._cpu, self._wall = sum(self.process.cpu_times()[:2]), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        used = sum(self.process.cpu_times()[:2]) - self._cpu
        self.share = used / (time.perf_counter() - self._wall)


async def start_emulator(agents: int) -> tuple[trio.Process, str]:
    folder = Path(tempfile.mkdtemp(prefix="emu-bench-"))
    settings = folder / "settings.yaml"
    settings.write_text(SETTINGS % "\n".join(f"    - {{name: agent{i}}}" for i in range(agents)))
    command = [sys.executable, "run.py", "emulator", "--settings", str(settings), "--port", "0"]
    process = await trio.lowlevel.open_process(command, cwd=ROOT, stdout=subprocess.PIPE)
    assert process.stdout is not None
    buffer = b""
    with trio.fail_after(30):
        while True:
            chunk = await process.stdout.receive_some()
            if not chunk:
                raise SystemExit("the emulator exited before it started")
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                record = json.loads(line)
                if record.get("event") == "emulator_started":
                    return process, str(record["url"])


async def drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some():
        pass


async def rtm_paced(
    nursery: trio.Nursery,
    http: httpx.AsyncClient,
    url: str,
    token: str,
    channel: str,
    rate: float,
    seconds: float,
    tag: str,
) -> dict[str, float]:
    """One RTM connection posting `rate` messages per second; returns send times by text."""
    rtm_url = (
        await http.post(url + "/api/rtm.connect", headers={"Authorization": f"Bearer {token}"})
    ).json()["url"]
    ws = await trio_websocket.connect_websocket_url(nursery, rtm_url, message_queue_size=1_000_000)
    replies, total, all_replied = 0, int(rate * seconds), trio.Event()

    async def read() -> None:
        nonlocal replies
        with contextlib.suppress(trio_websocket.ConnectionClosed):
            while True:
                replies += "reply_to" in json.loads(await ws.get_message())
                if replies >= total:
                    all_replied.set()

    nursery.start_soon(read)
    sent: dict[str, float] = {}
    start = trio.current_time()
    for i in range(total):
        await trio.sleep_until(start + i / rate)
        text = f"{tag}-{i}"
        sent[text] = time.perf_counter()
        await ws.send_message(
            json.dumps({"id": i, "type": "message", "channel": channel, "text": text})
        )
    with trio.move_on_after(30):
        await all_replied.wait()
    await ws.aclose()
    return sent


async def http_closed_loop(
    http: httpx.AsyncClient, url: str, tokens: list[str], channel: str, seconds: float
) -> int:
    """Each agent posts as soon as its previous post was answered; returns the posts made."""
    done = 0
    deadline = trio.current_time() + seconds

    async def poster(token: str) -> None:
        nonlocal done
        headers = {"Authorization": f"Bearer {token}"}
        while trio.current_time() < deadline:
            reply = await http.post(
                url + "/api/chat.postMessage",
                json={"channel": channel, "text": f"http-{done}"},
                headers=headers,
            )
            done += reply.json()["ok"]

    async with trio.open_nursery() as nursery:
        for token in tokens:
            nursery.start_soon(poster, token)
    return done


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def measure(args: argparse.Namespace, process: trio.Process, url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        limits = httpx.Limits(max_connections=args.posters, max_keepalive_connections=args.posters)
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:
            creds = (await http.get(url + "/_emu/app")).json()
            users = (await http.get(url + "/_emu/users")).json()["users"]
            rtm_agent = users[0]

            async def room(token: str, invite: list[str]) -> str:
                auth = {"Authorization": f"Bearer {token}"}
                made = await http.post(
                    url + "/api/conversations.create",
                    json={"name": f"bench-{len(out)}-{time.time_ns()}", "is_private": True},
                    headers=auth,
                )
                channel = made.json()["channel"]["id"]
                if invite:
                    await http.post(
                        url + "/api/conversations.invite",
                        json={"channel": channel, "users": ",".join(invite)},
                        headers=auth,
                    )
                return str(channel)

            with_bot = await room(creds["bot_token"], [u["id"] for u in users])
            without_bot = await room(rtm_agent["token"], [u["id"] for u in users[1:]])
            auth = {"Authorization": f"Bearer {creds['app_token']}"}
            socket_url = (await http.post(url + "/api/apps.connections.open", headers=auth)).json()[
                "url"
            ]
            app = App()
            nursery.start_soon(
                app.run,
                await trio_websocket.connect_websocket_url(
                    nursery, socket_url, message_queue_size=1_000_000
                ),
            )

            with Cpu(process.pid) as base_cpu:
                await rtm_paced(
                    nursery,
                    http,
                    url,
                    rtm_agent["token"],
                    without_bot,
                    args.rate,
                    args.seconds,
                    "base",
                )
            with Cpu(process.pid) as cpu, Cpu(os.getpid()) as driver_cpu:
                sent = await rtm_paced(
                    nursery, http, url, rtm_agent["token"], with_bot, args.rate, args.seconds, "rtm"
                )
                await app.wait(
                    lambda: len(app.received) >= len(sent) and set(sent) <= set(app.received), 30
                )
            got = [t for t in sent if t in app.received]
            latencies = sorted((app.received[t] - sent[t]) * 1000 for t in got)
            first, last = min(sent.values()), max(app.received[t] for t in got)
            out["rtm_paced"] = {
                "target_per_s": args.rate,
                "posted": len(sent),
                "delivered": len(got),
                "delivered_per_s": round(len(got) / (last - first)),
                "latency_ms_p50": round(percentile(latencies, 0.5), 1),
                "latency_ms_p99": round(percentile(latencies, 0.99), 1),
                "latency_ms_max": round(latencies[-1], 1),
                "emulator_cpu_share": round(cpu.share, 2),
                "baseline_cpu_share_without_app_delivery": round(base_cpu.share, 2),
                "cpu_ratio_to_baseline": round(cpu.share / base_cpu.share, 2),
                "driver_cpu_share": round(driver_cpu.share, 2),
            }

            tokens = [u["token"] for u in users]
            with Cpu(process.pid) as http_base_cpu:
                base_posts = await http_closed_loop(http, url, tokens, without_bot, args.seconds)
            before = app.envelopes
            with Cpu(process.pid) as http_cpu:
                started = time.perf_counter()
                posts = await http_closed_loop(http, url, tokens, with_bot, args.seconds)
                await app.wait(lambda: app.envelopes - before >= posts, 30)
                elapsed = time.perf_counter() - started
            out["http_closed_loop"] = {
                "posters": args.posters,
                "baseline_posts_per_s": round(base_posts / args.seconds),
                "baseline_emulator_cpu_share": round(http_base_cpu.share, 2),
                "envelopes_per_s": round((app.envelopes - before) / elapsed),
                "emulator_cpu_share": round(http_cpu.share, 2),
                "ratio_to_baseline": round(
                    (app.envelopes - before) / elapsed / (base_posts / args.seconds), 2
                ),
            }
            stats = (await http.get(url + "/_emu/stats")).json()["socket_mode"]
            out["socket_mode"] = {
                k: stats[k] for k in ("delivered", "acked", "redelivered", "dropped")
            }
        nursery.cancel_scope.cancel()
    return out


async def main(args: argparse.Namespace) -> None:
    process, url = await start_emulator(args.posters)
    try:
        async with trio.open_nursery() as nursery:
            assert process.stdout is not None
            nursery.start_soon(drain, process.stdout)
            report = await measure(args, process, url)
            nursery.cancel_scope.cancel()
    finally:
        process.terminate()
        await process.wait()
    header = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, load avg {os.getloadavg()[0]:.1f}",
        "seconds_per_phase": args.seconds,
    }
    print(json.dumps({**header, **report}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="paced RTM posts per second (default 1000)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="length of each phase (default 10)"
    )
    parser.add_argument(
        "--posters", type=int, default=8, help="agents posting concurrently over HTTP (default 8)"
    )
    trio.run(main, parser.parse_args())
