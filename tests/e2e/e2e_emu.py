"""The Slack emulator as the end-to-end tests see it: inspection, people acting, chaos knobs.

Owns `Emu`, a client of the emulator's `/_emu/` routes and of its Web API with a user's own
token: what Slack stored (`/_emu/channels`, `/_emu/messages`), what only Slack's UI does
(clicks, slash commands), what agents do with their tokens (post, set presence), and the fault
knobs. Waiting is on the emulator's change feed (`/_emu/changes`), never a sleep.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import httpx
import trio

__all__ = ["PREFIX", "Emu", "has_buttons", "room_lines"]

T = TypeVar("T")
PREFIX = "swivl_user_"
INJECTED_ERROR = "fatal_error"  # what the emulator's `fail` knob answers (its default)


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

    async def try_click(self, user: str, message: dict[str, Any], action_id: str) -> bool:
        """Click unless the button has gone meanwhile (the app updated the message)."""
        body = {"user": user, "channel": message["channel"], "ts": message["ts"]}
        answer = await self.http.post(
            self.url + "/_emu/click", json=body | {"action_id": action_id}
        )
        if answer.status_code == 404 and answer.json()["error"] == "action_not_found":
            return False
        assert answer.status_code == 200, answer.text
        return True

    async def command(self, user: str, channel: str, command: str, text: str = "") -> Any:
        body = {"user": user, "channel": channel, "command": command, "text": text}
        return await self.post("/_emu/command", body)

    async def say(self, token: str, channel: str, text: str) -> str:
        """Post as a user, with their own token (chat.postMessage); the message's ts.

        Like Slack's own client, it waits out a 429 (`Retry-After`) and sends again after an
        injected failure (the fault knob answers those without posting anything)."""
        for _ in range(50):
            answer = await self.http.post(
                self.url + "/api/chat.postMessage",
                headers={"Authorization": f"Bearer {token}"},
                json={"channel": channel, "text": text},
            )
            if answer.status_code == 429:
                await trio.sleep(float(answer.headers["Retry-After"]))
                continue
            body = answer.json()
            if answer.status_code >= 500 or body.get("error") == INJECTED_ERROR:
                continue
            assert body["ok"], body
            return str(body["ts"])
        raise AssertionError(f"chat.postMessage kept failing in {channel}")

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
