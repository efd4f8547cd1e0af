"""Presence polling and confirmation at exact virtual times, and the lanes commands run in."""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
import pytest
import trio
import trio.testing

from actors.ports import OfferView, PresenceChanged, ResolveOffer
from tests.transport.slack_fake_web import FakeSlackWeb, Fault
from transport.slack_errors import SlackApiError, SlackHttpError, SlackTimeout
from transport.slack_lanes import Lanes
from transport.slack_offers import Offers
from transport.slack_presence import Presence, Profiles
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
    presence = Presence(
        fake.web(), published, agents=["U1"], interval_s=10.0, min_gap_s=0, confirm_budget_s=2.0
    )
    await presence.fetch("U1")
    assert await presence.confirm("U1") is True
    del fake.presence["U1"]  # Slack cannot tell: user_not_found
    with pytest.raises(SlackApiError):
        await presence.confirm("U1")
    assert presence.statistics().known == {"U1": True}  # a failure forgets nothing
    fake.presence["U1"] = "active"
    with trio.move_on_after(5):
        await presence.poll()  # yields to the confirmations for their budget, then polls
    assert published.facts == [(0.0, PresenceChanged("U1", True))] * 2 + [
        (2.0, PresenceChanged("U1", True))
    ]


def one_a_minute(fake: FakePresence, *, delay_s: float = 0.0) -> SlackWebClient:
    """users.getPresence at one call a minute; Slack answers after `delay_s`."""

    async def handle(request: httpx.Request) -> httpx.Response:
        await trio.sleep(delay_s)
        return fake.handle(request)

    return SlackWebClient(
        "xoxb-test",
        api_url="http://slack.test/api/",
        transport=httpx.MockTransport(handle),
        rate_limits=RateLimits.off().with_tiers({"users.getPresence": Tier(1, burst=1)}),
        retry=RetryPolicy(max_attempts=1),
    )


async def test_confirmations_behind_a_saturated_tier_answer_at_once_from_what_was_seen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The old failure: a rush of offers saturates users.getPresence's tier; two confirmations of
    # one agent queued behind it; the first answered from the presence last seen after its
    # budget and forgot it, so the second found nothing and the agent was counted away.
    fake = FakePresence({"U1": "active", "U2": "active"})
    web = one_a_minute(fake)
    published = Published()
    presence = Presence(web, published, agents=["U1", "U2"], confirm_budget_s=4.0)
    await presence.fetch("U1")  # the tier's one call of this minute
    answers: list[tuple[float, bool]] = []

    async def confirm() -> None:
        answers.append((trio.current_time(), await presence.confirm("U1")))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(confirm)
        nursery.start_soon(confirm)
    assert answers == [(0.0, True), (0.0, True)]  # at once, neither counts the agent away
    assert [c for _, c in fake.calls] == ["U1"]  # and no call queued behind the tier
    assert presence.statistics().known == {"U1": True}  # nothing forgotten
    assert await presence.confirm("U1") is True
    stats = presence.statistics()
    assert (stats.confirms, stats.confirms_from_last_seen) == (3, 3)
    assert published.facts == [(0.0, PresenceChanged("U1", True))] * 4


async def test_a_confirmation_waits_for_its_turn_only_within_the_short_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakePresence({"U1": "active"})
    tier = RateLimits.off().with_tiers({"users.getPresence": Tier(120, burst=1)})  # every 0.5 s
    web = SlackWebClient(
        "xoxb-test",
        api_url="http://slack.test/api/",
        transport=httpx.MockTransport(fake.handle),
        rate_limits=tier,
        retry=RetryPolicy(max_attempts=1),
    )
    presence = Presence(web, Published(), agents=["U1"], confirm_wait_s=0.5)
    assert await presence.confirm("U1") is True
    assert web.rate_eta("users.getPresence") == 0.5
    fake.presence["U1"] = "away"
    assert await presence.confirm("U1") is False  # its turn came at 0.5 s: Slack asked
    assert [t for t, _ in fake.calls] == [0.0, 0.5]
    assert presence.statistics().confirms_from_last_seen == 0


