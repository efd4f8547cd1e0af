"""Presence polling and confirmation at exact virtual times, and the lanes commands run in."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest
import trio
import trio.testing

from actors.ports import PresenceChanged
from transport.slack_errors import SlackApiError, SlackTimeout
from transport.slack_lanes import Lanes
from transport.slack_presence import Presence
from transport.slack_rate import RateLimits, Tier
from transport.slack_web import RetryPolicy, SlackWebClient


class FakePresence:
    """users.getPresence answered from a dict, each call recorded with its virtual time."""

    def __init__(self, presence: dict[str, str]) -> None:
        self.presence = presence
        self.calls: list[tuple[float, str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        user = dict(parse_qsl(request.content.decode()))["user"]
        self.calls.append((trio.current_time(), user))
        if user not in self.presence:
            return httpx.Response(200, json={"ok": False, "error": "user_not_found"})
        return httpx.Response(200, json={"ok": True, "presence": self.presence[user]})

    def web(self) -> SlackWebClient:
        return SlackWebClient(
            "xoxb-test",
            api_url="http://slack.test/api/",
            transport=httpx.MockTransport(self.handle),
            rate_limits=RateLimits.off(),
            retry=RetryPolicy(max_attempts=1),
        )


class Published:
    def __init__(self) -> None:
        self.facts: list[tuple[float, PresenceChanged]] = []

    async def __call__(self, fact: PresenceChanged) -> None:
        self.facts.append((trio.current_time(), fact))


async def test_the_first_round_is_quick_then_the_pool_is_spread_over_the_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakePresence({"U1": "active", "U2": "away", "U3": "active"})
    published = Published()
    presence = Presence(
        fake.web(), published, agents=["U1", "U2", "U3"], interval_s=30.0, min_gap_s=1.5
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(presence.poll)
        await trio.sleep(40.0)
        nursery.cancel_scope.cancel()
    assert fake.calls == [
        (0.0, "U1"),
        (1.5, "U2"),
        (3.0, "U3"),
        (4.5, "U1"),
        (14.5, "U2"),
        (24.5, "U3"),
        (34.5, "U1"),
    ]
    assert published.facts == [
        (0.0, PresenceChanged("U1", True)),
        (1.5, PresenceChanged("U2", False)),
        (3.0, PresenceChanged("U3", True)),
    ]


async def test_a_large_pool_stays_within_the_tier(autojump_clock: trio.testing.MockClock) -> None:
    agents = [f"U{i}" for i in range(200)]
    fake = FakePresence(dict.fromkeys(agents, "active"))
    presence = Presence(fake.web(), Published(), agents=agents, interval_s=60.0, min_gap_s=1.5)
    assert presence.gap_s == 1.5
    async with trio.open_nursery() as nursery:
        nursery.start_soon(presence.poll)
        await trio.sleep(600.0)
        nursery.cancel_scope.cancel()
    times = [t for t, _ in fake.calls]
    for start in range(0, 540, 60):  # every minute of the run
        assert sum(start <= t < start + 60 for t in times) <= 40


async def test_only_changes_are_published_and_failures_do_not_stop_the_poll(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakePresence({"U1": "active"})
    published = Published()
    presence = Presence(fake.web(), published, agents=["U1", "U404"], interval_s=10.0, min_gap_s=0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(presence.poll)
        await trio.sleep(12.0)
        fake.presence["U1"] = "away"
        await trio.sleep(10.0)
        nursery.cancel_scope.cancel()
    assert published.facts == [
        (0.0, PresenceChanged("U1", True)),
        (20.0, PresenceChanged("U1", False)),
    ]
    stats = presence.statistics()
    assert stats.poll_failures == stats.polls // 2 and stats.known == {"U1": False}


async def test_confirmation_and_rtm_notes_update_what_is_known() -> None:
    fake = FakePresence({"U1": "away"})
    published = Published()
    presence = Presence(fake.web(), published, agents=["U1"])
    assert presence.note("U1", True) is True
    assert presence.note("U1", True) is False
    assert await presence.confirm("U1") is False
    assert [fact for _, fact in published.facts] == [PresenceChanged("U1", False)]
    assert presence.statistics().confirms == 1


async def test_a_confirmation_is_published_unchanged_and_a_failed_one_by_the_next_poll(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The domain counts an agent whose confirmation failed or came too late as away: the
    # answer, or after a failure the next poll's, must reach it even though nothing changed.
    fake = FakePresence({"U1": "active"})
    published = Published()
    presence = Presence(fake.web(), published, agents=["U1"], interval_s=10.0, min_gap_s=0)
    await presence.fetch("U1")
    assert await presence.confirm("U1") is True
    del fake.presence["U1"]  # Slack cannot tell: user_not_found
    with pytest.raises(SlackApiError):
        await presence.confirm("U1")
    fake.presence["U1"] = "active"
    with trio.move_on_after(5):
        await presence.poll()
    assert [fact for _, fact in published.facts] == [PresenceChanged("U1", True)] * 3


async def test_a_confirmation_stuck_behind_its_tier_answers_the_presence_last_seen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A rush of offers saturates users.getPresence's tier: a confirmation that cannot be made
    # within its budget answers what was seen last instead of timing out the domain's ask.
    fake = FakePresence({"U1": "active", "U2": "active"})
    one_a_minute = RateLimits.off().with_tiers({"users.getPresence": Tier(1, burst=1)})
    web = SlackWebClient(
        "xoxb-test",
        api_url="http://slack.test/api/",
        transport=httpx.MockTransport(fake.handle),
        rate_limits=one_a_minute,
        retry=RetryPolicy(max_attempts=1),
    )
    published = Published()
    presence = Presence(web, published, agents=["U1", "U2"], confirm_budget_s=4.0)
    assert await presence.confirm("U1") is True  # the tier's one call of this minute
    assert await presence.confirm("U1") is True  # seen 0 s ago: answered at the budget
    assert trio.current_time() == 4.0
    with pytest.raises(SlackTimeout):  # never seen: nothing to answer with
        await presence.confirm("U2")
    assert trio.current_time() == 8.0
    assert [c for _, c in fake.calls] == ["U1"]
    stats = presence.statistics()
    assert (stats.confirms, stats.confirms_from_last_seen) == (3, 1)
    assert published.facts == [
        (0.0, PresenceChanged("U1", True)),
        (4.0, PresenceChanged("U1", True)),
    ]


async def test_rtm_mode_polls_one_round(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakePresence({"U1": "active", "U2": "active"})
    presence = Presence(fake.web(), Published(), agents=["U1", "U2"], min_gap_s=1.5)
    await presence.poll(once=True)
    assert fake.calls == [(0.0, "U1"), (1.5, "U2")]


# --- lanes ---------------------------------------------------------------------------------------


async def test_jobs_of_one_lane_run_in_order_and_lanes_run_side_by_side(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []

    def job(name: str, seconds: float):  # type: ignore[no-untyped-def]
        async def run() -> None:
            await trio.sleep(seconds)
            log.append((trio.current_time(), name))

        return run

    async with trio.open_nursery() as nursery:
        lanes = Lanes(nursery)
        await lanes.submit("room:a", "a1", job("a1", 3))
        await lanes.submit("room:b", "b1", job("b1", 1))
        await lanes.submit("room:a", "a2", job("a2", 1))
        await lanes.submit(None, "free", job("free", 0.5))
        await lanes.submit("room:b", "b2", job("b2", 1))
        await lanes.wait_idle()
    assert log == [(0.5, "free"), (1.0, "b1"), (2.0, "b2"), (3.0, "a1"), (4.0, "a2")]
    assert lanes.statistics().done == 5 and lanes.statistics().lanes == 0


async def test_a_failing_job_is_logged_and_its_lane_goes_on() -> None:
    done: list[str] = []

    async def boom() -> None:
        raise RuntimeError("slack said no")

    async def ok() -> None:
        done.append("ok")

    async with trio.open_nursery() as nursery:
        lanes = Lanes(nursery)
        await lanes.submit("k", "boom", boom)
        await lanes.submit("k", "ok", ok)
        await lanes.wait_finished(2)
    assert done == ["ok"]
    stats = lanes.statistics()
    assert (stats.done, stats.failed) == (1, 1)


async def test_submit_waits_while_the_limit_is_reached(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()

    async def held() -> None:
        await release.wait()

    async with trio.open_nursery() as nursery:
        lanes = Lanes(nursery, limit=2)
        await lanes.submit(None, "1", held)
        await lanes.submit("x", "2", held)
        with trio.move_on_after(5) as blocked:
            await lanes.submit("y", "3", held)
        assert blocked.cancelled_caught and lanes.statistics().queued_or_running == 2
        release.set()
        await lanes.submit("y", "3", held)
        await lanes.wait_idle()
    assert lanes.statistics().done == 3


def test_lanes_need_room_for_one_job() -> None:
    with pytest.raises(ValueError):
        Lanes(None, limit=0)  # type: ignore[arg-type]
