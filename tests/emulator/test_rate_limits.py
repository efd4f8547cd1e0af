"""Rate tiers: 429 + Retry-After as slack_sdk's RateLimitErrorRetryHandler expects; exact refill
times under the autojump clock; switching limits on and off at runtime."""

from __future__ import annotations

import time

import pytest
import trio
import trio.testing
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from emulator import EmulatorConfig
from emulator.rate_tiers import RateLimiter
from tests.emulator.conftest import AGENTS, InProcess, ThreadedEmulator


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(agents=AGENTS, rate_limits=True)


def test_slack_sdk_retry_handler_honours_retry_after(emulator_thread: ThreadedEmulator) -> None:
    creds = emulator_thread.emulator.credentials
    plain = emulator_thread.bot
    room = plain.conversations_create(name="busy", is_private=True)["channel"]["id"]
    for i in range(5):  # chat.postMessage allows a short burst, then one per second per channel
        plain.chat_postMessage(channel=room, text=f"burst {i}")
    with pytest.raises(SlackApiError) as refused:
        plain.chat_postMessage(channel=room, text="too fast")
    assert refused.value.response.status_code == 429
    assert refused.value.response["error"] == "ratelimited"
    assert refused.value.response.headers["Retry-After"] in ("1", ["1"])

    patient = WebClient(
        token=creds.bot_token,
        base_url=emulator_thread.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    # a 429 the handler must wait out (forced, so the test does not depend on the machine's speed)
    forced = {
        "rate_limits": False,
        "ratelimit": {"count": 1, "retry_after": 1, "methods": ["chat.postMessage"]},
    }
    emulator_thread.emu("POST", "/_emu/faults", json=forced)
    asked_at = time.time()
    posted = patient.chat_postMessage(channel=room, text="retried")
    assert float(posted["ts"]) - asked_at >= 1.0  # the handler waited Retry-After before retrying
    stats = emulator_thread.emu("GET", "/_emu/stats").json()["web_api"]
    assert stats["ratelimited"] == 2


async def test_tier_2_refills_one_call_every_3_seconds(
    running: InProcess, autojump_clock: trio.testing.MockClock
) -> None:
    token = running.emulator.credentials.bot_token
    with trio.fail_after(600):
        for _ in range(20):  # Tier 2: 20 per minute, burst allowed
            assert (await running.api("users.list", token)).status_code == 200
        refused = await running.api("users.list", token)
        assert (refused.status_code, refused.headers["Retry-After"], refused.json()) == (
            429,
            "3",
            {"ok": False, "error": "ratelimited"},
        )
        await trio.sleep(2.9)
        assert (await running.api("users.list", token)).status_code == 429
        await trio.sleep(0.1)
        assert (await running.api("users.list", token)).status_code == 200
        # other methods and other tokens have their own buckets
        assert (
            await running.api("users.info", token, user=running.emulator.credentials.bot_user_id)
        ).status_code == 200
        alice = running.emulator.workspace.humans()[0]
        assert (await running.api("users.list", alice.token)).status_code == 200


async def test_limits_switch_at_runtime_and_429s_can_be_forced(
    running: InProcess, autojump_clock: trio.testing.MockClock
) -> None:
    token = running.emulator.credentials.app_token
    with trio.fail_after(600):
        assert (await running.api("apps.connections.open", token)).status_code == 200
        refused = await running.api("apps.connections.open", token)  # Tier 1: one per minute
        assert (refused.status_code, refused.headers["Retry-After"]) == (429, "60")
        off = await running.emu("POST", "/_emu/faults", json={"rate_limits": False})
        assert off.json()["faults"]["rate_limits"] is False
        assert (await running.api("apps.connections.open", token)).status_code == 200
        forced = {"ratelimit": {"count": 2, "retry_after": 7, "methods": ["apps.connections.open"]}}
        await running.emu("POST", "/_emu/faults", json=forced)
        for _ in range(2):
            response = await running.api("apps.connections.open", token)
            assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
        assert (await running.api("apps.connections.open", token)).status_code == 200


def test_post_message_buckets_are_per_channel() -> None:
    limiter = RateLimiter()
    for _ in range(5):
        assert limiter.check("chat.postMessage", "xoxb-1", "C1", now=100.0) is None
    assert limiter.check("chat.postMessage", "xoxb-1", "C1", now=100.0) == 1
    assert limiter.check("chat.postMessage", "xoxb-1", "C2", now=100.0) is None
    assert limiter.check("chat.postMessage", "xoxb-1", "C1", now=101.0) is None
    assert limiter.check("auth.test", "xoxb-1", None, now=100.0) is None  # not tiered
