"""Benchmark: the emulator's CPU per relayed chat.postMessage, against the bare HTTP stack's floor.

    python benchmarks/emulator_relay_cost.py [--rate 300] [--seconds 10] [--rtm 30] [--members 1]

What the emulator does for each message of a load test's relay, isolated in its own process:
chat.postMessage into a room where the app's bot and agents are members, one `events_api`
envelope to the Socket Mode app (acked at once) and one `message` event to each member's RTM
connection. The app, the RTM clients and the posting driver run in this process; the emulator
(`python run.py emulator`) in its own, whose CPU time (user + system, psutil) is measured.

Phases, each `--seconds` long, posting at `--rate` per second (paced, several in flight):

- floor, asgi: Hypercorn with the emulator's configuration serving a bare ASGI callable that reads
  the request body and answers a fixed JSON (no framework, no work): what HTTP alone costs.
- floor, starlette: the same behind a Starlette `Route`, as the emulator's routes are served.
- relay: the emulator with one Socket Mode app and `--rtm` agents on RTM, each in its own room
  with the bot (and `--members` - 1 other agents); posts alternate between the bot (a relayed
  customer line: `username`, `icon_emoji`, `metadata`, JSON body, as the daemon posts) and the
  room's agent (a plain answer with its user token), rooms in turn.

Reported per phase: posts answered, envelopes and RTM events delivered, the server's CPU in
microseconds per post and as a ratio to the starlette floor, post -> envelope latency.

`--in-process` measures the emulator's own share alone, without a server or a network: the
same posts handed to the emulator's ASGI app in this process, its Socket Mode and RTM hubs
writing to sockets that only count frames (the app's socket acks every envelope at once). The
CPU per post there is what the emulator adds above its HTTP and WebSocket stack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import trio
import trio.testing
import trio_websocket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtest.http import JsonHttp  # noqa: E402  (the load tester's lean client: cheap driver)

SETTINGS = """
slack: {mode: emulator}
emulator:
  port: 0
  agents:
