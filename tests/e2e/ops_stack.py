"""A whole daemon (`daemon.serve`) and the Slack emulator in the test's trio run, for the
operations tests: App Home, `/takeover-stats`, health, metrics, and Events API fuzzing.

`ops_stack("emulator", ...)` lets the daemon start its bundled emulator; `ops_stack("events",
...)` runs the emulator here and points the daemon at it in Events API mode (the emulator posts
to the daemon's signed /slack/* routes). Waiting is never a sleep: the emulator's change feed
and the customer API's long poll wake the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
import trio

import daemon
from actors.settings import parse_settings
from emulator import AgentSeed, Emulator, EmulatorConfig

__all__ = ["OpsStack", "ops_stack"]

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 900.0  # a hard cap on each test, in trio's (virtual, under autojump) seconds
AGENTS = (AgentSeed("alice", "Alice Moreau", "Lead"), AgentSeed("bob", "Bob Okafor", "Agent"))


@dataclass
class OpsStack:
    http: httpx.AsyncClient
    chat: str
    emu: str
    agents: dict[str, dict[str, Any]]  # by name: id, token, ...
    signing_secret: str
    version: int = 0

    async def emu_get(self, path: str, **params: str) -> Any:
        answer = await self.http.get(self.emu + path, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def emu_post(self, path: str, body: dict[str, Any]) -> Any:
        answer = await self.http.post(self.emu + path, json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def until(self, find: Callable[[], Awaitable[T | None]]) -> T:
        """`find()` once it is not None, re-checked whenever the workspace changes."""
        while (found := await find()) is None:
            changes = await self.emu_get("/_emu/changes", since=str(self.version), wait="30")
            self.version = changes["version"]
        return found

    async def dm(self, user_id: str) -> str | None:
        for c in (await self.emu_get("/_emu/channels"))["channels"]:
            if c["is_im"] and user_id in c["members"]:
                return str(c["id"])
        return None

    async def messages(self, channel: str, user: str | None = None) -> list[dict[str, Any]]:
        params = {"channel": channel} | ({"user": user} if user else {})
        return list((await self.emu_get("/_emu/messages", **params))["messages"])

    async def home(self, user_id: str) -> dict[str, Any]:
        return dict(await self.emu_get("/_emu/home", user=user_id))

    async def stats(self, name: str) -> dict[str, Any]:
        agents = (await self.http.get(self.chat + "/api/stats")).json()["agents"]
        return dict(next(a for a in agents if a["id"] == self.agents[name]["id"]))

    async def session(self, text: str | None = None) -> tuple[str, dict[str, str]]:
        opened = (await self.http.post(self.chat + "/api/sessions", json={"name": "Ada"})).json()
        auth = {"Authorization": f"Bearer {opened['token']}"}
        if text is not None:
            said = await self.http.post(
                f"{self.chat}/api/sessions/{opened['session_id']}/messages",
                json={"text": text},
                headers=auth,
            )
            assert said.status_code == 202, said.text
        return opened["session_id"], auth


def _settings(mode: str, tmp_path: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "http": {"port": 0},
        "slack": {"mode": mode},
        "emulator": {
            "port": 0,
            "agents": [
                {"name": a.name, "real_name": a.real_name, "title": a.title} for a in AGENTS
            ],
        },
        "routing": {"offer_timeout_s": 30},
        "journal": {"path": str(tmp_path / "journal"), "fsync": "off"},
        "log": {"level": "info"},
    }
    for name, values in sections.items():
        data[name] = data.get(name, {}) | values
    return data


@asynccontextmanager
async def ops_stack(
    mode: Literal["emulator", "events"], tmp_path: Path, **sections: dict[str, Any]
) -> AsyncIterator[OpsStack]:
    stop = trio.Event()
    with trio.fail_after(DEADLINE_S):
        async with _stack(mode, tmp_path, stop, sections) as stack:
            yield stack


@asynccontextmanager
async def _stack(
    mode: Literal["emulator", "events"],
    tmp_path: Path,
    stop: trio.Event,
    sections: dict[str, dict[str, Any]],
) -> AsyncIterator[OpsStack]:
    async with httpx.AsyncClient(timeout=60) as http, trio.open_nursery() as outer:
        emu_url, secret = "", ""
        if mode == "events":
            emulator = Emulator(EmulatorConfig(agents=AGENTS))
            emu_url = str(await outer.start(emulator.run))
            creds = emulator.credentials
            secret = creds.signing_secret
            users = (await http.get(emu_url + "/_emu/users")).json()["users"]
            slack = {
                "api_url": emu_url + "/api/",
                "bot_token": creds.bot_token,
                "signing_secret": secret,
            }
            sections = {
                **sections,
                "slack": slack | sections.get("slack", {}),
                "routing": {"agents": [u["id"] for u in users]} | sections.get("routing", {}),
            }
        data = _settings(mode, tmp_path, **sections)
        async with trio.open_nursery() as inner:
            urls = await inner.start(daemon.serve, parse_settings(data), ROOT, stop)
            emu_url = urls.emulator or emu_url
            if mode == "events":
                chat = urls.chat
                await http.post(
                    emu_url + "/_emu/app",
                    json={
                        "events_url": chat + "/slack/events",
                        "interactivity_url": chat + "/slack/interactivity",
                        "commands_url": chat + "/slack/commands",
                    },
                )
            else:
                secret = (await http.get(emu_url + "/_emu/app")).json()["signing_secret"]
            users = (await http.get(emu_url + "/_emu/users")).json()["users"]
            stack = OpsStack(http, urls.chat, emu_url, {u["name"]: u for u in users}, secret)
            try:
                yield stack
            finally:
                stop.set()
        outer.cancel_scope.cancel()
