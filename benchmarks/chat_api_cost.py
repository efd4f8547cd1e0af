"""Customer API cost: the chat server's CPU per `POST /messages` and per pushed WebSocket event.

    python benchmarks/chat_api_cost.py [--customers 300] [--rate 300] [--seconds 10] [--rounds 1]

Each variant runs in a server process of its own on 127.0.0.1 (port 0); the simulated customers
run in this process, so their CPU is not counted. Variants:

- ``bare``  the floor: the same Hypercorn (same config as `ChatServer`) serving a minimal ASGI app
            that reads the POST body, answers 202 `{"seq": n}` and pushes the event
            `{"seq","type","text","at"}` to the session's WebSocket, in one frame per event.
- ``domain`` no HTTP: the domain below, driven in its own process by the same customers as
            tasks calling `customer_says` (and, for the push, `wait_events` and the event's JSON);
            what the domain (session actors, journal) costs per message, the driver included.
- ``chat``  `transport.chat_server.ChatServer` over the real `actors.domain.Domain` (a Slack port
            that answers at once, the real journal in a temporary directory with `fsync: batch`,
            as the daemon runs it); every session is in a takeover, so a message is journaled,
            relayed to the room and echoed to the customer as a `customer_message` event.

chat - bare - domain is roughly what the customer API's own code costs; at the server level it
drowns in the noise of the other two, so `--variants asgi` measures it alone:

- ``asgi``  (not in the default list) the app `build_chat_app` returns, called in-process over a
            domain stub that answers at once: CPU per `POST /messages` through the app, and per
            event pushed by the WebSocket endpoint (`us/event`), with no server and no domain.

Every customer keeps one keep-alive HTTP/1.1 connection for its POSTs and, in the second phase,
one WebSocket. Two phases per variant, each `--warmup` then `--seconds` measured:

1. ``post``     only POSTs (no WebSocket open): server CPU per POST;
2. ``post+ws``  the same POSTs with every customer's WebSocket open and read: CPU per message, and
                (its difference from phase 1) CPU per pushed event.

Customers send at `--rate` messages per second in all (`--rate 0`: each as fast as its answers
come back). Latency is from writing the POST to reading its 202 (`post`), and to reading its
event on the customer's WebSocket (`push`). Server CPU is user+system time of the server process
over the measured window (psutil). `--agent-replies` makes the room answer every message (an
`agent_message` event follows each `customer_message`, as in the relay load test). `--py-spy DIR`
records a raw py-spy profile of each server during its `post+ws` window.

The table prints, per variant, the median over `--rounds`, and the ratio chat / bare. The
servers are in chat_api_servers.py.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import trio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.chat_api_servers import (  # noqa: E402
    EXTRA_VARIANTS,
    VARIANTS,
    Tally,
    Window,
    serve,
    window_of,
    with_event_cost,
)

# --- the customers (this process) -------------------------------------------------------------


async def _recv(stream: trio.SocketStream) -> bytes:
    data = await stream.receive_some(65536)
    if not data:
        raise EOFError("the server closed the connection")
    return data


class Customers:
    """Every customer's POST connection, WebSocket and send schedule."""

    def __init__(
        self, host: str, port: int, sessions: list[tuple[str, str, int]], args: argparse.Namespace
    ):
        self.host, self.port, self.sessions, self.args = host, port, sessions, args
        self.sent: dict[str, float] = {}  # message text -> when its POST was written
        self.last_seq = [after for _, _, after in sessions]  # from the 202s
        self.tally = Tally()
        self.measuring = False

    def record(self, kind: str, ms: float) -> None:
        if self.measuring:
            (self.tally.post_ms if kind == "post" else self.tally.push_ms).append(ms)

    async def post_loop(self, index: int, stop: trio.Event) -> None:
        session_id, token, _ = self.sessions[index]
        stream = await trio.open_tcp_stream(self.host, self.port)
        head = (
            f"POST /api/sessions/{session_id}/messages HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        ).encode()
        interval = len(self.sessions) / self.args.rate if self.args.rate > 0 else 0.0
        due = trio.current_time() + interval * index / len(self.sessions)
        buffer = b""
        n = 0
        async with stream:
            while not stop.is_set():
                if interval:
                    await trio.sleep_until(due)
                    due = max(due + interval, trio.current_time())
                n += 1
                text = f"{index}-{n} " + "x" * self.args.text_chars
                body = json.dumps({"text": text}).encode()
                t0 = time.perf_counter()
                self.sent[text] = t0
                await stream.send_all(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                while (end := buffer.find(b"\r\n\r\n")) < 0:
                    buffer += await _recv(stream)
                headers = buffer[:end].lower()
                at = headers.find(b"content-length:")
                length = int(headers[at + 15 :].split(b"\r\n", 1)[0])
                while len(buffer) < end + 4 + length:
                    buffer += await _recv(stream)
                status = int(headers[9:12])
                answer = buffer[end + 4 : end + 4 + length]
                buffer = buffer[end + 4 + length :]
                if status == 202:
                    self.last_seq[index] = max(self.last_seq[index], json.loads(answer)["seq"])
                else:
                    self.tally.failures += 1
                    continue
                self.record("post", (time.perf_counter() - t0) * 1000)
                if self.measuring:
                    self.tally.posts += 1

    async def ws_loop(self, index: int, connected: Callable[[], None]) -> None:
        session_id, token, _ = self.sessions[index]
        after = self.last_seq[index]
        stream = await trio.open_tcp_stream(self.host, self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        await stream.send_all(
            (
                f"GET /api/sessions/{session_id}/ws?token={token}&after={after} HTTP/1.1\r\n"
                f"Host: {self.host}:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buffer = b""
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            buffer += await _recv(stream)
        assert buffer.startswith(b"HTTP/1.1 101"), buffer[:200]
        buffer = buffer[end + 4 :]
        connected()
        async with stream:
            while True:
                while len(buffer) < 2:
                    buffer += await _recv(stream)
                opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
                if length == 126:
                    while len(buffer) < 4:
                        buffer += await _recv(stream)
                    length, start = int.from_bytes(buffer[2:4], "big"), 4
                elif length == 127:
                    while len(buffer) < 10:
                        buffer += await _recv(stream)
                    length, start = int.from_bytes(buffer[2:10], "big"), 10
                while len(buffer) < start + length:
                    buffer += await _recv(stream)
                payload, buffer = buffer[start : start + length], buffer[start + length :]
                if opcode == 8:
                    return
                if opcode != 1:
                    continue
                event = json.loads(payload)
                if self.measuring:
                    self.tally.events += 1
                t0 = self.sent.pop(event.get("text", ""), None)
                if t0 is not None:
                    self.record("push", (time.perf_counter() - t0) * 1000)


async def _measure(
    customers: Customers, server: psutil.Process, seconds: float, warmup: float
) -> Window:
    await trio.sleep(warmup)
    customers.tally = Tally()
    customers.measuring = True
    cpu0, mine0, t0 = server.cpu_times(), time.process_time(), time.perf_counter()
    await trio.sleep(seconds)
    customers.measuring = False
    cpu1, mine1, t1 = server.cpu_times(), time.process_time(), time.perf_counter()
    elapsed = t1 - t0
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return window_of(
        customers.tally,
        cpu,
        elapsed,
        failures=customers.tally.failures,
        client_cores=(mine1 - mine0) / elapsed,
    )


async def _drive(
    args: argparse.Namespace, url: str, sessions: list[tuple[str, str, int]], pid: int
) -> dict[str, Window]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    customers = Customers(host, int(port), sessions, args)
    server = psutil.Process(pid)
    windows: dict[str, Window] = {}
    spy: trio.Process | None = None
    async with trio.open_nursery() as nursery:
        stop = trio.Event()
        for i in range(len(sessions)):
            nursery.start_soon(customers.post_loop, i, stop)
        windows["post"] = await _measure(customers, server, args.seconds, args.warmup)
        all_open = trio.Event()
        opened = [0]

        def connected() -> None:
            opened[0] += 1
            if opened[0] == len(sessions):
                all_open.set()

        for i in range(len(sessions)):
            nursery.start_soon(customers.ws_loop, i, connected)
        with trio.fail_after(30):
            await all_open.wait()
        if args.py_spy:
            out = Path(args.py_spy) / f"{args.variant_now}-{args.round_now}.txt"
            spy = await trio.lowlevel.open_process(
                [
                    shutil.which("py-spy", path=Path(sys.executable).parent) or "py-spy",
                    "record",
                    "--format",
                    "raw",
                    "-r",
                    "200",
                    "-d",
                    str(int(args.warmup + args.seconds)),
                    "-p",
                    str(pid),
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        both = await _measure(customers, server, args.seconds, args.warmup)
        windows["post+ws"] = with_event_cost(both, windows["post"])
        stop.set()
        nursery.cancel_scope.cancel()
    if spy is not None:
        await spy.wait()
    return windows


def _run_variant(args: argparse.Namespace, variant: str) -> dict[str, Window]:
    command = [sys.executable, __file__, "--serve", variant]
    for knob in ("customers", "rate", "seconds", "warmup", "text_chars"):
        command += [f"--{knob.replace('_', '-')}", str(getattr(args, knob))]
    if args.agent_replies:
        command.append("--agent-replies")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert server.stdout is not None
        ready = json.loads(server.stdout.readline())
        if variant == "domain":
            return {phase: Window(**figures) for phase, figures in ready.items()}
        if variant == "asgi":
            nan = float("nan")
            figures = [nan] * len(Window.__dataclass_fields__)
            only = Window(*figures)  # type: ignore[arg-type]
            only.cpu_us_msg, only.cpu_us_event, only.failures = (
                ready["post_us"],
                ready["event_us"],
                0,
            )
            return {"post": only}
        args.variant_now = variant
        return trio.run(_drive, args, ready["url"], ready["sessions"], server.pid)
    finally:
        server.terminate()
        server.wait(10)


def _median(windows: list[Window], name: str) -> float:
    values = [getattr(w, name) for w in windows]
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("--customers", type=int, default=300, help="concurrent customers (300)")
    parser.add_argument(
        "--rate",
        type=float,
        default=300.0,
        help="messages per second, all customers together; 0: flat out (300)",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per phase (10)"
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="unmeasured seconds before each phase (3)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of every variant; medians shown (1)"
    )
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma-separated: bare,domain,chat"
    )
    parser.add_argument(
        "--text-chars", type=int, default=40, help="padding characters per message text (40)"
    )
    parser.add_argument(
        "--agent-replies",
        action="store_true",
        help="chat: the agent answers every message (a second event per message)",
    )
    parser.add_argument(
        "--py-spy", metavar="DIR", help="write a raw py-spy profile of each server's post+ws window"
    )
    parser.add_argument("--json", metavar="FILE", help="also write every round's figures as JSON")
    parser.add_argument("--serve", choices=VARIANTS + EXTRA_VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS + EXTRA_VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    results: dict[str, dict[str, list[Window]]] = {v: {"post": [], "post+ws": []} for v in variants}
    for round_no in range(args.rounds):
        args.round_now = round_no
        for variant in variants:
            for phase, window in _run_variant(args, variant).items():
                results[variant][phase].append(window)
    load = os.getloadavg()
    print(
        f"{args.customers} customers, rate {args.rate or 'flat out'} msg/s, "
        f"{args.seconds:g} s x {args.rounds} round(s) per phase (median); cpus={os.cpu_count()}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    header = (
        f"{'variant':8} {'phase':8} {'msg/s':>7} {'ev/s':>7} {'cpu us/msg':>10} {'us/event':>9} "
        f"{'cores':>6} {'post p50/p99 ms':>16} {'push p50/p99 ms':>16} {'fail':>5} {'client':>6}"
    )
    print(header)
    for variant in variants:
        for phase, windows in results[variant].items():
            if not windows:
                continue
            print(
                f"{variant:8} {phase:8} {_median(windows, 'msgs_s'):7.0f} "
                f"{_median(windows, 'events_s'):7.0f} {_median(windows, 'cpu_us_msg'):10.0f} "
                f"{_median(windows, 'cpu_us_event'):9.0f} {_median(windows, 'cores'):6.2f} "
                f"{_median(windows, 'post_p50'):7.1f}/{_median(windows, 'post_p99'):<8.1f} "
                f"{_median(windows, 'push_p50'):7.1f}/{_median(windows, 'push_p99'):<8.1f} "
                f"{sum(w.failures for w in windows):5d} {_median(windows, 'client_cores'):6.2f}"
            )
    if "bare" in results and "chat" in results:
        for phase in ("post", "post+ws"):
            chat, bare = (_median(results[v][phase], "cpu_us_msg") for v in ("chat", "bare"))
            line = f"{phase:8} cpu per message: chat/bare {chat / bare:.2f}"
            if "domain" in results:
                domain = _median(results["domain"][phase], "cpu_us_msg")
                line += f"; chat - bare - domain = {chat - bare - domain:.0f} us"
            print(line)
        chat, bare = (_median(results[v]["post+ws"], "cpu_us_event") for v in ("chat", "bare"))
        print(f"cpu per pushed event: chat/bare {chat / bare:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    v: {p: [w.__dict__ for w in ws] for p, ws in r.items()}
                    for v, r in results.items()
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
