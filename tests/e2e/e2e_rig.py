"""The end-to-end rig: the whole daemon and the Slack emulator in the test's trio run.

Owns `running_stack` (starts the emulator, then `daemon.serve` pointed at it in one of Slack's
modes, and stops both), `Emu` (the emulator's `/_emu/` and Web API routes, as Slack's UI and an
agent's own token would use them) and `Customer` (the customer API: sessions, messages, events).

Both servers live in the test's trio run, so under the autojump `MockClock` every timer of both
(offer deadlines, presence polls, rate-tier refills, Socket Mode redelivery, backoff) runs on
virtual time while the HTTP and WebSocket traffic between them is real loopback I/O. Waiting is
never a sleep: the emulator's change feed (`/_emu/changes`) and the customer API's long poll
wake the test as soon as something happened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import trio

import daemon
from actors.settings import parse_settings
from emulator import AgentSeed, Emulator, EmulatorConfig

__all__ = ["AGENTS", "Customer", "Emu", "Mode", "Stack", "running_stack"]

T = TypeVar("T")
Mode = Literal["emulator", "socket", "rtm", "events", "rtm-http"]
"""`rtm-http`: a classic app without an app token: RTM for messages and presence, clicks and
slash commands over the signed HTTP routes."""
ROOT = Path(__file__).resolve().parents[2]
PREFIX = "swivl_user_"
PRESENCE_GAP_S = 1.5  # the Slack actor's first presence round: one agent every 1.5 s
AGENTS = (
    AgentSeed("alice", "Alice Moreau", "Support lead"),
    AgentSeed("bob", "Bob Okafor", "Support agent"),
    AgentSeed("chloe", "Chloe Lindqvist", "Support agent"),
)


class Emu:
    """The emulator seen from outside: inspection, what only Slack's UI does, chaos knobs."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http, self.url = http, url
        self.version = 0

    async def get(self, path: str, **params: str) -> Any:
        answer = await self.http.get(self.url + path, params=params)
        answer.raise_for_status()
        return answer.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        answer = await self.http.post(self.url + path, json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def until(self, find: Callable[[], Awaitable[T | None]]) -> T:
        """`find()` once it is not None, re-checked whenever the workspace changes."""
        while (found := await find()) is None:
            changes = await self.get("/_emu/changes", since=str(self.version), wait="30")
            self.version = changes["version"]
        return found

    # --- inspection -------------------------------------------------------------------------

    async def users(self) -> dict[str, dict[str, Any]]:
        """The humans by name."""
        return {u["name"]: u for u in (await self.get("/_emu/users"))["users"]}

    async def channels(self) -> list[dict[str, Any]]:
        return list((await self.get("/_emu/channels"))["channels"])

    async def channel(self, channel_id: str) -> dict[str, Any]:
        return next(c for c in await self.channels() if c["id"] == channel_id)

    async def messages(self, channel: str, user: str | None = None) -> list[dict[str, Any]]:
        params = {"channel": channel} | ({"user": user} if user else {})
        return list((await self.get("/_emu/messages", **params))["messages"])

    async def dm(self, user_id: str) -> str | None:
        """The DM channel between the app and this user, once the app has opened it."""
        for c in await self.channels():
            if c["is_im"] and user_id in c["members"]:
                return str(c["id"])
        return None

    async def offers(self, user_id: str) -> list[dict[str, Any]]:
        """The offer DMs this user got, oldest first (as they read now: updates applied)."""
        channel = await self.dm(user_id)
        if channel is None:
            return []
        return [
            m | {"channel": channel}
            for m in await self.messages(channel)
            if "offer" in str(m.get("metadata", "")) or "offer_" in str(m.get("blocks", ""))
        ]

    async def wait_offer(self, user_id: str, number: int = 1) -> dict[str, Any]:
        """This user's `number`th offer DM, once it has arrived with its buttons."""

        async def find() -> dict[str, Any] | None:
            offers = await self.offers(user_id)
            if len(offers) >= number and has_buttons(offers[number - 1]):
                return offers[number - 1]
            return None

        return await self.until(find)

    async def wait_resolved(self, user_id: str, number: int = 1) -> dict[str, Any]:
        """This user's `number`th offer DM once updated with its outcome (buttons gone)."""

        async def find() -> dict[str, Any] | None:
            offers = await self.offers(user_id)
            if len(offers) >= number and not has_buttons(offers[number - 1]):
                return offers[number - 1]
            return None

        return await self.until(find)

    async def rooms(self) -> list[dict[str, Any]]:
        return [c for c in await self.channels() if c["name"].startswith(PREFIX)]

    async def wait_room(self, name: str) -> dict[str, Any]:
        """The room of that name once its header is pinned."""

        async def find() -> dict[str, Any] | None:
            for c in await self.rooms():
                if c["name"] == name and c["pins"]:
                    return c
            return None

        return await self.until(find)

    async def wait_archived(self, channel_id: str) -> dict[str, Any]:
        async def find() -> dict[str, Any] | None:
            c = await self.channel(channel_id)
            return c if c["is_archived"] else None

        return await self.until(find)

    async def wait_messages(
        self, channel: str, done: Callable[[list[dict[str, Any]]], bool]
    ) -> list[dict[str, Any]]:
        async def find() -> list[dict[str, Any]] | None:
            messages = await self.messages(channel)
            return messages if done(messages) else None

        return await self.until(find)

    # --- what people do in Slack -------------------------------------------------------------

    async def click(self, user: str, message: dict[str, Any], action_id: str) -> Any:
        body = {"user": user, "channel": message["channel"], "ts": message["ts"]}
        return await self.post("/_emu/click", body | {"action_id": action_id})

    async def command(self, user: str, channel: str, command: str, text: str = "") -> Any:
        body = {"user": user, "channel": channel, "command": command, "text": text}
        return await self.post("/_emu/command", body)

    async def say(self, token: str, channel: str, text: str) -> str:
        """Post as a user, with their own token (chat.postMessage); the message's ts."""
        answer = await self.http.post(
            self.url + "/api/chat.postMessage",
            headers={"Authorization": f"Bearer {token}"},
            json={"channel": channel, "text": text},
        )
        body = answer.json()
        assert body["ok"], body
        return str(body["ts"])

    async def set_presence(self, token: str, presence: Literal["auto", "away"]) -> None:
        answer = await self.http.post(
            self.url + "/api/users.setPresence",
            headers={"Authorization": f"Bearer {token}"},
            data={"presence": presence},
        )
        assert answer.json()["ok"], answer.text

    async def faults(self, **knobs: Any) -> Any:
        return await self.post("/_emu/faults", knobs)

    async def stats(self) -> Any:
        return await self.get("/_emu/stats")


def has_buttons(message: dict[str, Any]) -> bool:
    return "offer_accept" in str(message.get("blocks", ""))


def room_lines(messages: list[dict[str, Any]], suffix: str) -> list[str]:
    """The lines of the app's posts made in a speaker's name ending with `suffix`
    (e.g. "(customer)"), in order: one post may hold several consecutive lines."""
    return [
        line
        for m in messages
        if str(m.get("username", "")).endswith(suffix)
        for line in m["text"].split("\n")
    ]


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
    **sections: dict[str, Any],
) -> AsyncIterator[Stack]:
    """The emulator and the daemon, in `mode`; `sections` override settings keys.

    `emulator` mode lets the daemon start the bundled emulator itself; the other modes run the
    emulator here and point the daemon at it with its tokens and its users as the agent pool
    (events mode: the emulator posts to the daemon's /slack/* routes). On exit the daemon is
    stopped and drains (as on SIGTERM), then the emulator stops.
    """
    stop = trio.Event()
    journal = tmp_path / "journal"
    async with httpx.AsyncClient(timeout=60) as http, trio.open_nursery() as outer:
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
            slack = {
                "mode": "rtm" if mode == "rtm-http" else mode,
                "api_url": emu_url + "/api/",
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
            try:
                yield stack
            finally:
                stop.set()  # daemon.serve drains and returns, ending the inner nursery
        outer.cancel_scope.cancel()  # the emulator (other modes)
