"""Benchmark: the load tester's CPU per WebSocket message received, lean client vs trio-websocket.

    python benchmarks/loadtest_ws_receive.py [--rate 600] [--seconds 10] [--connections 300]

The simulated customers (their events) and agents (their RTM stream) spend most of their
receiving in the WebSocket client. A server in another process (this script with `--serve`)
accepts `--connections` WebSockets and writes, paced, `--rate` text frames a second in all, each
an RTM `message` event as the emulator sends one (about 700 bytes), round robin over the
connections. This process receives them with one client or the other and decodes each as JSON,
as the load tester does; its CPU time (user + system) per message is the figure. Baseline in the
same run: trio-websocket (what the load tester used before), then `loadtest.wsclient`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio
import trio_websocket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtest.wsclient import WsClosed, open_ws  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EVENT = {
    "type": "message",
    "ts": "1764085000.123456",
    "text": "LTc123m45 it is order 4411",
    "bot_id": "B000000001",
    "app_id": "A000000001",
    "subtype": "bot_message",
    "username": "LT123 (customer)",
    "icons": {"emoji": ":bust_in_silhouette:"},
    "user": "U000000001",
    "metadata": {"event_type": "takeover_post", "event_payload": {"id": "p-123-45"}},
    "team": "T000000001",
    "channel": "C000000123",
    "event_ts": "1764085000.123456",
    "bot_profile": {
        "id": "B000000001",
        "app_id": "A000000001",
        "name": "takeover",
        "deleted": False,
        "team_id": "T000000001",
        "icons": {"image_48": "https://avatars.emulator.invalid/U000000001_48.png"},
    },
    "channel_type": "group",
}


def frame(text: str) -> bytes:
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    return struct.pack("!BBH", 0x81, 126, n) + payload


# --- the server (a child process) ------------------------------------------------------------


def serve(connections: int, rate: float) -> None:
    async def main() -> None:
        streams: list[trio.SocketStream] = []
        all_connected = trio.Event()

        async def handshake(stream: trio.SocketStream) -> None:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive_some(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            await stream.send_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            streams.append(stream)
            if len(streams) == connections:
                all_connected.set()
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, handshake, 0, host="127.0.0.1"))
            print(listeners[0].socket.getsockname()[1], flush=True)
            # one line on stdin per phase: "<seconds>", answered "done" once all was written
            stdin = trio.lowlevel.FdStream(os.dup(0))
            buffer = b""
            while True:
                while b"\n" not in buffer:
                    chunk = await stdin.receive_some()
                    if not chunk:
                        nursery.cancel_scope.cancel()
                        return
                    buffer += chunk
                line, _, buffer = buffer.partition(b"\n")
                await all_connected.wait()
                total = int(rate * float(line))
                start = trio.current_time()
                for i in range(total):
                    await trio.sleep_until(start + i / rate)
                    event = {**EVENT, "text": f"LTc{i}m1 it is order 4411"}
                    await streams[i % connections].send_all(frame(json.dumps(event)))
                print("done", flush=True)
                streams.clear()
                all_connected = trio.Event()

    trio.run(main)


# --- the clients -----------------------------------------------------------------------------


async def receive_all(
    connect: Callable[[str, Callable[[], None]], Awaitable[None]],
    url: str,
    connections: int,
    total: int,
) -> float:
    """Receive `total` messages over `connections` sockets; returns CPU seconds used."""
    got = 0
    finished = trio.Event()

    def one() -> None:
        nonlocal got
        got += 1
        if got == total:
            finished.set()

    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(connect, url, one)
        await trio.sleep(0.5)  # connected
        cpu = time.process_time()
        with trio.fail_after(120):
            await finished.wait()
        used = time.process_time() - cpu
        nursery.cancel_scope.cancel()
    return used


async def trio_websocket_client(url: str, one: Callable[[], None]) -> None:
    async with trio_websocket.open_websocket_url(url) as ws:
        while True:
            json.loads(await ws.get_message())
            one()


async def lean_client(url: str, one: Callable[[], None]) -> None:
    try:
        async with open_ws(url) as ws:
            while True:
                json.loads(await ws.get_message())
                one()
    except WsClosed:
        pass


def start_server(args: argparse.Namespace) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "--serve", str(args.connections), str(args.rate)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


async def main(args: argparse.Namespace, server: subprocess.Popen[str]) -> None:
    assert server.stdin is not None and server.stdout is not None
    try:
        url = f"ws://127.0.0.1:{server.stdout.readline().strip()}/rtm/"
        total = int(args.rate * args.seconds)
        report: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
            "load_avg_before": round(os.getloadavg()[0], 2),
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            "connections": args.connections,
            "frame_bytes": len(frame(json.dumps(EVENT))),
        }
        for name, client in (("trio_websocket", trio_websocket_client), ("lean", lean_client)):

            async def phase(client: Any = client) -> float:
                async with trio.open_nursery() as nursery:
                    result: list[float] = []

                    async def run() -> None:
                        result.append(await receive_all(client, url, args.connections, total))

                    nursery.start_soon(run)
                    await trio.sleep(0.3)
                    server.stdin.write(f"{args.seconds}\n")  # type: ignore[union-attr]
                    server.stdin.flush()  # type: ignore[union-attr]
                return result[0]

            used = await phase()
            assert server.stdout.readline().strip() == "done"
            report[name] = {"cpu_us_per_message": round(used / total * 1e6, 1)}
        report["lean_over_trio_websocket"] = round(
            report["lean"]["cpu_us_per_message"] / report["trio_websocket"]["cpu_us_per_message"],
            2,
        )
        report["load_avg_after"] = round(os.getloadavg()[0], 2)
        print(json.dumps(report, indent=2))
    finally:
        server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=600.0, help="messages per second (600)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a phase (10)")
    parser.add_argument("--connections", type=int, default=300, help="WebSockets (300)")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(int(arguments.serve[0]), float(arguments.serve[1]))
    else:
        trio.run(main, arguments, start_server(arguments))