async def test_an_agent_never_seen_waits_for_slack_up_to_the_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakePresence({"U1": "active", "U2": "active", "U3": "away"})
    web = one_a_minute(fake)
    presence = Presence(web, Published(), agents=["U1", "U2", "U3"], confirm_budget_s=4.0)
    assert await presence.confirm("U1") is True
    with pytest.raises(SlackTimeout):  # never seen, and the tier's next call is at 60 s
        await presence.confirm("U2")
    assert trio.current_time() == 4.0
    await trio.sleep(54.0)
    with trio.move_on_after(10):  # t=58: the tier passes a call at 60 s, within the budget
        assert await presence.confirm("U3") is False
    assert trio.current_time() == 60.0
    assert fake.calls == [(0.0, "U1"), (60.0, "U3")]


async def confirm_at(
    presence: Presence, agent_id: str, after_s: float, answers: list[tuple[float, bool]]
) -> None:
    await trio.sleep(after_s)
    active = await presence.confirm(agent_id)
    answers.append((trio.current_time(), active))


async def test_slack_unreachable_answers_from_what_was_seen_an_error_answer_is_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeSlackWeb()
    web = SlackWebClient(
        "xoxb-test",
        api_url="http://slack.test/api/",
        transport=fake.transport,
        rate_limits=RateLimits.off(),
        retry=RetryPolicy(max_attempts=1),
    )
    presence = Presence(web, Published(), agents=["U1", "U2"])
    presence.note("U1", True)
    fake.script("users.getPresence", Fault("status", 503), Fault("status", 503))
    assert await presence.confirm("U1") is True  # Slack down: what was seen
    with pytest.raises(SlackHttpError):  # never seen: nothing to answer with
        await presence.confirm("U2")
    fake.answers["users.getPresence"] = {"ok": False, "error": "user_not_found"}
    with pytest.raises(SlackApiError):  # Slack answered: the agent is gone
        await presence.confirm("U1")
    assert presence.statistics().confirms_from_last_seen == 1


