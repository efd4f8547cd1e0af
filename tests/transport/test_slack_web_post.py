"""chat.postMessage is never duplicated by a retry: post ids in metadata, and a lookup before re-posting."""

from __future__ import annotations

from functools import partial

import httpx
import pytest
import trio

from tests.transport.slack_fake_web import WALL_CLOCK_START, FakeSlackWeb, Fault, FixedRandom
from transport.slack_backoff import Backoff
from transport.slack_errors import SlackApiError, SlackPostUncertain
from transport.slack_rate import RateLimits
from transport.slack_web import RetryPolicy, SlackWebClient
from transport.slack_web_post import PostIds, form_encode, post_id_of

RETRY = RetryPolicy(max_attempts=3, backoff=Backoff(1.0, 2.0, 30.0, 0.0), attempt_timeout_s=5.0)


def client(fake: FakeSlackWeb) -> SlackWebClient:
    return SlackWebClient(
        "xoxb-1",
        api_url="http://slack.test/api/",
        transport=fake.transport,
        rate_limits=RateLimits.off(),
        retry=RETRY,
        random=FixedRandom(),
        wall_clock=fake.wall_clock,
    )


def posts(fake: FakeSlackWeb) -> list[str]:
    return [m["text"] for messages in fake.messages.values() for m in messages]


async def test_every_post_carries_a_unique_post_id_in_its_metadata() -> None:
    fake = FakeSlackWeb()
    async with client(fake) as web:
        await web.call("chat.postMessage", channel="C1", text="one")
        await web.post_message("C1", text="two")
    first, second = (seen.params["metadata"] for seen in fake.calls("chat.postMessage"))
    assert first["event_type"] == second["event_type"] == "takeover_post"
    assert first["event_payload"]["post_id"] != second["event_payload"]["post_id"]


async def test_caller_metadata_is_kept_and_an_explicit_post_id_wins() -> None:
    fake = FakeSlackWeb()
    async with client(fake) as web:
        metadata = {"event_type": "relay", "event_payload": {"session": "S1"}}
        await web.post_message("C1", text="x", post_id="S1-7", metadata=metadata)
        await web.post_message("C1", text="y", metadata='{"event_payload": {"post_id": "given"}}')
        with pytest.raises(ValueError, match="JSON object"):
            await web.post_message("C1", text="z", metadata="[1]")
    first, second = (seen.params["metadata"] for seen in fake.calls("chat.postMessage"))
    assert first == {"event_type": "relay", "event_payload": {"session": "S1", "post_id": "S1-7"}}
    assert second == {"event_type": "takeover_post", "event_payload": {"post_id": "given"}}
    assert metadata == {"event_type": "relay", "event_payload": {"session": "S1"}}


async def test_a_post_that_landed_before_a_timeout_is_found_not_reposted(
    autojump_clock: object,
) -> None:
    fake = FakeSlackWeb()
    fake.script("chat.postMessage", Fault("hang", store_first=True))
    async with client(fake) as web:
        answer = await web.post_message("C1", text="hello", post_id="P1")
        stats = web.statistics()
    assert posts(fake) == ["hello"]
    assert answer["ts"] == fake.messages["C1"][0]["ts"] and answer["channel"] == "C1"
    assert post_id_of(answer["message"]) == "P1"
    (lookup,) = fake.calls("conversations.history")
    assert lookup.at == 11.0  # attempt deadline 5 s, the 1 s backoff, 5 s more for a late post
    assert lookup.params["include_all_metadata"] == "true"
    assert float(lookup.params["oldest"]) == WALL_CLOCK_START - 60.0
    assert stats.post_lookups == 1 and stats.posts_recovered == 1
    assert len(fake.calls("chat.postMessage")) == 1


async def test_a_post_to_a_user_id_is_looked_up_in_their_dm_not_reposted(
    autojump_clock: object,
) -> None:
    fake = FakeSlackWeb()
    fake.script("chat.postMessage", Fault("hang", store_first=True))
    async with client(fake) as web:
        answer = await web.post_message("U7", text="an offer", post_id="P7")
    assert posts(fake) == ["an offer"] and answer["channel"] == "D7"
    (opened,) = fake.calls("conversations.open")
    assert opened.params["users"] == "U7"
    (lookup,) = fake.calls("conversations.history")
    assert lookup.params["channel"] == "D7"
    assert len(fake.calls("chat.postMessage")) == 1


async def test_a_post_served_after_its_attempt_timed_out_is_found_not_reposted(
    autojump_clock: object,
) -> None:
    fake = FakeSlackWeb()
    fake.script("chat.postMessage", Fault("late", after=8.0))  # lands 3 s after the deadline
    async with client(fake) as web:
        answer = await web.post_message("C1", text="hello", post_id="P1")
    assert posts(fake) == ["hello"]
    assert post_id_of(answer["message"]) == "P1"
    assert [(s.method, s.at) for s in fake.requests] == [
        ("chat.postMessage", 0.0),
        ("conversations.history", 11.0),
    ]


