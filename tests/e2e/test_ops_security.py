"""Security through the daemon's public surfaces (design §2.6-§2.8, §4.3; issue 8):

- customer session tokens are unguessable, bound to their session, and never stored (the journal
  holds only their digest);
- only a room's members are relayed to the customer: Slack refuses a non-member's post in the
  private room, and talk in other channels is not relayed;
- only room members may end a takeover, even when a signed request claims otherwise;
- limits where input enters: text length, body size and message rate on the customer API,
  body size on the Slack endpoints.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from trio.testing import MockClock

from tests.e2e.ops_stack import OpsStack, ops_stack
from transport.slack_signature import slack_signature

TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43,}$")


async def _events(stack: OpsStack, session: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    answer = await stack.http.get(f"{stack.chat}/api/sessions/{session}/events", headers=auth)
    assert answer.status_code == 200
    return list(answer.json()["events"])


async def _taken_over(stack: OpsStack) -> tuple[str, dict[str, str], str, str]:
    """A customer whose escalation an agent accepted: (session, auth, agent id, room id)."""
    session, auth = await stack.session("I want a human")

    async def offer() -> tuple[str, dict[str, Any]] | None:
        for info in stack.agents.values():
            dm = await stack.dm(info["id"])
            for m in await stack.messages(dm) if dm else []:
                if "offer_accept" in str(m.get("blocks")):
                    return info["id"], m | {"channel": dm}
        return None

    agent, message = await stack.until(offer)
    await stack.emu_post(
        "/_emu/click",
        {
            "user": agent,
            "channel": message["channel"],
            "ts": message["ts"],
            "action_id": "offer_accept",
        },
    )

    async def room() -> str | None:
        for c in (await stack.emu_get("/_emu/channels"))["channels"]:
            if c["name"].startswith("swivl_user_") and c["pins"] and not c["is_archived"]:
                return str(c["id"])
        return None

    room_id = await stack.until(room)

    async def joined() -> bool | None:
        kinds = [e["type"] for e in await _events(stack, session, auth)]
        return True if "agent_joined" in kinds else None

    await stack.until(joined)
    return session, auth, agent, room_id


async def _post(stack: OpsStack, token: str, channel: str, text: str) -> dict[str, Any]:
    answer = await stack.http.post(
        stack.emu + "/api/chat.postMessage",
        data={"channel": channel, "text": text},
        headers={"Authorization": f"Bearer {token}"},
    )
    return dict(answer.json())


async def test_session_tokens_are_unguessable_bound_and_never_stored(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    async with ops_stack("emulator", tmp_path) as stack:
        opened = [
            (await stack.http.post(stack.chat + "/api/sessions", json={})).json() for _ in range(30)
        ]
        tokens = [o["token"] for o in opened]
        assert len(set(tokens)) == len(tokens) and all(TOKEN_SHAPE.match(t) for t in tokens)
        first, second = opened[0], opened[1]
        url = f"{stack.chat}/api/sessions/{first['session_id']}/messages"
        wrong_end = first["token"][:-1] + ("A" if first["token"][-1] != "A" else "B")
        for header in (
            f"Bearer {second['token']}",
            f"Bearer {wrong_end}",
            "Bearer",
            first["token"],
        ):
            refused = await stack.http.post(
                url, json={"text": "hi"}, headers={"Authorization": header}
            )
            assert refused.status_code == 401 and refused.json()["error"]
        ok = await stack.http.post(
            url, json={"text": "hi"}, headers={"Authorization": f"Bearer {first['token']}"}
        )
        assert ok.status_code == 202
    stored = b"".join(p.read_bytes() for p in (tmp_path / "journal").iterdir() if p.is_file())
    assert stored and not any(t.encode() in stored for t in tokens)


async def test_only_room_members_are_relayed(tmp_path: Path, e2e_clock: MockClock) -> None:
    async with ops_stack("emulator", tmp_path) as stack:
        session, auth, agent, room = await _taken_over(stack)
        outsider = next(info for info in stack.agents.values() if info["id"] != agent)
        refused = await _post(stack, outsider["token"], room, "let me in")
        # a private room is not even visible to a non-member
        assert refused["ok"] is False and refused["error"] in (
            "not_in_channel",
            "channel_not_found",
        )
        general = next(
            c["id"]
            for c in (await stack.emu_get("/_emu/channels"))["channels"]
            if c["name"] == "general"
        )
        member = next(info for info in stack.agents.values() if info["id"] == agent)
        assert (await _post(stack, member["token"], general, "chatter elsewhere"))["ok"]
        assert (await _post(stack, member["token"], room, "hello from your agent"))["ok"]

        async def relayed() -> list[str] | None:
            texts = [
                e.get("text")
                for e in await _events(stack, session, auth)
                if e["type"] == "agent_message"
            ]
            return texts or None

        assert await stack.until(relayed) == ["hello from your agent"]


async def test_a_signed_end_request_from_a_non_member_is_refused(
    tmp_path: Path, e2e_clock: MockClock
) -> None:
    async with ops_stack("events", tmp_path) as stack:
        session, auth, agent, room = await _taken_over(stack)
        outsider = next(info for info in stack.agents.values() if info["id"] != agent)
        body = urlencode(
            {"command": "/end-takeover", "user_id": outsider["id"], "channel_id": room, "text": ""}
        ).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack_signature(stack.signing_secret, stamp, body),
        }
        answer = await stack.http.post(
            stack.chat + "/slack/commands", content=body, headers=headers
        )
        assert answer.status_code == 200  # authentic (signed), so queued; then refused

        async def told() -> bool | None:
            dm = await stack.dm(outsider["id"])
            texts = [m["text"] for m in await stack.messages(dm)] if dm else []
            return True if any("Only room members" in t for t in texts) else None

        await stack.until(told)
        kinds = [e["type"] for e in await _events(stack, session, auth)]
        assert "agent_left" not in kinds
        channel = next(
            c for c in (await stack.emu_get("/_emu/channels"))["channels"] if c["id"] == room
        )
        assert not channel["is_archived"]


async def test_limits_where_input_enters(tmp_path: Path, e2e_clock: MockClock) -> None:
    http_limits = {"max_text_chars": 100, "max_body_bytes": 1024, "messages_per_minute": 5}
    async with ops_stack("events", tmp_path, http=http_limits) as stack:
        session, auth = await stack.session()
        url = f"{stack.chat}/api/sessions/{session}/messages"
        too_long = await stack.http.post(url, json={"text": "x" * 101}, headers=auth)
        assert too_long.status_code == 413 and too_long.json()["error"] == "text_too_long"
        too_big = await stack.http.post(
            url, content=json.dumps({"text": "y", "pad": "z" * 2000}), headers=auth
        )
        assert too_big.status_code == 413
        statuses = [
            (await stack.http.post(url, json={"text": f"m{n}"}, headers=auth)).status_code
            for n in range(6)
        ]
        assert statuses == [202] * 5 + [429]
        huge = b"{" + b" " * 1_100_000 + b"}"
        slack = await stack.http.post(
            stack.chat + "/slack/events", content=huge, headers={"Content-Type": "application/json"}
        )
        assert slack.status_code == 413