async def test_concurrent_confirmations_of_one_agent_share_one_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakePresence({"U1": "away"})
    presence = Presence(
        one_a_minute(fake, delay_s=1.5), Published(), agents=["U1"], confirm_budget_s=4.0
    )
    answers: list[tuple[float, bool]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(confirm_at, presence, "U1", 0.0, answers)
        nursery.start_soon(confirm_at, presence, "U1", 1.0, answers)
        nursery.start_soon(confirm_at, presence, "U1", 1.0, answers)
    assert answers == [(1.5, False)] * 3
    assert [c for _, c in fake.calls] == ["U1"]  # one call, answered at 1.5 s
    assert presence.statistics().confirms_shared == 2


async def test_slack_slower_than_the_budget_answers_every_waiter_from_what_was_seen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakePresence({"U1": "away"})
    published = Published()
    presence = Presence(
        one_a_minute(fake, delay_s=9.0), published, agents=["U1"], confirm_budget_s=4.0
    )
    presence.note("U1", True)  # seen active (RTM, a poll)
    answers: list[tuple[float, bool]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(confirm_at, presence, "U1", 0.0, answers)
        nursery.start_soon(confirm_at, presence, "U1", 2.0, answers)
    assert answers == [(4.0, True), (4.0, True)]
    stats = presence.statistics()
    assert (stats.confirms, stats.confirms_shared, stats.confirms_from_last_seen) == (2, 1, 2)
    assert published.facts == [(4.0, PresenceChanged("U1", True))] * 2


async def test_the_poll_yields_the_tier_to_confirmations(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakePresence({"U1": "active", "U2": "active"})
    tier = RateLimits.off().with_tiers({"users.getPresence": Tier(20, burst=1)})  # 3 s apart
    web = SlackWebClient(
        "xoxb-test",
        api_url="http://slack.test/api/",
        transport=httpx.MockTransport(fake.handle),
        rate_limits=tier,
        retry=RetryPolicy(max_attempts=1),
    )
    presence = Presence(
        web, Published(), agents=["U1", "U2"], interval_s=2.0, min_gap_s=0, confirm_budget_s=2.0
    )
    confirmed: list[tuple[float, bool]] = []

    async def offers() -> None:  # a confirmation every second for 6 s
        for _ in range(6):
            confirmed.append((trio.current_time(), await presence.confirm("U1")))
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(offers)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(presence.poll)
        await trio.sleep(12.5)
        nursery.cancel_scope.cancel()
    # confirmations: Slack at 0 s and 3 s (the tier's pace), what was seen in between
    assert confirmed == [(float(t), True) for t in range(6)]
    # the poll waited until 2 s after the last confirmation (asked at 5 s), then took the
    # tier's turns as they came (never queueing in it)
    assert fake.calls == [(0.0, "U1"), (3.0, "U1"), (7.0, "U1"), (10.0, "U2")]
    stats = presence.statistics()
    assert stats.confirms_from_last_seen == 4 and stats.polls_deferred == 3  # the 3rd: at 13 s
    assert web.statistics().queue.methods["users.getPresence"].waited == 0


async def test_rtm_mode_polls_one_round(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakePresence({"U1": "active", "U2": "active"})
    presence = Presence(fake.web(), Published(), agents=["U1", "U2"], min_gap_s=1.5)
    await presence.poll(once=True)
    assert fake.calls == [(0.0, "U1"), (1.5, "U2")]


# --- profiles ------------------------------------------------------------------------------------


async def test_a_profile_is_kept_fresh_s_and_fetches_of_one_agent_share_a_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[float] = []
    title = {"U1": "Support lead"}

    async def handle(request: httpx.Request) -> httpx.Response:
        calls.append(trio.current_time())
        await trio.sleep(1.0)
        if "U1" not in title:
            return httpx.Response(200, json={"ok": False, "error": "user_not_found"})
        profile = {"real_name": "Alice", "title": title["U1"], "image_72": "https://a/72.png"}
        return httpx.Response(200, json={"ok": True, "user": {"name": "alice", "profile": profile}})

    web = SlackWebClient(
        "xoxb-test",
        api_url="http://slack.test/api/",
        transport=httpx.MockTransport(handle),
        rate_limits=RateLimits.off(),
        retry=RetryPolicy(max_attempts=1),
    )
    profiles = Profiles(web, fresh_s=60.0)
    got: list[str] = []

    async def fetch() -> None:
        got.append((await profiles.fetch("U1")).title)

    async with trio.open_nursery() as nursery:  # three accepts at once: one users.info
        for _ in range(3):
            nursery.start_soon(fetch)
    assert got == ["Support lead"] * 3 and calls == [0.0]
    title["U1"] = "Manager"
    await trio.sleep(30.0)
    assert (await profiles.fetch("U1")).title == "Support lead"  # kept: no call
    await trio.sleep(30.0)
    assert (await profiles.fetch("U1")).title == "Manager"  # 61 s old: fetched again
    assert calls == [0.0, 61.0] and profiles.avatars == {"U1": "https://a/72.png"}
    del title["U1"]
    await trio.sleep(60.0)
    assert (await profiles.fetch("U1")).title == "Manager"  # Slack fails: the kept one
    with pytest.raises(SlackApiError):
        await profiles.fetch("U2")  # nothing kept: the error


async def test_profiles_are_warmed_from_users_list_and_kept_while_users_info_is_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def member(i: int) -> dict[str, object]:
        return {"id": f"U{i}", "name": f"a{i}", "profile": {"real_name": f"Agent {i}"}}

    fake = FakeSlackWeb()
    pages = {"": (["U1", "U2"], "p2"), "p2": (["U3"], "")}

    async def handle(request: httpx.Request) -> httpx.Response:
        params = dict(parse_qsl(request.content.decode()))
        if request.url.path.endswith("users.list"):
            ids, cursor = pages[params.get("cursor", "")]
            members = [member(int(i[1:])) for i in ids]
            meta = {"next_cursor": cursor}
            return httpx.Response(
                200, json={"ok": True, "members": members, "response_metadata": meta}
            )
        return await fake.handle(request)

    fake.answers["users.info"] = {"ok": True, "user": member(2) | {"name": "fresh"}}
    web = SlackWebClient(
        "xoxb-test",
        api_url="http://slack.test/api/",
        transport=httpx.MockTransport(handle),
        rate_limits=RateLimits.off().with_tiers({"users.info": Tier(60, burst=1)}),
        retry=RetryPolicy(max_attempts=1),
    )
    profiles = Profiles(web, fresh_s=60.0, wait_s=0.5)
    assert await profiles.warm(["U1", "U3"]) == 2  # two pages, U2 is not in the pool
    assert (await profiles.fetch("U3")).real_name == "Agent 3"
    assert fake.calls("users.info") == []
    await trio.sleep(61.0)
    await web.call("users.info", user="U9")
    await web.call("users.info", user="U9")  # the tier is now busy for 1 s, more than...
    assert web.rate_eta("users.info") == 1.0
    assert (await profiles.fetch("U1")).real_name == "Agent 1"  # ...wait_s: the kept one
    assert web.rate_eta("users.info") == 1.0
    await trio.sleep(1.0)
    assert (await profiles.fetch("U1")).display_name == "Agent 2"  # stale and free: fetched


# --- offer DMs under chat.update's tier ----------------------------------------------------------


def offer_view(offer_id: str, agent_id: str) -> OfferView:
    return OfferView(offer_id, "e_1", agent_id, "c1", "Carol", "hello", (), 1_700_000_045.0)


async def test_offer_dm_updates_queue_outside_the_lanes_accepted_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeSlackWeb()
    web = SlackWebClient(
        "xoxb-test",
        api_url="http://slack.test/api/",
        transport=fake.transport,
        rate_limits=RateLimits.off().with_tiers({"chat.update": Tier(60, burst=1)}),
        retry=RetryPolicy(max_attempts=1),
        wall_clock=fake.wall_clock,
    )
    offers = Offers(web)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(offers.run_updates)
        for i in range(1, 5):  # the first offer to an agent goes to their user id: no
            await offers.post(offer_view(f"o{i}", f"U{i}"))  # conversations.open to wait for
        outcomes = {"o1": "missed", "o2": "ignored", "o3": "missed", "o4": "accepted"}
        for offer_id, outcome in outcomes.items():
            offers.resolve_soon(ResolveOffer(offer_id, f"U{offer_id[1]}", outcome))  # type: ignore[arg-type]
        assert offers.updates_pending == 4
        await offers.post(offer_view("o5", "U1"))  # meanwhile other calls go on at once
        assert trio.current_time() == 0.0
        await offers.wait_updated()
        nursery.cancel_scope.cancel()
    updates = [(c.at, c.params["channel"]) for c in fake.calls("chat.update")]
    # Slack answers a post to a user id with their DM's id; updates and later posts use it
    assert updates == [(0.0, "D4"), (1.0, "D1"), (2.0, "D2"), (3.0, "D3")]
    assert fake.calls("conversations.open") == []
    assert [c.params["channel"] for c in fake.calls("chat.postMessage")] == [
        "U1",
        "U2",
        "U3",
        "U4",
        "D1",
    ]
    assert offers.updates_pending == 0 and offers.get("o2").outcome == "ignored"  # type: ignore[union-attr]


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
