"""RateLimiter: Slack's tiers as token buckets, FIFO waiting, 429 blocks per method, at exact times."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from transport.slack_rate import (
    SLACK_TIERS,
    TIER_1,
    TIER_2,
    TIER_3,
    TIER_4,
    RateLimiter,
    RateLimits,
    Tier,
)

DESIGN_METHODS = [
    "auth.test",
    "apps.connections.open",
    "rtm.connect",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "conversations.open",
    "conversations.create",
    "conversations.invite",
    "conversations.archive",
    "conversations.unarchive",
    "conversations.info",
    "conversations.history",
    "conversations.members",
    "pins.add",
    "users.info",
    "users.list",
    "users.getPresence",
    "users.setPresence",
    "users.profile.get",
    "views.publish",
]


def test_the_table_covers_every_method_the_product_calls_with_slacks_tiers() -> None:
    assert set(DESIGN_METHODS) <= set(SLACK_TIERS)
    assert SLACK_TIERS["apps.connections.open"].per_minute == 1
    assert SLACK_TIERS["conversations.create"].per_minute == 20
    assert SLACK_TIERS["users.getPresence"].per_minute == 50
    assert SLACK_TIERS["users.info"].per_minute == 100
    post = SLACK_TIERS["chat.postMessage"]
    assert post.per_channel and post.interval == 1.0
    assert [t.per_minute for t in (TIER_1, TIER_2, TIER_3, TIER_4)] == [1, 20, 50, 100]
    with pytest.raises(ValueError):
        Tier(0)


async def test_a_burst_passes_then_calls_are_paced_by_the_interval(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.off().with_tiers({"conversations.create": Tier(20, burst=2)}))
    times = []
    for _ in range(5):
        await limiter.acquire("conversations.create")
        times.append(trio.current_time())
    assert times == [0.0, 0.0, 3.0, 6.0, 9.0]
    stats = limiter.statistics().methods["conversations.create"]
    assert stats.admitted == 5 and stats.waited == 3
    assert stats.queue_delay_max_s == 3.0 and stats.queue_delay_total_s == 9.0


async def test_concurrent_callers_are_served_in_arrival_order(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.off().with_tiers({"pins.add": Tier(60, burst=1)}))
    served: list[tuple[int, float]] = []

    async def caller(i: int) -> None:
        await limiter.acquire("pins.add")
        served.append((i, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for i in range(4):
            nursery.start_soon(caller, i)
            await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics().waiting == 3
    assert served == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]


async def test_a_bucket_refills_while_idle(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.off().with_tiers({"pins.add": Tier(60, burst=2)}))
    for _ in range(2):
        await limiter.acquire("pins.add")
    await trio.sleep(1.5)  # one call's worth back, plus half
    assert await limiter.acquire("pins.add") == 0.0
    assert await limiter.acquire("pins.add") == 0.5
    assert trio.current_time() == 2.0


async def test_per_channel_tiers_keep_one_bucket_per_channel(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.slack())
    for _ in range(3):  # chat.postMessage: burst 3, then one a second, per channel
        assert await limiter.acquire("chat.postMessage", "C1") == 0.0
    assert await limiter.acquire("chat.postMessage", "C2") == 0.0
    assert await limiter.acquire("chat.postMessage", "C1") == 1.0
    assert trio.current_time() == 1.0


async def test_a_429_block_holds_that_method_only(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.off())
    limiter.block("chat.update", 12.0)
    assert limiter.statistics().methods["chat.update"].blocked_for_s == 12.0
    assert await limiter.acquire("users.info") == 0.0
    assert await limiter.acquire("chat.update") == 12.0
    assert trio.current_time() == 12.0


async def test_a_block_arriving_while_waiting_pushes_the_waiter_back(
    autojump_clock: object,
) -> None:
    limiter = RateLimiter(RateLimits.off().with_tiers({"chat.update": Tier(60, burst=1)}))
    await limiter.acquire("chat.update")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire, "chat.update")  # would pass at t=1
        await trio.sleep(0.5)
        limiter.block("chat.update", 4.0)
    assert trio.current_time() == 4.5


async def test_a_cancelled_waiter_gives_its_turn_to_the_next(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.off().with_tiers({"pins.add": Tier(60, burst=1)}))
    await limiter.acquire("pins.add")
    with trio.move_on_after(0.5):
        await limiter.acquire("pins.add")
    assert await limiter.acquire("pins.add") == 0.5  # the slot at t=1 was not used up
    assert trio.current_time() == 1.0
    assert limiter.statistics().waiting == 0


async def test_limits_off_never_waits_and_overrides_can_lift_one_method(
    autojump_clock: object,
) -> None:
    off = RateLimiter(RateLimits.off())
    lifted = RateLimiter(RateLimits.slack().with_tiers({"rtm.connect": None}))
    for _ in range(50):
        assert await off.acquire("conversations.create") == 0.0
        assert await lifted.acquire("rtm.connect") == 0.0
    assert RateLimits.slack().tier_for("team.info") == TIER_3
    assert trio.current_time() == 0.0


async def test_idle_channel_buckets_are_forgotten(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.slack())
    for i in range(300):
        await limiter.acquire("chat.postMessage", f"old{i}")
    await trio.sleep(10)  # the old channels' buckets are full again: nothing to remember
    for i in range(300):
        await limiter.acquire("chat.postMessage", f"new{i}")
    assert limiter.statistics().methods["chat.postMessage"].channel_buckets == 300


# --- eta: when a call made now would pass, without waiting --------------------------------------


async def test_eta_follows_the_burst_and_the_interval(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.off().with_tiers({"users.getPresence": Tier(60, burst=2)}))
    assert limiter.eta("users.getPresence") == 0.0  # never called: a full bucket
    await limiter.acquire("users.getPresence")
    assert limiter.eta("users.getPresence") == 0.0  # one of the burst left
    await limiter.acquire("users.getPresence")
    assert limiter.eta("users.getPresence") == 1.0
    await trio.sleep(0.25)
    assert limiter.eta("users.getPresence") == 0.75
    assert await limiter.acquire("users.getPresence") == 0.75  # the eta was exact
    assert trio.current_time() == 1.0
    assert limiter.eta("users.getPresence") == 1.0
    assert limiter.statistics().methods["users.getPresence"].admitted == 3


async def test_eta_counts_the_callers_queued_ahead(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.off().with_tiers({"users.getPresence": Tier(30, burst=1)}))
    await limiter.acquire("users.getPresence")
    served: list[float] = []

    async def caller() -> None:
        await limiter.acquire("users.getPresence")
        served.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for expected in (2.0, 4.0, 6.0):
            assert limiter.eta("users.getPresence") == expected
            nursery.start_soon(caller)
            await trio.testing.wait_all_tasks_blocked()
        assert limiter.eta("users.getPresence") == 8.0
        assert limiter.eta("users.info") == 0.0  # other methods are not held up
    assert served == [2.0, 4.0, 6.0]
    assert limiter.eta("users.getPresence") == 2.0


async def test_eta_sees_429_blocks_and_channels(autojump_clock: object) -> None:
    limiter = RateLimiter(RateLimits.slack())
    limiter.block("conversations.open", 7.0)  # a method with no call yet
    assert limiter.eta("conversations.open") == 7.0
    for _ in range(3):  # chat.postMessage: burst 3 per channel, then one a second
        await limiter.acquire("chat.postMessage", "D1")
    assert limiter.eta("chat.postMessage", "D1") == 1.0
    assert limiter.eta("chat.postMessage", "D2") == 0.0
    unpaced = RateLimiter(RateLimits.off())
    await unpaced.acquire("chat.update")
    unpaced.block("chat.update", 3.0)
    assert unpaced.eta("chat.update") == 3.0
    await trio.sleep(3.0)
    assert unpaced.eta("chat.update") == 0.0 and limiter.eta("conversations.open") == 4.0