%s
log: {format: json, level: info}
"""
WORKERS = 32


# --- the floor servers (run as `--serve-floor asgi|starlette` in a child process) -----------


def serve_floor(kind: str) -> None:
    """Hypercorn as the emulator configures it, answering every request with a fixed JSON."""
    import logging

    from hypercorn.config import Config
    from hypercorn.trio import serve
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = b'{"ok":true,"channel":"C000000001","ts":"1700000000.000100"}'

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def endpoint(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    app: Any = asgi
    if kind == "starlette":
        app = Starlette(routes=[Route("/api/{method:str}", endpoint, methods=["GET", "POST"])])
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("floor.hypercorn")
    config.graceful_timeout = 1.0

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve, app, config)
            print(json.dumps({"event": "floor_started", "url": binds[0]}), flush=True)

    trio.run(main)


# --- processes -------------------------------------------------------------------------------


async def _started(process: trio.Process, event: str) -> str:
    assert process.stdout is not None
    buffer = b""
    with trio.fail_after(30):
        while True:
            chunk = await process.stdout.receive_some()
            if not chunk:
                raise SystemExit(f"the server exited before {event}")
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == event:
                        return str(record["url"])


async def start_emulator(agents: int) -> tuple[trio.Process, str]:
    folder = Path(tempfile.mkdtemp(prefix="emu-relay-bench-"))
    settings = folder / "settings.yaml"
    settings.write_text(SETTINGS % "\n".join(f"    - {{name: agent{i}}}" for i in range(agents)))
    command = [sys.executable, "run.py", "emulator", "--settings", str(settings), "--port", "0"]
    process = await trio.lowlevel.open_process(command, cwd=ROOT, stdout=subprocess.PIPE)
    return process, await _started(process, "emulator_started")


async def start_floor(kind: str) -> tuple[trio.Process, str]:
    command = [sys.executable, __file__, "--serve-floor", kind]
    process = await trio.lowlevel.open_process(command, cwd=ROOT, stdout=subprocess.PIPE)
    return process, await _started(process, "floor_started")


async def drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some():
        pass


@contextlib.asynccontextmanager
async def profiled(args: argparse.Namespace, name: str, pid: int) -> Any:
    """With `--py-spy DIR`: py-spy samples the server during the measured phase (collapsed
    stacks in DIR/<name>.txt)."""
    if not args.py_spy:
        yield
        return
    out = Path(args.py_spy) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw", "-r", "250"]
    spy += ["-p", str(pid), "-o", str(out), "-d", str(int(args.seconds) + 1)]
    process = await trio.lowlevel.open_process(spy, stdout=subprocess.DEVNULL)
    await trio.sleep(0.5)
    try:
        yield
    finally:
        await process.wait()


def cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


# --- the driver ------------------------------------------------------------------------------


def customer_line(room: str, i: int) -> dict[str, Any]:
    """A relayed customer line as the daemon posts it (JSON body, customised identity)."""
    return {
        "channel": room,
        "text": f"LTc{i}m1 where is my parcel?",
        "unfurl_links": False,
        "unfurl_media": False,
        "username": f"LT{i} (customer)",
        "icon_emoji": ":bust_in_silhouette:",
        "metadata": {"event_type": "takeover_post", "event_payload": {"id": f"p{i}"}},
    }


class Tally:
    """What came back: envelopes (with their arrival times by text) and RTM events."""

    def __init__(self) -> None:
        self.envelopes = 0
        self.rtm_events = 0
        self.envelope_at: dict[str, float] = {}
        self._target = 0
        self._reached = trio.Event()

    def got_envelope(self, text: str) -> None:
        self.envelopes += 1
        self.envelope_at.setdefault(text, time.perf_counter())
        if self.envelopes >= self._target:
            self._reached.set()

    async def wait_envelopes(self, n: int) -> None:
        """Until `n` envelopes in all have arrived (the caller bounds the wait)."""
        self._target, self._reached = n, trio.Event()
        if self.envelopes < n:
            await self._reached.wait()


async def socket_mode_app(ws: trio_websocket.WebSocketConnection, tally: Tally) -> None:
    with contextlib.suppress(trio_websocket.ConnectionClosed):
        while True:
            envelope = json.loads(await ws.get_message())
            if "envelope_id" not in envelope:
                continue
            await ws.send_message(json.dumps({"envelope_id": envelope["envelope_id"]}))
            tally.got_envelope(envelope["payload"]["event"].get("text", ""))


async def rtm_client(ws: trio_websocket.WebSocketConnection, tally: Tally) -> None:
    with contextlib.suppress(trio_websocket.ConnectionClosed):
        while True:
            event = json.loads(await ws.get_message())
            tally.rtm_events += event.get("type") == "message"


async def paced_posts(
    http: JsonHttp, jobs: list[tuple[str, dict[str, Any]]], rate: float, seconds: float
) -> tuple[int, dict[str, float]]:
    """Post `rate` a second for `seconds`, cycling through `jobs` (token, body); returns the
    posts answered ok and the send time of each text."""
    send, receive = trio.open_memory_channel[tuple[str, dict[str, Any]]](10_000)
    ok = 0
    sent: dict[str, float] = {}

    async def worker() -> None:
        nonlocal ok
        async for token, body in receive:
            sent[body["text"]] = time.perf_counter()
            reply = await http.call("POST", "/api/chat.postMessage", body, token=token)
            ok += reply.body.get("ok") is True

    async with trio.open_nursery() as nursery:
        for _ in range(WORKERS):
            nursery.start_soon(worker)
        start = trio.current_time()
        async with send:
            for i in range(int(rate * seconds)):
                await trio.sleep_until(start + i / rate)
                token, body = jobs[i % len(jobs)]
                await send.send((token, {**body, "text": f"{body['text']} #{i}"}))
    return ok, sent


async def measure_floor(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    process, url = await start_floor(kind)
    try:
        http = JsonHttp(url, connections=WORKERS)
        jobs = [("xoxb-floor", {"channel": "C000000001", "text": "hello"})]
        await paced_posts(http, jobs, args.rate, 1.0)  # warm-up: connections, code paths
        async with profiled(args, f"floor_{kind}", process.pid):
            before, wall = cpu_of(process.pid), time.perf_counter()
            ok, _ = await paced_posts(http, jobs, args.rate, args.seconds)
            used, wall = cpu_of(process.pid) - before, time.perf_counter() - wall
        await http.aclose()
    finally:
        process.terminate()
        await process.wait()
    return {"posts": ok, "cpu_us_per_post": round(used / ok * 1e6), "cores": round(used / wall, 3)}


async def measure_relay(args: argparse.Namespace) -> dict[str, Any]:
    process, url = await start_emulator(args.rtm)
    tally = Tally()
    try:
        async with trio.open_nursery() as nursery:
            assert process.stdout is not None
            nursery.start_soon(drain, process.stdout)
            http = JsonHttp(url, connections=WORKERS + 8)
            app = (await http.call("GET", "/_emu/app")).body
            users = (await http.call("GET", "/_emu/users")).body["users"]
            bot = app["bot_token"]
            jobs: list[tuple[str, dict[str, Any]]] = []
            for i, user in enumerate(users):
                made = await http.call(
                    "POST",
                    "/api/conversations.create",
                    {"name": f"room-{i}", "is_private": True},
                    token=bot,
                )
                room = made.body["channel"]["id"]
                members = [users[(i + j) % len(users)]["id"] for j in range(args.members)]
                await http.call(
                    "POST",
                    "/api/conversations.invite",
                    {"channel": room, "users": ",".join(members)},
                    token=bot,
                )
                jobs.append((bot, customer_line(room, i)))
                jobs.append((user["token"], {"channel": room, "text": f"LTa{i}m1 Thanks."}))

            opened = await http.call("POST", "/api/apps.connections.open", token=app["app_token"])
            sm = await trio_websocket.connect_websocket_url(
                nursery, opened.body["url"], message_queue_size=1_000_000
            )
            nursery.start_soon(socket_mode_app, sm, tally)
            for user in users:
                rtm = await http.call("POST", "/api/rtm.connect", token=user["token"])
                ws = await trio_websocket.connect_websocket_url(
                    nursery, rtm.body["url"], message_queue_size=1_000_000
                )
                nursery.start_soon(rtm_client, ws, tally)
            await paced_posts(http, jobs, args.rate, 1.0)  # warm-up
            with trio.move_on_after(10):
                await tally.wait_envelopes(int(args.rate))
            envelopes, events = tally.envelopes, tally.rtm_events
            async with profiled(args, "relay", process.pid):
                before, wall = cpu_of(process.pid), time.perf_counter()
                ok, sent = await paced_posts(http, jobs, args.rate, args.seconds)
                with trio.move_on_after(30):
                    await tally.wait_envelopes(envelopes + ok)
                used, wall = cpu_of(process.pid) - before, time.perf_counter() - wall
            latencies = sorted(
                (tally.envelope_at[t] - s) * 1000 for t, s in sent.items() if t in tally.envelope_at
            )
            stats = (await http.call("GET", "/_emu/stats")).body["socket_mode"]
            await http.aclose()
            nursery.cancel_scope.cancel()
    finally:
        process.terminate()
        await process.wait()
    return {
        "posts": ok,
        "envelopes": tally.envelopes - envelopes,
        "rtm_events": tally.rtm_events - events,
        "cpu_us_per_post": round(used / ok * 1e6),
        "cores": round(used / wall, 3),
        "post_to_envelope_ms_p50": round(latencies[len(latencies) // 2], 2),
        "post_to_envelope_ms_p99": round(latencies[int(len(latencies) * 0.99)], 2),
        "redelivered": stats["redelivered"],
    }


class _FakeSocket:
    """A `TextSocket` for the hubs: counts frames; the app's acks each envelope at once."""

    def __init__(self, ack: bool) -> None:
        self.frames = 0
        self._ack = ack
        self._inbox: trio.MemorySendChannel[str]
        self._inbox, self._incoming = trio.open_memory_channel[str](math.inf)

    async def send_text(self, text: str) -> None:
        self.frames += 1
        if self._ack and text.startswith('{"envelope_id"'):
            envelope_id = json.loads(text)["envelope_id"]
            self._inbox.send_nowait(json.dumps({"envelope_id": envelope_id}))

    async def receive_text(self) -> str:
        return await self._incoming.receive()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        return None


