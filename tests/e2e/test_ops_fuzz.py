"""Fuzzing the whole daemon in Events API mode: random customer requests and random, malformed or
forged Slack requests into /slack/*, interleaved with customer messages.

Each example runs a fresh daemon (and emulator) under the e2e clock and sends a random batch:
customer messages (any unicode, empty, too long), Slack event callbacks, interactions and slash
commands shaped like Slack's but with wrong types, missing fields, huge or odd values, each one
signed correctly, not at all, badly or too late. Every answer must be a 2xx or a 4xx/503 with an
error body; afterwards the daemon is healthy, still answers, and every message it acknowledged
(202) is in its session's events with its seq and text.

CI runs a few examples; `--run-slow` runs many (`TAKEOVER_FUZZ_EXAMPLES`, default 300); see
docs/operations.md for the count of the last long run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from tests.e2e.ops_stack import OpsStack, ops_stack
from transport.slack_signature import slack_signature

LONG_RUN = int(os.environ.get("TAKEOVER_FUZZ_EXAMPLES", "300"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
odd_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "human", "<!channel> & <@U1>", "\u202e\u0000x", "🙂" * 50, "x" * 4_001]
    ),
)
ids = st.one_of(
    st.sampled_from(["ALICE", "BOB", "U0NOBODY", "C0NOWHERE", "D0NONE", ""]), json_values
)
actions = st.fixed_dictionaries(
    {
        "action_id": st.sampled_from(
            ["offer_accept", "offer_ignore", "takeover_end", "agent_available", "x"]
        )
        | json_values,
        "value": ids,
    }
)
events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["event_callback", "url_verification", "app_rate_limited"])
        | json_values,
        "event": st.fixed_dictionaries(
            {
                "type": st.sampled_from(["message", "app_home_opened", "presence_change"])
                | json_values
            },
            optional={
                "user": ids,
                "channel": ids,
                "text": odd_text | json_values,
                "ts": st.sampled_from(["1.0", "abc", ""]) | json_values,
                "subtype": st.sampled_from(["bot_message", "message_changed"]) | json_values,
                "tab": st.sampled_from(["home", "messages"]) | json_values,
                "presence": st.sampled_from(["active", "away"]) | json_values,
                "files": json_values,
            },
        )
        | json_values,
    },
    optional={"event_id": st.text(max_size=12) | json_values, "challenge": json_values},
)
interactions = st.fixed_dictionaries(
    {"type": st.sampled_from(["block_actions", "view_submission"]) | json_values},
    optional={
        "user": st.fixed_dictionaries({"id": ids}) | json_values,
        "actions": st.lists(actions, max_size=3) | json_values,
        "container": st.fixed_dictionaries({"channel_id": ids}) | json_values,
    },
)
commands = st.dictionaries(
    st.sampled_from(["command", "user_id", "channel_id", "text", "ssl_check"]),
    st.sampled_from(["/end-takeover", "/takeover-stats", "/x", "ALICE", "1"])
    | st.text(max_size=20),
)
slack_requests = st.one_of(
    st.tuples(st.just("events"), events | json_values | st.binary(max_size=64)),
    st.tuples(st.just("interactivity"), interactions | json_values | st.binary(max_size=64)),
    st.tuples(st.just("commands"), commands | st.binary(max_size=64)),
)
signing = st.sampled_from(["good", "good", "good", "none", "bad", "stale"])
steps = st.one_of(
    st.tuples(st.just("say"), odd_text),
    st.tuples(st.just("slack"), st.tuples(slack_requests, signing)),
    st.tuples(
        st.just("get"), st.sampled_from(["/healthz", "/api/stats", "/metrics", "/api/escalations"])
    ),
)

OK_SLACK = {200, 400, 401, 413, 503}


def _resolve(value: Any, stack: OpsStack) -> Any:
    """Put real agent ids where the strategy put their placeholders."""
    if isinstance(value, str):
        return {"ALICE": stack.agents["alice"]["id"], "BOB": stack.agents["bob"]["id"]}.get(
            value, value
        )
    if isinstance(value, dict):
        return {k: _resolve(v, stack) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, stack) for v in value]
    return value


def _body(route: str, payload: Any) -> tuple[bytes, str]:
    if isinstance(payload, bytes):
        return payload, "application/octet-stream"
    if route == "events":
        return json.dumps(payload).encode(), "application/json"
    if route == "interactivity":
        return urlencode(
            {"payload": json.dumps(payload)}
        ).encode(), "application/x-www-form-urlencoded"
    return urlencode(
        payload if isinstance(payload, dict) else {}
    ).encode(), "application/x-www-form-urlencoded"


async def _slack(stack: OpsStack, route: str, payload: Any, sign: str) -> None:
    body, kind = _body(route, _resolve(payload, stack))
    stamp = str(int(time.time()) - (600 if sign == "stale" else 0))
    headers = {"Content-Type": kind, "X-Slack-Request-Timestamp": stamp}
    if sign != "none":
        secret = stack.signing_secret if sign in ("good", "stale") else "not-the-secret"
        headers["X-Slack-Signature"] = slack_signature(secret, stamp, body)
    answer = await stack.http.post(f"{stack.chat}/slack/{route}", content=body, headers=headers)
    assert answer.status_code in OK_SLACK, (answer.status_code, answer.text)
    if sign != "good":
        assert answer.status_code in (401, 413)


async def _run(batch: list[tuple[str, Any]], tmp_path: Path) -> None:
    async with ops_stack("events", tmp_path) as stack:
        session, auth = await stack.session()
        acked: dict[int, str] = {}
        for kind, arg in batch:
            if kind == "say":
                answer = await stack.http.post(
                    f"{stack.chat}/api/sessions/{session}/messages",
                    json={"text": arg},
                    headers=auth,
                )
                if answer.status_code == 202:
                    acked[answer.json()["seq"]] = arg
                else:
                    assert answer.status_code in (400, 413, 429), answer.text
                    assert answer.json()["error"]
            elif kind == "slack":
                (route, payload), sign = arg
                await _slack(stack, route, payload, sign)
            else:
                answer = await stack.http.get(stack.chat + arg)
                assert answer.status_code == 200, (arg, answer.text)
        health = await stack.http.get(stack.chat + "/healthz")
        assert health.status_code == 200, health.text
        last = await stack.http.post(
            f"{stack.chat}/api/sessions/{session}/messages",
            json={"text": "still there?"},
            headers=auth,
        )
        assert last.status_code == 202
        acked[last.json()["seq"]] = "still there?"
        events = await stack.http.get(f"{stack.chat}/api/sessions/{session}/events", headers=auth)
        said = {
            e["seq"]: e.get("text")
            for e in events.json()["events"]
            if e["type"] == "customer_message"
        }
        assert {seq: said.get(seq) for seq in acked} == acked  # nothing acknowledged was lost


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@fuzz(10)
@given(batch=st.lists(steps, min_size=1, max_size=25))
async def test_random_input_never_crashes_the_daemon_nor_loses_a_message(
    batch: list[tuple[str, Any]], tmp_path_factory: pytest.TempPathFactory, e2e_clock: MockClock
) -> None:
    await _run(batch, tmp_path_factory.mktemp("fuzz"))


@pytest.mark.slow
@fuzz(LONG_RUN)
@given(batch=st.lists(steps, min_size=1, max_size=40))
async def test_long_fuzz_run(
    batch: list[tuple[str, Any]], tmp_path_factory: pytest.TempPathFactory, e2e_clock: MockClock
) -> None:
    await _run(batch, tmp_path_factory.mktemp("fuzz"))
