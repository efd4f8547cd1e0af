"""The crash rig: the daemon and the Slack emulator as real processes, customers and agents as
scripted load, and the audit of what survived.

Owns `Process` (a child process whose JSON log lines are read as they come, so a test waits for
`daemon_started` instead of sleeping), `Stack` (the emulator started once, then the daemon in
`slack.mode: socket` against it, killed with SIGKILL and started again as often as asked; the
emulator outlives it, as Slack would), `Customer` and `Agents` (the load: customers over the
customer API, agents through the emulator's `/_emu/` routes and their own user tokens) and
`audit` (what the test asserts, collected as a list of problems).

Everything the load sends is unique (`c3-m0007`, `bob-a0012`), so a message seen twice is a
duplicate, never a coincidence. Only the processes are real: waiting on them is polling with a
hard deadline.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
import yaml

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ("alice", "bob", "chloe")
PREFIX = "swivl_user_"
NETWORK_ERRORS = (httpx.TransportError, httpx.HTTPStatusError)


class Process:
    """A child process; its log lines (JSON) are kept, and waited for by event name."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name, self.args, self.log_path = name, args, log
        self.lines: list[dict[str, Any]] = []
        self._changed = trio.Event()
        self._proc: trio.Process | None = None

    async def start(self, nursery: trio.Nursery) -> None:
        self._proc = await trio.lowlevel.open_process(
            self.args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        nursery.start_soon(self._read, self._proc)

    async def _read(self, proc: trio.Process) -> None:
        assert proc.stdout is not None
        buffer = b""
        with self.log_path.open("ab") as log:
            async for chunk in proc.stdout:
                log.write(chunk)
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for raw in complete:
                    try:
                        self.lines.append(json.loads(raw))
                    except ValueError:
                        self.lines.append({"event": "_raw", "text": raw.decode(errors="replace")})
                self._changed.set()
                self._changed = trio.Event()

    async def wait_event(self, event: str, after: int = 0) -> dict[str, Any]:
        """The first log line with this event name (from line `after` on)."""
        while True:
            for line in self.lines[after:]:
                if line.get("event") == event:
                    return line
            if self._proc is not None and self._proc.returncode is not None:
                raise AssertionError(f"{self.name} exited {self._proc.returncode}: {self.tail()}")
            await self._changed.wait()

    def tail(self, n: int = 15) -> str:
        return "\n".join(json.dumps(line)[:300] for line in self.lines[-n:])

    async def kill(self) -> None:
        """SIGKILL: no drain, no snapshot, no goodbye."""
        assert self._proc is not None
        self._proc.kill()
        await self._proc.wait()

    async def stop(self) -> int:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        return await self._proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None


@dataclass
class Stack:
    """The emulator (once) and the daemon (again after every kill)."""

    tmp: Path
    nursery: trio.Nursery
    http: httpx.AsyncClient
    emulator_url: str = ""
    chat_url: str = ""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    daemon: Process | None = None
    emulator: Process | None = None
    up: trio.Event = field(default_factory=trio.Event)
    starts: int = 0
    daemons: list[Process] = field(default_factory=list)

    async def start_emulator(self) -> None:
        settings = self.tmp / "emulator.yaml"
        agents = [{"name": a, "real_name": a.title(), "title": "Support"} for a in AGENTS]
        settings.write_text(
            yaml.safe_dump({"emulator": {"port": 0, "agents": agents}, "log": {"format": "json"}})
        )
        emulator = Process(
            "emulator",
            [sys.executable, "run.py", "emulator", "--settings", str(settings)],
            self.tmp / "emulator.log",
        )
        self.emulator = emulator
        await emulator.start(self.nursery)
        self.emulator_url = (await emulator.wait_event("emulator_started"))["url"]
        self.users = {u["name"]: u for u in (await self.emu("GET", "/_emu/users"))["users"]}
        app = await self.emu("GET", "/_emu/app")
        daemon_settings = {
            "http": {"port": 0},
            "slack": {
                "mode": "socket",
                "api_url": self.emulator_url + "/api/",
                "bot_token": app["bot_token"],
                "app_token": app["app_token"],
            },
            "routing": {
                "agents": [self.users[a]["id"] for a in AGENTS],
                "offer_timeout_s": 2.0,
                "max_tries": 3,
                "max_chats_per_agent": 3,
            },
            "journal": {"path": str(self.tmp / "journal"), "snapshot_every": 100},
            "log": {"format": "json"},
        }
        (self.tmp / "daemon.yaml").write_text(yaml.safe_dump(daemon_settings))

    async def start_daemon(self) -> None:
        self.starts += 1
        self.daemon = Process(
            "daemon",
            [sys.executable, "run.py", "--settings", str(self.tmp / "daemon.yaml")],
            self.tmp / f"daemon-{self.starts}.log",
        )
        self.daemons.append(self.daemon)
        await self.daemon.start(self.nursery)
        started = await self.daemon.wait_event("daemon_started")
        self.chat_url = started["widget"].rstrip("/")
        self.up.set()

    async def kill_daemon(self) -> None:
        assert self.daemon is not None
        self.up = trio.Event()
        await self.daemon.kill()

    async def stop_daemon(self) -> int:
        assert self.daemon is not None
        self.up = trio.Event()
        return await self.daemon.stop()

    async def close(self) -> None:
        """Kill whatever still runs (a failed test leaves no process behind)."""
        for process in (self.daemon, self.emulator):
            if process is not None and process.running:
                await process.kill()

    async def emu(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = await self.http.request(method, self.emulator_url + path, **kwargs)
        answer.raise_for_status()
        return answer.json()

    async def chat(self, method: str, path: str, token: str = "", **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return await self.http.request(method, self.chat_url + path, headers=headers, **kwargs)


@dataclass
class Customer:
    """One customer's session; `acked` holds every message answered 202, as (seq, text)."""

    customer_id: str
    session_id: str = ""
    token: str = ""
    acked: list[tuple[int, str]] = field(default_factory=list)
    sent: int = 0

    async def run(self, stack: Stack, rng: random.Random, stop: trio.Event) -> None:
        while not stop.is_set():
            await stack.up.wait()
            with contextlib.suppress(*NETWORK_ERRORS):  # died under us: nothing acknowledged
                await self._step(stack, rng)
            await trio.sleep(rng.uniform(0.2, 1.2))

    async def _step(self, stack: Stack, rng: random.Random) -> None:
        if not self.session_id:
            body = {"customer_id": self.customer_id, "name": self.customer_id.upper()}
            answer = await stack.chat("POST", "/api/sessions", json=body)
            answer.raise_for_status()
            opened = answer.json()
            self.session_id, self.token = opened["session_id"], opened["token"]
            return
        self.sent += 1
        text = f"{self.customer_id}-m{self.sent:04d}"
        if rng.random() < 0.3:
            text = f"talk to a human {text}"
        answer = await stack.chat(
            "POST", f"/api/sessions/{self.session_id}/messages", self.token, json={"text": text}
        )
        if answer.status_code == 202:
            self.acked.append((answer.json()["seq"], text))

    async def events(self, stack: Stack) -> list[dict[str, Any]]:
        answer = await stack.chat(
            "GET", f"/api/sessions/{self.session_id}/events?after=0", self.token
        )
        answer.raise_for_status()
        events: list[dict[str, Any]] = answer.json()["events"]
        return events


@dataclass
class Agents:
    """The agent pool at work in Slack: answer offers, chat in rooms, end takeovers."""

    stack: Stack
    rng: random.Random
    decided: set[str] = field(default_factory=set)
    said: Counter[str] = field(default_factory=Counter)
    texts: list[str] = field(default_factory=list)
    delivered: set[str] = field(default_factory=set)

    async def run(self, stop: trio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(*NETWORK_ERRORS):
                await self._round()
            await trio.sleep(0.25)

    async def _round(self) -> None:
        stack, by_id = self.stack, {u["id"]: name for name, u in self.stack.users.items()}
        for channel in (await stack.emu("GET", "/_emu/channels"))["channels"]:
            agents = [by_id[m] for m in channel["members"] if m in by_id]
            if not agents or channel["is_archived"]:
                continue
            if channel["is_im"]:
                await self._answer_offers(channel["id"], agents[0])
            elif channel["name"].startswith(PREFIX):
                await self._chat(channel["id"], agents[0])

    async def _answer_offers(self, channel: str, agent: str) -> None:
        messages = await self.stack.emu("GET", "/_emu/messages", params={"channel": channel})
        for message in messages["messages"]:
            actions = [
                e["action_id"]
                for b in message.get("blocks") or ()
                if b.get("type") == "actions"
                for e in b.get("elements", ())
            ]
            if "offer_accept" not in actions or message["ts"] in self.decided:
                continue
            self.decided.add(message["ts"])
            roll = self.rng.random()
            if roll < 0.2:
                continue  # let it be missed
            action = "offer_accept" if roll < 0.75 else "offer_ignore"
            body = {
                "user": self.stack.users[agent]["id"],
                "channel": channel,
                "ts": message["ts"],
                "action_id": action,
            }
            await self.stack.emu("POST", "/_emu/click", json=body)

    async def _chat(self, channel: str, agent: str) -> None:
        if self.rng.random() < 0.5:
            return
        user = self.stack.users[agent]
        if self.said[channel] >= 4 and self.rng.random() < 0.4:
            body = {"user": user["id"], "channel": channel, "command": "/end-takeover"}
            await self.stack.emu("POST", "/_emu/command", json=body)
            return
        self.said[channel] += 1
        text = f"{agent}-a{len(self.texts) + 1:04d}"
        answer = await self.stack.http.post(
            self.stack.emulator_url + "/api/chat.postMessage",
            data={"channel": channel, "text": text},
            headers={"authorization": f"Bearer {user['token']}"},
        )
        if answer.json().get("ok"):
            self.texts.append(text)


# --- the audit ---------------------------------------------------------------------------------

_CUSTOMER_TOKEN = re.compile(r"\bc\d+-m\d{4}\b")


async def audit(stack: Stack, customers: list[Customer], agents: Agents) -> list[str]:
    """Everything that went wrong, as readable lines (empty: nothing lost, nothing doubled)."""
    problems: list[str] = []
    for customer in customers:
        if customer.session_id:
            events = await customer.events(stack)
            problems += _audit_customer(customer, events)
            agents.delivered.update(e["text"] for e in events if e["type"] == "agent_message")
    bot = (await stack.emu("GET", "/_emu/app"))["bot_user_id"]
    offers: Counter[str] = Counter()
    rooms_of: Counter[str] = Counter()  # takeover id -> rooms holding its header
    for channel in (await stack.emu("GET", "/_emu/channels"))["channels"]:
        found = await stack.emu("GET", "/_emu/messages", params={"channel": channel["id"]})
        messages = found["messages"]
        if channel["is_im"]:
            offers.update(_offer_id(m) for m in messages if _offer_id(m))
        elif channel["name"].startswith(PREFIX):
            problems += _audit_room(channel["name"], messages, bot)
            rooms_of.update({t for m in messages if (t := _takeover_of(m))})
    problems += [f"offer {o} was posted {n} times" for o, n in offers.items() if n > 1]
    problems += [f"takeover {t} got {n} rooms" for t, n in rooms_of.items() if n > 1]
    stats = (await stack.chat("GET", "/api/stats")).json()
    if stats["escalations"]["searching"]:
        problems.append(f"escalations still searching: {stats['escalations']}")
    for daemon in stack.daemons:
        problems += [
            f"{daemon.log_path.name}: {line['event']} {json.dumps(line)[:200]}"
            for line in daemon.lines
            if line.get("level") in ("error", "critical")
            or line.get("event") in ("actor_message_failed", "actor_crashed", "_raw")
        ]
    return problems


def summary(stack: Stack, customers: list[Customer], agents: Agents) -> dict[str, int]:
    """What the run went through, from the daemons' own logs."""
    counts: Counter[str] = Counter()
    for daemon in stack.daemons:
        for line in daemon.lines:
            event = line.get("event")
            if event == "domain_restored":
                counts["resumed_escalations"] += line["resumed_escalations"]
                counts["open_rooms_restored"] += line["open_rooms"]
                counts["slack_commands_resent"] += line["resent"]
            elif event in (
                "offer_withdrawn",
                "room_resumed",
                "domain_snapshot_written",
                "takeover_started",
                "escalation_accepted",
                "escalation_exhausted",
                "room_unknown",
            ):
                counts[event] += 1
    counts["daemon_starts"] = stack.starts
    counts["messages_acked"] = sum(len(c.acked) for c in customers)
    counts["agent_messages"] = len(agents.texts)
    counts["agent_messages_delivered"] = len(agents.delivered)
    counts["offers_answered"] = len(agents.decided)
    return dict(sorted(counts.items()))


def _audit_customer(customer: Customer, events: list[dict[str, Any]]) -> list[str]:
    who, problems = customer.customer_id, []
    if [e["seq"] for e in events] != list(range(1, len(events) + 1)):
        problems.append(f"{who}: event seqs are not 1..n")
    by_seq = {e["seq"]: e for e in events}
    said = Counter(e["text"] for e in events if e["type"] == "customer_message")
    for seq, text in customer.acked:
        event = by_seq.get(seq)
        if event is None or (event["type"], event["text"]) != ("customer_message", text):
            problems.append(f"{who}: {text!r}, answered 202 with seq {seq}, is not there")
        if said[text] != 1:
            problems.append(f"{who}: {text!r} is in the transcript {said[text]} times")
    seqs = [seq for seq, _ in customer.acked]
    if seqs != sorted(set(seqs)):
        problems.append(f"{who}: acknowledged seqs out of order: {seqs}")
    relayed = Counter(e["text"] for e in events if e["type"] == "agent_message")
    problems += [f"{who}: agent message {t!r} shown {n} times" for t, n in relayed.items() if n > 1]
    if searching(events):
        problems.append(f"{who}: a search never reached an outcome")
    return problems


def searching(events: list[dict[str, Any]]) -> bool:
    """The customer's last search has not reached an outcome (a room, or nobody) yet."""
    waiting = False
    for event in events:
        if event["type"] == "searching":
            waiting = True
        elif event["type"] in ("agent_joined", "no_agent_available", "closed"):
            waiting = False
    return waiting


def _audit_room(name: str, messages: list[dict[str, Any]], bot: str) -> list[str]:
    problems = []
    tokens: Counter[str] = Counter()
    headers = 0
    for message in messages:
        if message.get("user") != bot:
            continue
        tokens.update(_CUSTOMER_TOKEN.findall(message.get("text") or ""))
        actions = [
            e.get("action_id")
            for b in message.get("blocks") or ()
            if b.get("type") == "actions"
            for e in b.get("elements", ())
        ]
        headers += "takeover_end" in actions
    problems += [f"#{name}: {t} posted {n} times" for t, n in tokens.items() if n > 1]
    if headers > 1:
        problems.append(f"#{name}: {headers} headers")
    return problems


def _takeover_of(message: dict[str, Any]) -> str | None:
    """The takeover a room header names (its metadata), else None."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != "takeover_room":
        return None
    takeover = (metadata.get("event_payload") or {}).get("takeover_id")
    return takeover if isinstance(takeover, str) else None


def _offer_id(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    offer = payload.get("offer_id")
    return offer if isinstance(offer, str) else None
