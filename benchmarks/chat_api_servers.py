"""The server side of benchmarks/chat_api_cost.py: each variant's server, run in its own process.

Owns what `chat_api_cost.py --serve VARIANT` runs: ``bare`` (Hypercorn, configured as
`ChatServer` configures it, over a minimal ASGI app), ``chat`` (`ChatServer` over the real
`Domain`, with the real journal), ``domain`` (the same domain driven in-process, no HTTP) and
``asgi`` (the customer app called in-process over a stub domain), plus the figures they share
with the client side (`Tally`, `Window`). See chat_api_cost.py for what is measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

__all__ = [
    "EXTRA_VARIANTS",
    "VARIANTS",
    "Tally",
    "Window",
    "pct",
    "serve",
    "with_event_cost",
]

VARIANTS = ("bare", "domain", "chat")
EXTRA_VARIANTS = ("asgi",)
AGENTS_PER_CHATS = 10  # sessions per agent (max_chats_per_agent)


@dataclass
class Tally:
    posts: int = 0
    events: int = 0
    failures: int = 0
    post_ms: list[float] = field(default_factory=list)
    push_ms: list[float] = field(default_factory=list)


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


def window_of(
    tally: Tally, cpu_s: float, elapsed_s: float, *, failures: int, client_cores: float
) -> Window:
    """The figures of one measuring window: `cpu_s` of server CPU over `elapsed_s`."""
    return Window(
        msgs_s=tally.posts / elapsed_s,
        events_s=tally.events / elapsed_s,
        cpu_us_msg=cpu_s / max(1, tally.posts) * 1e6,
        cpu_us_event=float("nan"),
        cores=cpu_s / elapsed_s,
        post_p50=pct(tally.post_ms, 50),
        post_p99=pct(tally.post_ms, 99),
        push_p50=pct(tally.push_ms, 50),
        push_p99=pct(tally.push_ms, 99),
        failures=failures,
        client_cores=client_cores,
    )


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


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
        return window_of(tally[0], cpu, elapsed, failures=0, client_cores=float("nan"))

    windows: dict[str, Window] = {}
    async with trio.open_nursery() as nursery:
        stop = trio.Event()
        for i in range(len(sessions)):
            nursery.start_soon(customer, i, stop)
        windows["post"] = await window()
        for i in range(len(sessions)):
            nursery.start_soon(reader, i)
        windows["post+ws"] = with_event_cost(await window(), windows["post"])
        stop.set()
        nursery.cancel_scope.cancel()
    return windows


def with_event_cost(both: Window, post_only: Window) -> Window:
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


def serve(args: argparse.Namespace) -> None:
    from actors.log import configure_logging

    configure_logging("warning", "json")  # as the load test runs the daemon
    serve = {"bare": _serve_bare, "asgi": _serve_asgi}.get(args.serve, _serve_chat)
    trio.run(serve, args)
