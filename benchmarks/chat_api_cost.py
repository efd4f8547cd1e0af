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

The table prints, per variant, the median over `--rounds`, and the ratio chat / bare.
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
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import trio

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VARIANTS = ("bare", "domain", "chat")
EXTRA_VARIANTS = ("asgi",)
AGENTS_PER_CHATS = 10  # sessions per agent (max_chats_per_agent)


# --- the servers (each in its own process) ---------------------------------------------------


def _hypercorn_config() -> Any:
    """The Hypercorn settings `ChatServer` uses (its domain is never called here)."""
    from actors.settings import HttpSettings
    from transport.chat_server import ChatServer

    return ChatServer(None, HttpSettings(port=0))._config  # type: ignore[arg-type]


def _bare_app() -> Callable[..., Awaitable[None]]:
    """Reads the body, answers 202 `{"seq"}`, pushes the event to the session's sockets."""
    seqs: dict[str, int] = {}
    sockets: dict[str, list[trio.MemorySendChannel[str]]] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        session_id = scope["path"].split("/")[3]
        if scope["type"] == "http":
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            text = json.loads(body)["text"]
            seq = seqs.get(session_id, 0) + 1
            seqs[session_id] = seq
            answer = json.dumps({"seq": seq}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 202,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(answer)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer})
            event = {"seq": seq, "type": "customer_message", "text": text, "at": time.time()}
            frame = json.dumps(event)
            for channel in sockets.get(session_id, ()):
                channel.send_nowait(frame)
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        channel, frames = trio.open_memory_channel[str](10_000)
        sockets.setdefault(session_id, []).append(channel)
        async with trio.open_nursery() as nursery:

            async def pump() -> None:
                async for frame in frames:
                    await send({"type": "websocket.send", "text": frame})

            nursery.start_soon(pump)
            while (await receive())["type"] != "websocket.disconnect":
                pass
            nursery.cancel_scope.cancel()
        sockets[session_id].remove(channel)

    return app


class _Bot:
    """Hands off on "human"; every other message of a takeover never reaches it."""

    def reply(self, text: str) -> Any:
        from actors.bot import BotAnswer, HandOff

        return HandOff("asked") if "human" in text else BotAnswer(f"You said: {text}", 0.9)


async def _serve_bare(args: argparse.Namespace) -> None:
    from hypercorn.trio import serve

    sessions = [(f"s{i:05d}", f"t{i:05d}", 0) for i in range(args.customers)]
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, _bare_app(), _hypercorn_config())
        print(json.dumps({"url": binds[0], "sessions": sessions}), flush=True)


