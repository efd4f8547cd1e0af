"""Bad input never crashes the emulator: any arguments to any method get a Slack answer, not a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import Emulator, EmulatorConfig
from emulator.web_api import HANDLERS
from tests.emulator.conftest import AGENTS

KEYS = [
    "channel", "text", "blocks", "ts", "users", "user", "name", "is_private", "limit", "cursor",
    "latest", "oldest", "inclusive", "timestamp", "presence", "metadata", "attachments", "thread_ts",
    "return_im", "include_all_metadata", "types", "view", "user_id", "topic", "username", "icon_url",
]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
form_bodies = st.dictionaries(st.sampled_from(KEYS), st.text(max_size=40), max_size=6)

emulator = Emulator(EmulatorConfig(agents=AGENTS))


def check(response: httpx.Response) -> None:
    assert response.status_code in (200, 404), response.text
    body = response.json()
    assert isinstance(body["ok"], bool)
    assert body["ok"] or isinstance(body["error"], str)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(sorted(HANDLERS)), body=bodies, as_user=st.booleans())
async def test_json_bodies_get_slack_answers(
    method: str, body: dict[str, Any], as_user: bool
) -> None:
    token = emulator.workspace.humans()[0].token if as_user else emulator.credentials.bot_token
    if method == "apps.connections.open":
        token = emulator.credentials.app_token
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
        check(
            await http.post(
                f"/api/{method}",
                content=json.dumps(body),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        )


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(sorted(HANDLERS)), body=form_bodies)
async def test_form_bodies_get_slack_answers(method: str, body: dict[str, str]) -> None:
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
        check(
            await http.post(
                f"/api/{method}", data={**body, "token": emulator.credentials.bot_token}
            )
        )


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["/_emu/click", "/_emu/command", "/_emu/users", "/_emu/app"]), body=values
)
async def test_emu_routes_refuse_bad_bodies_cleanly(path: str, body: Any) -> None:
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
        response = await http.post(path, content=json.dumps(body))
        assert response.status_code in (200, 400, 403, 404, 409), response.text
        assert "ok" in response.json() or "bot_token" in response.json()