async def test_a_5xx_that_posted_nothing_is_checked_then_posted_once(
    autojump_clock: object,
) -> None:
    fake = FakeSlackWeb()
    fake.script("chat.postMessage", Fault("status", 503), Fault("read_error"))
    async with client(fake) as web:
        await web.call("chat.postMessage", channel="C1", text="hello")
    assert posts(fake) == ["hello"]
    assert [s.method for s in fake.requests] == [
        "chat.postMessage",
        "conversations.history",
        "chat.postMessage",
        "conversations.history",
        "chat.postMessage",
    ]
    # a 503 was answered: looked up at once; a reset connection may still be served: 5 s more
    assert [s.at for s in fake.requests] == [0.0, 1.0, 1.0, 8.0, 8.0]


async def test_a_failure_before_sending_reposts_without_a_lookup(autojump_clock: object) -> None:
    fake = FakeSlackWeb()
    fake.script("chat.postMessage", Fault("connect_error"), Fault("ratelimited", retry_after="2"))
    async with client(fake) as web:
        await web.post_message("C1", text="hello")
    assert posts(fake) == ["hello"]
    assert fake.calls("conversations.history") == []
    assert [s.at for s in fake.requests] == [0.0, 1.0, 3.0]


async def test_a_failed_lookup_raises_uncertain_and_never_reposts(autojump_clock: object) -> None:
    fake = FakeSlackWeb(answers={"conversations.history": {"ok": False, "error": "missing_scope"}})
    fake.script("chat.postMessage", Fault("hang", store_first=True))
    async with client(fake) as web:
        with pytest.raises(SlackPostUncertain) as caught:
            await web.post_message("D1", text="offer", post_id="offer-9")
    assert caught.value.channel == "D1" and caught.value.post_id == "offer-9"
    assert "missing_scope" in str(caught.value)
    assert caught.value.maybe_sent is True
    assert len(fake.calls("chat.postMessage")) == 1


async def test_running_out_of_attempts_after_an_ambiguous_failure_is_uncertain(
    autojump_clock: object,
) -> None:
    fake = FakeSlackWeb()
    fake.script("chat.postMessage", *[Fault("status", 500)] * 3)
    async with client(fake) as web:
        with pytest.raises(SlackPostUncertain) as caught:
            await web.post_message("C1", text="hello")
        assert caught.value.attempts == 3
        # The id lets the caller look again later, e.g. after Slack recovered.
        assert await web.find_post("C1", caught.value.post_id, oldest=WALL_CLOCK_START) is None


async def test_thread_replies_are_looked_up_in_the_thread(autojump_clock: object) -> None:
    fake = FakeSlackWeb()
    fake.script("chat.postMessage", Fault("hang", store_first=True))
    async with client(fake) as web:
        await web.post_message("C1", text="reply", thread_ts="1700000000.000001")
    (lookup,) = fake.calls("conversations.replies")
    assert lookup.params["ts"] == "1700000000.000001"
    assert posts(fake) == ["reply"]


async def test_find_post_pages_through_a_busy_channel() -> None:
    fake = FakeSlackWeb()
    async with client(fake) as web:
        target = await web.post_message("C1", text="target", post_id="needle")
        for i in range(45):
            await web.post_message("C1", text=f"m{i}")
        found = await web.find_post("C1", "needle", oldest=WALL_CLOCK_START - 1)
        missing = await web.find_post("C1", "absent", oldest=WALL_CLOCK_START - 1)
    assert found is not None and found["ts"] == target["ts"]
    assert missing is None
    assert [s.params.get("cursor") for s in fake.calls("conversations.history")] == [
        None, "20", "40", None, "20", "40",
    ]  # fmt: skip


async def test_api_errors_of_a_post_are_not_retried() -> None:
    fake = FakeSlackWeb(answers={"chat.postMessage": {"ok": False, "error": "not_in_channel"}})
    async with client(fake) as web:
        with pytest.raises(SlackApiError, match="not_in_channel"):
            await web.post_message("C9", text="x")
        with pytest.raises(SlackApiError):
            await web.call("chat.postMessage", text="no channel at all")
    assert len(fake.requests) == 2


async def test_posts_to_the_same_channel_keep_their_order_under_the_channel_tier(
    autojump_clock: object,
) -> None:
    fake = FakeSlackWeb()
    web = SlackWebClient(
        "xoxb-1",
        api_url="http://slack.test/api/",
        transport=fake.transport,
        wall_clock=fake.wall_clock,
    )
    async with web, trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(partial(web.post_message, "C1", text=f"m{i}"))
            await trio.testing.wait_all_tasks_blocked()
    assert posts(fake) == ["m0", "m1", "m2", "m3", "m4"]
    assert [s.at for s in fake.requests] == [0.0, 0.0, 0.0, 1.0, 2.0]


def test_post_ids_differ_between_clients_and_forms_encode_values() -> None:
    assert PostIds().next() != PostIds().next()
    assert form_encode({"a": True, "b": None, "c": {"k": [1]}, "d": 2.5}) == (
        b"a=true&c=%7B%22k%22%3A%5B1%5D%7D&d=2.5"
    )
    assert post_id_of({"metadata": "nope"}) is None
    assert post_id_of(httpx) is None