async def _serve_chat(args: argparse.Namespace) -> None:
    from actors.domain import Domain
    from actors.journal import JournalActor
    from actors.journal_sink import JournalSink
    from actors.ports import (
        OfferAnswered,
        OpenRoom,
        PostOffer,
        PresenceChanged,
        RelayToRoom,
        RoomMessagePosted,
        SlackCommand,
    )
    from actors.settings import BotSettings, HttpSettings, RoutingSettings
    from benchmarks.domain_rig import AutoSlack
    from transport.chat_server import ChatServer

    n_agents = max(1, -(-args.customers // AGENTS_PER_CHATS))
    agents = tuple(f"U{n:04d}" for n in range(n_agents))
    replies_in, replies_out = trio.open_memory_channel[SlackCommand](1_000_000)
    domain_box: list[Domain] = []
    rooms: dict[str, str] = {}  # room id -> agent id

    def on_command(command: SlackCommand, now: float) -> None:
        if isinstance(command, OpenRoom):  # AutoSlack numbers rooms in the order it opens them
            rooms[f"C{len(rooms) + 1:07d}"] = command.agent_id
        if isinstance(command, PostOffer) or (
            args.agent_replies and isinstance(command, RelayToRoom)
        ):
            replies_in.send_nowait(command)

    async def agents_act() -> None:
        n = 0
        async for command in replies_out:
            domain = domain_box[0]
            if isinstance(command, PostOffer):
                await domain.deliver(
                    OfferAnswered(command.offer.offer_id, command.offer.agent_id, True)
                )
            elif isinstance(command, RelayToRoom) and command.line.speaker == "customer":
                n += 1
                agent = rooms.get(command.room_id, agents[0])
                text = f"re: {command.line.text}"
                await domain.deliver(RoomMessagePosted(command.room_id, agent, text, f"m{n}"))

    slack = AutoSlack(on_command=on_command)
    workdir = Path(tempfile.mkdtemp(prefix="chat-api-cost-"))
    try:
        journal = JournalActor(workdir / "journal", fsync="batch", snapshot_every=10_000_000)
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            sink = JournalSink(journal)
            domain = Domain(
                routing=RoutingSettings(
                    agents=agents,
                    offer_timeout_s=30,
                    max_tries=3,
                    max_chats_per_agent=AGENTS_PER_CHATS,
                ),
                bot_settings=BotSettings(),
                bot=_Bot(),
                slack=slack.send,
                sink=sink,
                agents=agents,
                wall_clock=time.time,
                greeting="",
            )
            domain_box.append(domain)
            await nursery.start(slack.run)
            await nursery.start(domain.run)
            nursery.start_soon(agents_act)
            for agent_id in agents:
                await domain.deliver(PresenceChanged(agent_id, True))
            url = ""
            if args.serve == "chat":
                http = HttpSettings(host="127.0.0.1", port=0, messages_per_minute=100_000)
                url = await nursery.start(ChatServer(domain, http).run)
            sessions = []
            for i in range(args.customers):
                opened = await domain.open_session(f"c{i:05d}", f"Customer {i}", None)
                await domain.customer_says(opened.session_id, "I want a human")
                sessions.append((opened.session_id, opened.token, 0))
            with trio.fail_after(60):
                for i, (session_id, token, _) in enumerate(sessions):  # all in a takeover
                    seen = domain.events_after(session_id, 0)
                    while not any(e.type == "agent_joined" for e in seen):
                        seen = await domain.wait_events(session_id, seen[-1].seq)
                    sessions[i] = (session_id, token, seen[-1].seq)
            if args.serve == "domain":
                windows = await _drive_domain(args, domain, sessions)
                print(json.dumps({k: w.__dict__ for k, w in windows.items()}), flush=True)
                nursery.cancel_scope.cancel()
                return
            print(json.dumps({"url": url, "sessions": sessions}), flush=True)
            await trio.sleep_forever()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _drive_domain(
    args: argparse.Namespace, domain: Any, sessions: list[tuple[str, str, int]]
) -> dict[str, Window]:
    """The `domain` variant: the same customers as tasks calling the domain in this process
    (`customer_says`, and `wait_events` + the event's JSON for the push), no HTTP at all."""
    from transport.chat_wire import encode_event

    tally = [Tally()]
    measuring = [False]
    sent: dict[str, float] = {}
    interval = len(sessions) / args.rate if args.rate > 0 else 0.0

    async def customer(index: int, stop: trio.Event) -> None:
        session_id = sessions[index][0]
        due = trio.current_time() + interval * index / len(sessions)
        n = 0
        while not stop.is_set():
            if interval:
                await trio.sleep_until(due)
                due = max(due + interval, trio.current_time())
            n += 1
            text = f"{index}-{n} " + "x" * args.text_chars
            t0 = sent[text] = time.perf_counter()
            await domain.customer_says(session_id, text)
            if measuring[0]:
                tally[0].posts += 1
                tally[0].post_ms.append((time.perf_counter() - t0) * 1000)

    async def reader(index: int) -> None:
        session_id, last = sessions[index][0], domain.events_after(sessions[index][0], 0)[-1].seq
        while True:
            for event in await domain.wait_events(session_id, last):
                json.dumps(encode_event(event))
                last = event.seq
                t0 = sent.pop(event.text or "", None)
                if measuring[0]:
                    tally[0].events += 1
                    if t0 is not None:
                        tally[0].push_ms.append((time.perf_counter() - t0) * 1000)

    async def window() -> Window:
        await trio.sleep(args.warmup)
        tally[0] = Tally()
        measuring[0] = True
        cpu0, t0 = time.process_time(), time.perf_counter()
        await trio.sleep(args.seconds)
        measuring[0] = False
        cpu, elapsed = time.process_time() - cpu0, time.perf_counter() - t0
        t = tally[0]
        return Window(
            msgs_s=t.posts / elapsed,
            events_s=t.events / elapsed,
            cpu_us_msg=cpu / max(1, t.posts) * 1e6,
            cpu_us_event=float("nan"),
            cores=cpu / elapsed,
            post_p50=_pct(t.post_ms, 50),
            post_p99=_pct(t.post_ms, 99),
            push_p50=_pct(t.push_ms, 50),
            push_p99=_pct(t.push_ms, 99),
            failures=0,
            client_cores=float("nan"),
        )

    windows: dict[str, Window] = {}
    async with trio.open_nursery() as nursery:
        stop = trio.Event()
        for i in range(len(sessions)):
            nursery.start_soon(customer, i, stop)
        windows["post"] = await window()
        for i in range(len(sessions)):
            nursery.start_soon(reader, i)
        windows["post+ws"] = _with_event_cost(await window(), windows["post"])
        stop.set()
        nursery.cancel_scope.cancel()
    return windows


def _with_event_cost(both: Window, post_only: Window) -> Window:
    """CPU per pushed event: what the reading sockets added per message, per event."""
    events_per_msg = both.events_s / both.msgs_s if both.msgs_s else 0.0
    if events_per_msg:
        both.cpu_us_event = (both.cpu_us_msg - post_only.cpu_us_msg) / events_per_msg
    return both


class _StubDomain:
    """For the `asgi` variant: answers at once, so only the app's own work is measured."""

    def __init__(self) -> None:
        self.seq = 0
        self.events: list[Any] = []

    def mode(self, session_id: str) -> str:
        return "takeover"

    def check_token(self, session_id: str, token: str) -> bool:
        return token == "t"

    async def customer_says(self, session_id: str, text: str) -> int:
        self.seq += 1
        await trio.lowlevel.checkpoint()
        return self.seq

    def events_after(self, session_id: str, after_seq: int) -> list[Any]:
        return self.events[after_seq:]

    async def wait_events(self, session_id: str, after_seq: int) -> list[Any]:
        """A new event every time it is asked for one (an agent who never stops typing)."""
        from actors.messages import CustomerEvent

        await trio.lowlevel.checkpoint()
        seq = len(self.events) + 1
        self.events.append(CustomerEvent(seq, "agent_message", "x" * 50, None, time.time()))
        return self.events[after_seq:]


async def _serve_asgi(args: argparse.Namespace) -> None:
    """The `asgi` variant: the customer app called in-process, no server, no domain."""
    from actors.settings import HttpSettings
    from transport.chat_api import build_chat_app

    app: Any = build_chat_app(_StubDomain(), HttpSettings(port=0, messages_per_minute=100_000))  # type: ignore[arg-type]
    body = json.dumps({"text": "x" * args.text_chars}).encode()
    path = "/api/sessions/s1/messages"
    headers = [
        (b"host", b"127.0.0.1:8080"),
        (b"authorization", b"Bearer t"),
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
    ]
    base = {"asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http", "root_path": ""}
    base |= {"query_string": b"", "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5000)}
    post = {**base, "type": "http", "method": "POST", "path": path, "raw_path": path.encode()}
    post["headers"] = headers
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    n = max(1000, int(args.rate * args.seconds))
    for _ in range(200):
        await app(dict(post), receive, send)
    assert sent[0]["status"] == 202, sent[:2]
    cpu0 = time.process_time()
    for _ in range(n):
        await app(dict(post), receive, send)
        sent.clear()
    post_us = (time.process_time() - cpu0) / n * 1e6

    ws_path = "/api/sessions/s1/ws"
    ws = {**base, "type": "websocket", "path": ws_path, "raw_path": ws_path.encode()}
    ws |= {"query_string": b"token=t", "headers": headers[:1], "subprotocols": [], "extensions": {}}
    frames = [0]
    done = trio.Event()
    inbound = [{"type": "websocket.connect"}]

    async def ws_receive() -> dict[str, Any]:
        if inbound:
            return inbound.pop()
        await done.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def ws_send(message: Any) -> None:
        if message["type"] == "websocket.send":
            frames[0] += 1
            if frames[0] == 200:
                cpu[0] = time.process_time()
            elif frames[0] == 200 + n:
                cpu[1] = time.process_time()
                done.set()

    cpu = [0.0, 0.0]
    with trio.move_on_after(60):
        await app(ws, ws_receive, ws_send)
    event_us = (cpu[1] - cpu[0]) / n * 1e6
    print(json.dumps({"post_us": post_us, "event_us": event_us}), flush=True)


def _serve(args: argparse.Namespace) -> None:
    from actors.log import configure_logging

    configure_logging("warning", "json")  # as the load test runs the daemon
    serve = {"bare": _serve_bare, "asgi": _serve_asgi}.get(args.serve, _serve_chat)
    trio.run(serve, args)


# --- the customers (this process) -------------------------------------------------------------


async def _recv(stream: trio.SocketStream) -> bytes:
    data = await stream.receive_some(65536)
    if not data:
        raise EOFError("the server closed the connection")
    return data


@dataclass
class Tally:
    posts: int = 0
    events: int = 0
    failures: int = 0
    post_ms: list[float] = field(default_factory=list)
    push_ms: list[float] = field(default_factory=list)


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


@dataclass
class Window:
    msgs_s: float
    events_s: float
    cpu_us_msg: float
    cpu_us_event: float
    cores: float
    post_p50: float
    post_p99: float
    push_p50: float
    push_p99: float
    failures: int
    client_cores: float


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


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
    tally = customers.tally
    return Window(
        msgs_s=tally.posts / elapsed,
        events_s=tally.events / elapsed,
        cpu_us_msg=cpu / max(1, tally.posts) * 1e6,
        cpu_us_event=float("nan"),
        cores=cpu / elapsed,
        post_p50=_pct(tally.post_ms, 50),
        post_p99=_pct(tally.post_ms, 99),
        push_p50=_pct(tally.push_ms, 50),
        push_p99=_pct(tally.push_ms, 99),
        failures=tally.failures,
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
        windows["post+ws"] = _with_event_cost(both, windows["post"])
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
        _serve(args)
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
