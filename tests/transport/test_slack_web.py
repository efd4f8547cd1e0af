"""SlackWebClient: the wire format of a call, typed errors, retries and 429s at exact virtual times."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio.testing

from actors.settings import SlackSettings
from tests.transport.slack_fake_web import FakeSlackWeb, Fault, FixedRandom
from transport.slack_backoff import Backoff
from transport.slack_errors import (
    SlackApiError,
    SlackError,
    SlackHttpError,
    SlackRateLimited,
    SlackTimeout,
    SlackTransportError,
)
from transport.slack_rate import RateLimits
from transport.slack_web import RetryPolicy, SlackWebClient

API = "http://127.0.0.1:9/api/"
# Backoff 0.5 s doubling, half of it jittered; the fixed draw 0.5 keeps 75 %: 0.375, 0.75, 1.5.
RETRY = RetryPolicy(max_attempts=4, backoff=Backoff(0.5, 2.0, 30.0, 0.5), attempt_timeout_s=10.0)


def client(fake: FakeSlackWeb, **kwargs: object) -> SlackWebClient:
    options: dict[str, object] = {
        "api_url": API,
        "transport": fake.transport,
        "rate_limits": RateLimits.off(),
        "retry": RETRY,
        "random": FixedRandom(0.5),
        "wall_clock": fake.wall_clock,
    }
    options.update(kwargs)
    return SlackWebClient("xoxb-secret", **options)  # type: ignore[arg-type]


async def test_call_posts_form_with_bearer_token_and_returns_the_answer() -> None:
    fake = FakeSlackWeb()
    async with client(fake) as web:
        answer = await web.call("users.info", user="U1", include_locale=True, fields=["a", 1])
    assert answer == {
        "ok": True,
        "method": "users.info",
        "echo": {"user": "U1", "include_locale": "true", "fields": '["a",1]'},
    }
    (seen,) = fake.requests
    assert seen.headers["authorization"] == "Bearer xoxb-secret"
    assert seen.content_type == "application/x-www-form-urlencoded"


async def test_chat_methods_send_json_and_none_values_are_left_out_of_forms() -> None:
    fake = FakeSlackWeb()
    async with client(fake) as web:
        await web.call("chat.update", channel="D1", ts="1.2", blocks=[{"type": "divider"}])
        await web.call("conversations.history", channel="C1", cursor=None)
    update, history = fake.requests
    assert update.content_type == "application/json; charset=utf-8"
    assert update.params == {"channel": "D1", "ts": "1.2", "blocks": [{"type": "divider"}]}
    assert history.params == {"channel": "C1"}


async def test_api_url_from_settings_with_or_without_trailing_slash() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"ok": True})

    settings = SlackSettings(bot_token="xoxb-1", api_url="http://emu.test:8090/api")
    async with SlackWebClient.from_settings(
        settings, transport=httpx.MockTransport(handler)
    ) as web:
        await web.call("auth.test")
    assert seen == ["http://emu.test:8090/api/auth.test"]
    with pytest.raises(ValueError, match="http"):
        SlackWebClient("x", api_url="ftp://slack.com/api/")


async def test_ok_false_raises_api_error_with_code_and_response_and_is_not_retried() -> None:
    fake = FakeSlackWeb(answers={"conversations.create": {"ok": False, "error": "name_taken"}})
    async with client(fake) as web:
        with pytest.raises(SlackApiError) as caught:
            await web.call("conversations.create", name="swivl_user_1")
        stats = web.statistics()
    assert caught.value.method == "conversations.create"
    assert caught.value.error_code == "name_taken"
    assert caught.value.response == {"ok": False, "error": "name_taken"}
    assert len(fake.requests) == 1
    assert stats.api_errors == 1 and stats.retries == 0


async def test_5xx_is_retried_with_exponential_backoff_at_exact_times(
    autojump_clock: object,
) -> None:
    fake = FakeSlackWeb()
    fake.script("users.info", Fault("status", 503), Fault("status", 500), Fault("status", 502))
    async with client(fake) as web:
        answer = await web.call("users.info", user="U1")
        stats = web.statistics()
    assert answer["ok"] is True
    assert [s.at for s in fake.requests] == [0.0, 0.375, 0.375 + 0.75, 0.375 + 0.75 + 1.5]
    assert stats.retries == 3 and stats.ok == 1 and stats.failed == 0


async def test_transport_errors_exhaust_attempts_then_raise(autojump_clock: object) -> None:
    fake = FakeSlackWeb()
    fake.script("users.info", *[Fault("connect_error")] * 4)
    async with client(fake) as web:
        with pytest.raises(SlackTransportError) as caught:
            await web.call("users.info", user="U1")
    assert caught.value.attempts == 4
    assert caught.value.maybe_sent is False
    assert "ConnectError" in caught.value.detail
    assert trio.current_time() == 0.375 + 0.75 + 1.5


async def test_each_attempt_times_out_at_the_attempt_deadline(autojump_clock: object) -> None:
    fake = FakeSlackWeb()
    fake.script("users.info", *[Fault("hang")] * 2)
    retry = RetryPolicy(max_attempts=2, backoff=Backoff(1.0, 2.0, 30.0, 0.0), attempt_timeout_s=4.0)
    async with client(fake, retry=retry) as web:
        with pytest.raises(SlackTimeout) as caught:
            await web.call("users.info", user="U1")
    assert [s.at for s in fake.requests] == [0.0, 5.0]
    assert trio.current_time() == 9.0
    assert caught.value.maybe_sent is True and caught.value.attempts == 2


async def test_garbage_200_is_retried_and_a_non_slack_404_is_not(autojump_clock: object) -> None:
    fake = FakeSlackWeb()
    fake.script(
        "users.info", Fault("status", 200, body=b"<html>"), Fault("status", 200, body=b"[1]")
    )
    fake.script("users.list", Fault("status", 404, body=b"not found"))
    async with client(fake) as web:
        assert (await web.call("users.info"))["ok"] is True
        with pytest.raises(SlackHttpError) as caught:
            await web.call("users.list")
    assert caught.value.status == 404
    assert len(fake.calls("users.info")) == 3 and len(fake.calls("users.list")) == 1


async def test_a_4xx_carrying_a_slack_error_is_an_api_error() -> None:
    fake = FakeSlackWeb()
    body = json.dumps({"ok": False, "error": "invalid_auth"}).encode()
    fake.script("auth.test", Fault("status", 401, body=body))
    async with client(fake) as web:
        with pytest.raises(SlackApiError, match="invalid_auth"):
            await web.call("auth.test")


async def test_429_holds_only_that_method_for_retry_after(autojump_clock: object) -> None:
    fake = FakeSlackWeb()
    fake.script("users.info", Fault("ratelimited", retry_after="7"))
    async with client(fake) as web, trio.open_nursery() as nursery:
        nursery.start_soon(web.call, "users.info")
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(1)
        await web.call("users.getPresence", user="U1")  # another method keeps flowing
        await web.call("users.info")  # queued behind the Retry-After of its method
        stats = web.statistics()
    assert [(s.method, s.at) for s in fake.requests] == [
        ("users.info", 0.0),
        ("users.getPresence", 1.0),
        ("users.info", 7.0),
        ("users.info", 7.0),
    ]
    assert stats.rate_limited == 1 and stats.retries == 0
    assert stats.queue.methods["users.info"].rate_limited == 1
    assert stats.queue.methods["users.info"].queue_delay_max_s == 7.0


async def test_429_without_retry_after_waits_the_default_then_gives_up(
    autojump_clock: object,
) -> None:
    fake = FakeSlackWeb()
    fake.script("pins.add", *[Fault("ratelimited", retry_after=None)] * 3)
    retry = RetryPolicy(max_rate_limited_waits=2, default_retry_after_s=1.5)
    async with client(fake, retry=retry) as web:
        with pytest.raises(SlackRateLimited) as caught:
            await web.call("pins.add", channel="C1", timestamp="1.1")
    assert [s.at for s in fake.requests] == [0.0, 1.5, 3.0]
    assert caught.value.retry_after == 1.5
    assert isinstance(caught.value, SlackApiError) and caught.value.error_code == "ratelimited"


async def test_with_token_shares_the_pool_and_statistics_but_not_the_token() -> None:
    fake = FakeSlackWeb()
    async with client(fake) as web:
        app = web.with_token("xapp-1")
        await app.call("apps.connections.open")
        await web.call("auth.test")
        await app.aclose()  # a sibling never closes the shared pool
        await web.call("auth.test")
        assert web.statistics().calls == 3
    assert [s.headers["authorization"] for s in fake.requests] == [
        "Bearer xapp-1",
        "Bearer xoxb-secret",
        "Bearer xoxb-secret",
    ]


async def test_closed_client_and_bad_method_names_fail_clearly() -> None:
    fake = FakeSlackWeb()
    web = client(fake)
    with pytest.raises(ValueError, match="method name"):
        await web.call("../admin")
    await web.aclose()
    with pytest.raises(SlackTransportError, match="closed"):
        await web.call("auth.test")
    assert issubclass(SlackTransportError, SlackError) and fake.requests == []


async def test_caller_deadline_cancels_a_queued_call(autojump_clock: object) -> None:
    fake = FakeSlackWeb()
    fake.script("users.info", Fault("ratelimited", retry_after="30"))
    async with client(fake) as web:
        with trio.move_on_after(5):
            await web.call("users.info")
        assert trio.current_time() == 5.0
        assert web.statistics().in_flight == 0
    assert len(fake.requests) == 1
