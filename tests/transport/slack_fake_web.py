"""A small in-memory Slack Web API for the transport tests, served through `httpx.MockTransport`.

It records every request with the virtual time it arrived, stores posted messages (with their
metadata, returned by conversations.history / replies only under ``include_all_metadata``), and
plays scripted faults per method: a status, a 429, a dropped connection, or a hang (optionally
after the post was stored, which is what makes a failure ambiguous).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import trio

WALL_CLOCK_START = 1_700_000_000.0


@dataclass(frozen=True, slots=True)
class Seen:
    at: float
    method: str
    params: dict[str, Any]
    headers: httpx.Headers
    content_type: str


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted answer: `kind` is status | ratelimited | hang | late | connect_error |
    read_error. `late` hangs too, but the message is stored `after` seconds later all the same
    (a slow Slack serving a request its client has given up on)."""

    kind: str
    status: int = 0
    retry_after: str | None = None
    store_first: bool = False
    body: bytes | None = None
    after: float = 0.0


@dataclass
class FakeSlackWeb:
    requests: list[Seen] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    wall: float = WALL_CLOCK_START
    _ts: int = 0

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def wall_clock(self) -> float:
        """Epoch seconds that follow trio's virtual clock, as Slack's would."""
        return self.wall + trio.current_time()

    def script(self, method: str, *faults: Fault) -> None:
        self.faults[method].extend(faults)

    def calls(self, method: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.method == method]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        ctype = request.headers.get("content-type", "")
        raw = request.content
        if ctype.startswith("application/json"):
            params = json.loads(raw) if raw else {}
        else:
            params = dict(parse_qsl(raw.decode()))
        self.requests.append(Seen(trio.current_time(), method, params, request.headers, ctype))
        queue = self.faults.get(method)
        fault = queue.popleft() if queue else None
        if fault is not None:
            if fault.store_first:
                self._answer(method, params)
            if fault.kind == "late":

                async def land() -> None:
                    await trio.sleep(fault.after)
                    self._answer(method, params)

                trio.lowlevel.spawn_system_task(land)
                await trio.sleep_forever()
            if fault.kind == "hang":
                await trio.sleep_forever()
            if fault.kind == "connect_error":
                raise httpx.ConnectError("connection refused", request=request)
            if fault.kind == "read_error":
                raise httpx.ReadError("connection reset by peer", request=request)
            if fault.kind == "ratelimited":
                headers = (
                    {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                )
                return httpx.Response(
                    429, headers=headers, json={"ok": False, "error": "ratelimited"}
                )
            body = fault.body if fault.body is not None else b"<html>bad gateway</html>"
            return httpx.Response(fault.status, content=body)
        return httpx.Response(200, json=self._answer(method, params))

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method in self.answers:
            return self.answers[method]
        if method == "conversations.open":  # a user's DM with the app: D + their id's tail
            return {"ok": True, "channel": {"id": "D" + str(params["users"])[1:]}}
        if method == "chat.postMessage":
            if str(params["channel"]).startswith("U"):  # to a user id: into their DM
                params = {**params, "channel": "D" + str(params["channel"])[1:]}
            self._ts += 1
            message = {
                "type": "message",
                "text": params.get("text", ""),
                "ts": f"{self.wall_clock():.6f}".split(".")[0] + f".{self._ts:06d}",
                "metadata": params.get("metadata"),
            }
            if "thread_ts" in params:
                message["thread_ts"] = params["thread_ts"]
            self.messages[params["channel"]].append(message)
            return {
                "ok": True,
                "channel": params["channel"],
                "ts": message["ts"],
                "message": message,
            }
        if method in ("conversations.history", "conversations.replies"):
            return self._history(params)
        return {"ok": True, "method": method, "echo": params}

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        if str(params["channel"]).startswith("U"):  # Slack reads history by conversation id only
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(params.get("oldest", "0"))
        with_metadata = str(params.get("include_all_metadata")).lower() == "true"
        found = [
            {k: v for k, v in m.items() if k != "metadata" or with_metadata}
            for m in reversed(self.messages[params["channel"]])
            if float(m["ts"]) >= oldest
        ]
        limit = int(params.get("limit", 100))
        start = int(params.get("cursor") or 0)
        page = found[start : start + limit]
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }


class FixedRandom:
    """A random source that always answers the same draw, so backoff delays are exact."""

    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value
