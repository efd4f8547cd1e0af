"""The end-to-end rig: the whole daemon and the Slack emulator in the test's trio run.

Owns `running_stack` (starts the emulator, then `daemon.serve` pointed at it in one of Slack's
modes, and stops both), `Stack` (what a test holds: both URLs, an `Emu` client, the agents) and
`Customer` (the customer API: sessions, messages, events by long poll).

Both servers live in the test's trio run, so under the `e2e_clock` (see conftest) every timer of
both (offer deadlines, presence polls, rate-tier refills, Socket Mode redelivery, backoff) runs
on virtual time while the HTTP and WebSocket traffic between them is real loopback I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import trio

import daemon
from actors.settings import parse_settings
from emulator import AgentSeed, Emulator, EmulatorConfig
from tests.e2e.e2e_emu import Emu
from tests.e2e.e2e_relay import SlackRelay

__all__ = ["AGENTS", "Customer", "Mode", "Stack", "running_stack"]

Mode = Literal["emulator", "socket", "rtm", "events", "rtm-http"]
"""`rtm-http`: a classic app without an app token: RTM for messages and presence, clicks and
slash commands over the signed HTTP routes."""
ROOT = Path(__file__).resolve().parents[2]
PRESENCE_GAP_S = 1.5  # the Slack actor's first presence round: one agent every 1.5 s
AGENTS = (
    AgentSeed("alice", "Alice Moreau", "Support lead"),
    AgentSeed("bob", "Bob Okafor", "Support agent"),
    AgentSeed("chloe", "Chloe Lindqvist", "Support agent"),
)


@dataclass
class Customer:
    """One customer session over the customer API."""

    http: httpx.AsyncClient
    chat: str
    session_id: str
    customer_id: str
    token: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def say(self, text: str) -> int:
        answer = await self.http.post(
            f"{self.chat}/api/sessions/{self.session_id}/messages",
            headers=self._auth,
            json={"text": text},
        )
        assert answer.status_code == 202, answer.text
        return int(answer.json()["seq"])

    async def close(self) -> None:
        answer = await self.http.post(
            f"{self.chat}/api/sessions/{self.session_id}/close", headers=self._auth
        )
        assert answer.status_code == 200, answer.text

    async def poll(self, wait: float = 25.0) -> list[dict[str, Any]]:
        """New events (long poll from the last one seen), also kept in `seen`."""
        after = self.seen[-1]["seq"] if self.seen else 0
        answer = await self.http.get(
            f"{self.chat}/api/sessions/{self.session_id}/events",
            headers=self._auth,
            params={"after": str(after), "wait": str(wait)},
        )
        assert answer.status_code == 200, answer.text
        events: list[dict[str, Any]] = answer.json()["events"]
        self.seen += events
        return events

    async def wait_for(self, kind: str, count: int = 1) -> dict[str, Any]:
        """The `count`th event of `kind`, waiting for it."""
        while True:
            found = [e for e in self.seen if e["type"] == kind]
            if len(found) >= count:
                return found[count - 1]
            await self.poll()

    def count(self, kind: str) -> int:
        return sum(e["type"] == kind for e in self.seen)

    def texts(self, kind: str) -> list[str]:
        return [e.get("text", "") for e in self.seen if e["type"] == kind]

    def types(self) -> list[str]:
        return [e["type"] for e in self.seen]


@dataclass
class Stack:
    """The running daemon and emulator, and clients for both."""

    mode: Mode
    http: httpx.AsyncClient
    chat: str
    emu: Emu
    agents: dict[str, dict[str, Any]]  # the emulator's humans by name: id, token, ...
    started_at: float = 0.0
    relay: SlackRelay | None = None

    async def customer(self, customer_id: str | None = None, name: str = "Ada") -> Customer:
        body: dict[str, Any] = {"name": name} | (
            {"customer_id": customer_id} if customer_id else {}
        )
        answer = await self.http.post(f"{self.chat}/api/sessions", json=body)
        assert answer.status_code == 201, answer.text
        opened = answer.json()
        return Customer(
            self.http, self.chat, opened["session_id"], opened["customer_id"], opened["token"]
        )

    async def stats(self) -> Any:
        answer = await self.http.get(f"{self.chat}/api/stats")
        answer.raise_for_status()
        return answer.json()

    async def agent_stats(self, name: str) -> dict[str, Any]:
        agent_id = self.agents[name]["id"]
        return next(a for a in (await self.stats())["agents"] if a["id"] == agent_id)

    async def presence_known(self) -> None:
        """At the virtual time the first presence round is over, every agent is available.

        The daemon reads each agent's presence through Slack once it started, one agent every
        `PRESENCE_GAP_S` (socket and events modes poll users.getPresence; rtm mode polls once
        and follows presence_change): under the autojump clock that round ends at an exact
        virtual time, when every seeded (active) agent must be available."""
        await trio.sleep_until(self.started_at + PRESENCE_GAP_S * len(self.agents))
        ids = {a["id"] for a in self.agents.values()}
        available = {a["id"] for a in (await self.stats())["agents"] if a["available"]}
        assert ids <= available, (ids, available)


def settings_for(
    mode: Mode, journal: Path, agents: tuple[AgentSeed, ...], **sections: dict[str, Any]
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "http": {"port": 0},
        "slack": {"mode": mode},
        "emulator": {
            "port": 0,
            "agents": [
                {"name": a.name, "real_name": a.real_name, "title": a.title} for a in agents
            ],
        },
        "routing": {"offer_timeout_s": 30, "presence_poll_interval_s": 60},
        "journal": {"path": str(journal), "fsync": "off"},
        "log": {"level": "warning"},
    }
    for name, values in sections.items():
        data[name] = data.get(name, {}) | values
    return data


@asynccontextmanager
async def running_stack(
    mode: Mode,
    tmp_path: Path,
    *,
    rate_limits: bool = False,
    ack_timeout_s: float = 3.0,
    agents: tuple[AgentSeed, ...] = AGENTS,
    relay: bool = False,
    **sections: dict[str, Any],
) -> AsyncIterator[Stack]:
    """The emulator and the daemon, in `mode`; `sections` override settings keys.

    `emulator` mode lets the daemon start the bundled emulator itself; the other modes run the
    emulator here and point the daemon at it with its tokens and its users as the agent pool
    (events mode: the emulator posts to the daemon's /slack/* routes). `relay`: the daemon
    reaches the emulator through a `SlackRelay` (`stack.relay`) that can lose its acks. On exit
    the daemon is stopped and drains (as on SIGTERM), then the emulator stops.
    """
    stop = trio.Event()
    journal = tmp_path / "journal"
    # no pool limit: a rush of customers holds one long poll each, the agents must not queue
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
    async with (
        httpx.AsyncClient(timeout=60, limits=limits) as http,
        trio.open_nursery() as outer,
    ):
        if mode == "emulator":
            data = settings_for(mode, journal, agents, **sections)
            data["emulator"]["rate_limits"] = rate_limits
            emu_url = ""
        else:
            emulator = Emulator(
                EmulatorConfig(agents=agents, rate_limits=rate_limits, ack_timeout_s=ack_timeout_s)
            )
            emu_url = str(await outer.start(emulator.run))
            creds = emulator.credentials
            users = await Emu(http, emu_url).users()
            api_url = emu_url
            if relay:
                slack_relay = SlackRelay(http, emu_url)
                api_url = await outer.start(slack_relay.run)
            slack = {
                "mode": "rtm" if mode == "rtm-http" else mode,
                "api_url": api_url + "/api/",
                "bot_token": creds.bot_token,
                "app_token": "" if mode == "rtm-http" else creds.app_token,
                "signing_secret": creds.signing_secret,
            }
            routing = {"agents": [users[a.name]["id"] for a in agents]}
            sections = {
                **sections,
                "slack": slack | sections.get("slack", {}),
                "routing": routing | sections.get("routing", {}),
            }
            data = settings_for(mode, journal, agents, **sections)
        async with trio.open_nursery() as inner:
            started_at = trio.current_time()
            urls = await inner.start(daemon.serve, parse_settings(data), ROOT, stop)
            emu = Emu(http, urls.emulator or emu_url)
            if mode in ("events", "rtm-http"):
                await emu.post(
                    "/_emu/app",
                    {
                        "events_url": urls.chat + "/slack/events" if mode == "events" else None,
                        "interactivity_url": urls.chat + "/slack/interactivity",
                        "commands_url": urls.chat + "/slack/commands",
                    },
                )
            users = await emu.users()
            stack = Stack(mode, http, urls.chat, emu, {a.name: users[a.name] for a in agents})
            stack.started_at = started_at
            if relay:
                stack.relay = slack_relay
            try:
                yield stack
            finally:
                stop.set()  # daemon.serve drains and returns, ending the inner nursery
        outer.cancel_scope.cancel()  # the emulator (other modes)
