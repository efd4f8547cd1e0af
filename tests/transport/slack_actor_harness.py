"""A Slack actor wired to a real, in-process emulator (port 0) and a fake domain, for the tests.

`slack_harness(nursery, mode=...)` starts the emulator, builds the `SlackActor` exactly as the
composition root does (a `SlackWebClient` on the emulator's API, the emulator's tokens) and
starts it on a command mailbox. The fake domain records every delivered fact in a channel the
test reads with `next_fact()`. Humans act through the emulator: their own user tokens on the
Web API, and the /_emu/ routes for what only Slack's UI can do (clicks, slash commands).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

import httpx
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from actors.ports import SlackCommand, SlackFact, TranscriptLine
from actors.runtime import Reply, ask
from actors.settings import SlackSettings
from emulator import AgentSeed, Emulator, EmulatorConfig
from transport.slack_actor import SlackActor
from transport.slack_backoff import Backoff
from transport.slack_rate import RateLimits
from transport.slack_web import RetryPolicy, SlackWebClient
from transport.slack_ws import WsPolicy

T = TypeVar("T")

AGENTS = (
    AgentSeed("alice", "Alice Moreau", "Support lead"),
    AgentSeed("bob", "Bob Okafor", "Support agent"),
)
FAST_RETRY = RetryPolicy(
    max_attempts=4, backoff=Backoff(0.01, 2.0, 0.1, 0.5), attempt_timeout_s=5.0
)


class FakeDomain:
    """Records delivered facts; `next_fact()` waits for the next one."""

    def __init__(self) -> None:
        self.facts: list[SlackFact] = []
        self._send, self._receive = trio.open_memory_channel[SlackFact](math.inf)

    async def deliver(self, fact: SlackFact) -> None:
        self.facts.append(fact)
        self._send.send_nowait(fact)

    async def next_fact(self) -> SlackFact:
        return await self._receive.receive()

    def pending(self) -> list[SlackFact]:
        out = []
        while True:
            try:
                out.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                return out


@dataclass
class Harness:
    emulator: Emulator
    base_url: str
    http: httpx.AsyncClient
    actor: SlackActor
    web: SlackWebClient
    commands: trio.MemorySendChannel[SlackCommand]
    domain: FakeDomain
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped: trio.Event = field(default_factory=trio.Event)

    def id(self, name: str) -> str:
        return str(self.users[name]["id"])

    sent: int = 0

    async def send(self, command: SlackCommand) -> None:
        self.sent += 1
        await self.commands.send(command)

    async def ask(self, make: Any) -> Any:
        self.sent += 1
        return await ask(self.commands, make)

    async def settle(self) -> None:
        """Wait until every command sent so far has been executed."""
        await self.actor.wait_commands_finished(self.sent)

    async def until(self, check: Callable[[], Awaitable[T | None]]) -> T:
        """Wait (on the emulator's change feed, no polling loop) until `check()` gives a value."""
        while True:
            version = (await self.emu("GET", "/_emu/changes", params={"wait": 0}))["version"]
            value = await check()
            if value:
                return value
            await self.emu("GET", "/_emu/changes", params={"since": version, "wait": 10})

    async def emu(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, self.base_url + path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    async def messages(self, channel: str, user: str | None = None) -> list[dict[str, Any]]:
        params = {"channel": channel} | ({"user": user} if user else {})
        return (await self.emu("GET", "/_emu/messages", params=params))["messages"]

    async def channels(self) -> list[dict[str, Any]]:
        return (await self.emu("GET", "/_emu/channels"))["channels"]

    async def channel(self, channel_id: str) -> dict[str, Any]:
        return next(c for c in await self.channels() if c["id"] == channel_id)

    async def dm_of(self, name: str) -> dict[str, Any] | None:
        """The human's DM with the app, if it was opened."""
        user = self.id(name)
        bot = self.emulator.credentials.bot_user_id
        for c in await self.channels():
            if c["is_im"] and set(c["members"]) == {user, bot}:
                return c
        return None

    async def click(self, name: str, channel: str, ts: str, action_id: str) -> Any:
        body = {"user": self.id(name), "channel": channel, "ts": ts, "action_id": action_id}
        return await self.emu("POST", "/_emu/click", json=body)

    async def command(self, name: str, channel: str, command: str, text: str = "") -> Any:
        body = {"user": self.id(name), "channel": channel, "command": command, "text": text}
        return await self.emu("POST", "/_emu/command", json=body)

    async def api_as(self, who: str, method: str, /, **args: Any) -> dict[str, Any]:
        """A Web API call with a human's own user token."""
        token = self.users[who]["token"]
        response = await self.http.post(
            f"{self.base_url}/api/{method}", data=args, headers={"Authorization": f"Bearer {token}"}
        )
        answer: dict[str, Any] = response.json()
        assert answer.get("ok"), answer
        return answer


def line(
    speaker: Literal["customer", "bot", "agent"], text: str, at: float = 1.7e9
) -> TranscriptLine:
    names = {"customer": ("c1", "Carol"), "bot": ("bot", "Bot"), "agent": ("U0", "Agent")}
    author_id, name = names[speaker]
    return TranscriptLine(speaker, author_id, name, text, at)


async def serve_routes(
    routes: list[BaseRoute], *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve `routes` on 127.0.0.1, port 0, as the daemon's public HTTP server would."""
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, Starlette(routes=routes), config))  # type: ignore[arg-type]
        task_status.started(binds[0])


@asynccontextmanager
async def slack_harness(
    *,
    mode: Literal["emulator", "socket", "rtm", "events"] = "emulator",
    agents: Sequence[str] | None = (),
    config: EmulatorConfig | None = None,
    poll_interval_s: float = 3600.0,
    presence_min_gap_s: float = 0.0,
    room_prefix: str = "swivl_user_",
    max_commands: int = 1_000,
) -> AsyncIterator[Harness]:
    emulator = Emulator(config or EmulatorConfig(agents=AGENTS))
    # Cleanup order matters: nothing may await inside a cancelled scope while an exception of
    # the test is on its way out, or trio's Cancelled would replace (and hide) it.
    async with httpx.AsyncClient(timeout=5) as http:
        async with trio.open_nursery() as nursery:
            base_url = await nursery.start(emulator.run)
            creds = emulator.credentials
            answer = (await http.get(base_url + "/_emu/users")).json()
            users = {u["name"]: u for u in answer["users"]}
            settings = SlackSettings(
                mode=mode,
                bot_token=creds.bot_token,
                app_token=creds.app_token,
                signing_secret=creds.signing_secret,
                api_url=base_url + "/api/",
                room_prefix=room_prefix,
            )
            web = SlackWebClient(
                creds.bot_token,
                api_url=settings.api_url,
                rate_limits=RateLimits.off(),
                retry=FAST_RETRY,
            )
            domain = FakeDomain()
            pool = [users[n]["id"] for n in users] if agents is None else list(agents)
            actor = SlackActor(
                web,
                settings,
                domain_deliver=domain.deliver,
                agents=pool,
                presence_poll_interval_s=poll_interval_s,
                presence_min_gap_s=presence_min_gap_s,
                ws_policy=WsPolicy(backoff=Backoff(0.05, 2.0, 0.5, 0.5)),
                post_pause_s=0.05,
                max_commands=max_commands,
            )
            send, receive = trio.open_memory_channel[SlackCommand](100)
            harness = Harness(emulator, base_url, http, actor, web, send, domain, users)

            async def run_actor(*, task_status: trio.TaskStatus[None]) -> None:
                await actor.run(receive, task_status=task_status)
                harness.stopped.set()

            await nursery.start(run_actor)
            if mode == "events":
                app_url = await nursery.start(serve_routes, actor.http_routes())
                targets = {
                    f"{kind}_url": f"{app_url}/slack/{kind}"
                    for kind in ("events", "interactivity", "commands")
                }
                assert (await http.post(base_url + "/_emu/app", json=targets)).status_code == 200
            try:
                yield harness
            finally:
                nursery.cancel_scope.cancel()
        await web.aclose()


__all__ = ["AGENTS", "FakeDomain", "Harness", "Reply", "line", "slack_harness"]