async def in_process(args: argparse.Namespace) -> dict[str, Any]:
    from emulator import AgentSeed, Emulator, EmulatorConfig

    agents = tuple(AgentSeed(name=f"agent{i}") for i in range(args.rtm))
    emu = Emulator(EmulatorConfig(agents=agents))
    ws = emu.workspace
    bot = emu.credentials.bot_token
    app: Any = emu.app
    sent: list[dict[str, Any]] = []

    async def post(token: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/api/chat.postMessage",
            "raw_path": b"/api/chat.postMessage",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8090"),
                (b"authorization", f"Bearer {token}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8090),
            "state": {},
        }
        chunks = [{"type": "http.request", "body": data, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return chunks.pop() if chunks else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return json.loads(sent[-1]["body"])

    jobs: list[tuple[str, dict[str, Any]]] = []
    humans = ws.humans()
    async with trio.open_nursery() as nursery:
        for i, user in enumerate(humans):
            made = emu_call(
                emu, "conversations.create", bot, {"name": f"room-{i}", "is_private": "true"}
            )
            room = made["channel"]["id"]
            members = [humans[(i + j) % len(humans)].id for j in range(args.members)]
            emu_call(
                emu, "conversations.invite", bot, {"channel": room, "users": ",".join(members)}
            )
            jobs.append((bot, customer_line(room, i)))
            jobs.append((user.token, {"channel": room, "text": f"LTa{i}m1 Thanks."}))
        app_socket = _FakeSocket(ack=True)
        nursery.start_soon(emu.socket_mode.run)
        nursery.start_soon(emu.socket_mode.serve, app_socket)
        rtm_sockets = [_FakeSocket(ack=False) for _ in humans]
        for user, sock in zip(humans, rtm_sockets, strict=True):
            nursery.start_soon(emu.rtm.serve, sock, user.id, False)
        await trio.testing.wait_all_tasks_blocked()
        total = int(args.rate * args.seconds)
        for i in range(min(total, 2000)):  # warm-up
            token, body = jobs[i % len(jobs)]
            await post(token, body)
            await trio.testing.wait_all_tasks_blocked()
        sent.clear()
        frames = app_socket.frames + sum(s.frames for s in rtm_sockets)
        cpu = time.process_time()
        for i in range(total):
            token, body = jobs[i % len(jobs)]
            answer = await post(token, {**body, "text": f"{body['text']} #{i}"})
            assert answer["ok"], answer
            await trio.testing.wait_all_tasks_blocked()  # envelopes, RTM events, acks handled
            if len(sent) > 100:
                sent.clear()
        used = time.process_time() - cpu
        frames = app_socket.frames + sum(s.frames for s in rtm_sockets) - frames
        nursery.cancel_scope.cancel()
    return {
        "posts": total,
        "frames_written": frames,
        "cpu_us_per_post": round(used / total * 1e6, 1),
    }


def emu_call(emu: Any, method: str, token: str, args: dict[str, Any]) -> dict[str, Any]:
    """A Web API call straight to the method table (set-up only)."""
    from emulator.web_api import HANDLERS
    from emulator.web_args import Args, Call

    actor = emu.workspace.authenticate(token)
    try:
        return HANDLERS[method](Call(emu.workspace, actor, Args(args), "http://x", emu))
    finally:
        emu.router.settle()


async def main(args: argparse.Namespace) -> None:
    if args.in_process:
        import logging

        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        alone = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "members_per_room": args.members,
            "rtm_clients": args.rtm,
            "in_process": await in_process(args),
        }
        print(json.dumps(alone, indent=2))
        return
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "load_avg_before": round(os.getloadavg()[0], 2),
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "rtm_clients": args.rtm,
        "members_per_room": args.members,
    }
    report["floor_asgi"] = await measure_floor("asgi", args)
    report["floor_starlette"] = await measure_floor("starlette", args)
    report["relay"] = relay = await measure_relay(args)
    floor = report["floor_starlette"]["cpu_us_per_post"]
    relay["ratio_to_starlette_floor"] = round(relay["cpu_us_per_post"] / floor, 2)
    relay["above_floor_us"] = relay["cpu_us_per_post"] - floor
    report["load_avg_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=300.0, help="posts per second (300)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a phase (10)")
    parser.add_argument("--rtm", type=int, default=30, help="agents on RTM, one room each (30)")
    parser.add_argument("--members", type=int, default=1, help="agents per room (1)")
    parser.add_argument("--in-process", action="store_true", help="the emulator's own share only")
    parser.add_argument("--py-spy", metavar="DIR", help="profile the servers into DIR")
    parser.add_argument("--serve-floor", choices=["asgi", "starlette"], help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_floor:
        serve_floor(arguments.serve_floor)
    else:
        trio.run(main, arguments)
