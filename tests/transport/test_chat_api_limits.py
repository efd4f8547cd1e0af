"""The customer API's limits: the per-session message rate (on trio's clock) and the body size."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from transport.chat_errors import RateLimited, TooLarge
from transport.chat_limits import SessionRateLimiter, TokenBucket, read_body


def test_bucket_spends_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(capacity=2, rate=0.5, tokens=2, updated=0.0)
    assert bucket.try_take(0.0) == 0.0
    assert bucket.try_take(0.0) == 0.0
    assert bucket.try_take(0.0) == pytest.approx(2.0)
    assert bucket.try_take(1.0) == pytest.approx(1.0)
    assert bucket.try_take(2.0) == 0.0


async def test_a_minute_of_messages_in_a_burst_then_one_per_period(autojump_clock: object) -> None:
    limiter = SessionRateLimiter(60)
    for _ in range(60):
        limiter.check("s1")
    with pytest.raises(RateLimited) as refused:
        limiter.check("s1")
    assert refused.value.status == 429
    assert refused.value.headers() == {"Retry-After": "1"}
    limiter.check("s2")  # another session has its own budget

    start = trio.current_time()
    await trio.sleep(0.999)
    with pytest.raises(RateLimited):
        limiter.check("s1")
    await trio.sleep(0.001)
    limiter.check("s1")  # one token came back after exactly 1 s at 60 a minute
    assert trio.current_time() - start == pytest.approx(1.0)


async def test_retry_after_rounds_up_to_whole_seconds(autojump_clock: object) -> None:
    limiter = SessionRateLimiter(1)  # one a minute
    limiter.check("s")
    await trio.sleep(30)
    with pytest.raises(RateLimited) as refused:
        limiter.check("s")
    assert refused.value.retry_after == pytest.approx(30.0)
    assert refused.value.headers() == {"Retry-After": "30"}


async def test_full_buckets_are_forgotten_so_the_table_stays_small(autojump_clock: object) -> None:
    limiter = SessionRateLimiter(10)
    for i in range(63):
        limiter.check(f"s{i}")
    assert len(limiter) == 63
    await trio.sleep(60)  # everyone's bucket is full again
    limiter.check("late")  # the 64th entry triggers a sweep
    assert len(limiter) == 1
    limiter.forget("late")
    assert len(limiter) == 0


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_read_body_within_the_limit() -> None:
    assert await read_body("6", _chunks(b"abc", b"def"), 6) == b"abcdef"
    assert await read_body(None, _chunks(b"abc"), 6) == b"abc"
    assert await read_body("garbage", _chunks(b"abc"), 6) == b"abc"


async def test_read_body_refuses_a_declared_length_over_the_limit_before_reading() -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""

    with pytest.raises(TooLarge) as refused:
        await read_body("7", never(), 6)
    assert refused.value.code == "body_too_large"


async def test_read_body_stops_as_soon_as_the_stream_passes_the_limit() -> None:
    sent: list[bytes] = []

    async def stream() -> AsyncIterator[bytes]:
        for part in (b"abcd", b"efgh", b"never read"):
            sent.append(part)
            yield part

    with pytest.raises(TooLarge):
        await read_body(None, stream(), 6)
    assert sent == [b"abcd", b"efgh"]
