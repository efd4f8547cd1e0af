"""The ASGI front answers Web API calls exactly as the Starlette route does, and hands the rest on."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from emulator import Emulator, EmulatorConfig
from tests.emulator.conftest import AGENTS


def _emulator() -> Emulator:
    return Emulator(EmulatorConfig(agents=AGENTS))


async def _call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator:1234") as http:
        return await http.request(method, path, **kwargs)


def _shape(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    wanted = ("content-type", "content-length", "retry-after")
    return (
        response.status_code,
        response.content,
        {k: v for k, v in response.headers.items() if k in wanted},
    )


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/auth.test", {"headers": {"Authorization": "Bearer BOT"}}),
    ("GET", "/api/auth.test?token=BOT", {}),
    ("GET", "/api/auth.test?token=nope", {}),
    ("POST", "/api/auth.test", {}),
    ("POST", "/api/no.such_method", {"headers": {"Authorization": "Bearer BOT"}}),
    (
        "POST",
        "/api/chat.postMessage",
        {"headers": {"Authorization": "Bearer BOT"}, "json": {"channel": "nowhere", "text": "x"}},
    ),
    ("POST", "/api/chat.postMessage", {"data": {"token": "BOT", "channel": "general"}}),
    (
        "POST",
        "/api/chat.postMessage",
        {
            "headers": {"Authorization": "Bearer BOT", "Content-Type": "application/json"},
            "content": b"{",
        },
    ),
    (
        "POST",
        "/api/users.list",
        {"headers": {"Authorization": "Bearer BOT", "Content-Type": "image/png"}},
    ),
    ("GET", "/api/users.info?token=BOT&user=U00000099&user=nobody", {}),
    ("PUT", "/api/auth.test", {}),
    ("HEAD", "/api/auth.test?token=BOT", {}),
    ("GET", "/api/auth.test/more", {}),
    ("GET", "/api/", {}),
]


@pytest.mark.parametrize(("verb", "path", "kwargs"), REQUESTS)
async def test_front_answers_as_starlette_does(
    verb: str, path: str, kwargs: dict[str, Any]
) -> None:
    answers = []
    for app_of in (lambda e: e.app, lambda e: e.starlette):
        emulator = _emulator()  # two identical workspaces: same ids, fresh state
        token = emulator.credentials.bot_token
        path_ = path.replace("BOT", token)
        kw = json.loads(json.dumps(kwargs, default=lambda b: b.decode()).replace("BOT", token))
        if "content" in kw:
            kw["content"] = kw["content"].encode()
        answers.append(_shape(await _call(app_of(emulator), verb, path_, **kw)))
    assert answers[0] == answers[1]


async def test_links_point_where_the_client_called() -> None:
    emulator = _emulator()
    agent = emulator.workspace.humans()[0]
    answer = await _call(
        emulator.app, "POST", "/api/rtm.connect", headers={"Authorization": f"Bearer {agent.token}"}
    )
    assert answer.json()["url"].startswith("ws://emulator:1234/rtm/?ticket=")
    opened = await _call(
        emulator.app,
        "POST",
        "/api/apps.connections.open",
        headers={"Authorization": f"Bearer {emulator.credentials.app_token}"},
    )
    assert opened.json()["url"].startswith("ws://emulator:1234/link/?ticket=")


async def test_forced_rate_limit_keeps_retry_after() -> None:
    emulator = _emulator()
    set_fault = await _call(
        emulator.app, "POST", "/_emu/faults", json={"ratelimit": {"count": 1, "retry_after": 7}}
    )
    assert set_fault.status_code == 200
    token = emulator.credentials.bot_token
    limited = await _call(
        emulator.app, "POST", "/api/auth.test", headers={"Authorization": f"Bearer {token}"}
    )
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    assert limited.json() == {"ok": False, "error": "ratelimited"}
    again = await _call(
        emulator.app, "POST", "/api/auth.test", headers={"Authorization": f"Bearer {token}"}
    )
    assert again.status_code == 200 and again.json()["ok"] is True
