"""Token buckets on an injected clock: spacing, debt for large reservations, settling, one queue for both limits."""

from __future__ import annotations

import asyncio

import pytest

from tracemill.teachers.ratelimit import RateLimiter, TokenBucket


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def _limiter(clock: FakeClock, rpm: float | None = None, tpm: float | None = None) -> RateLimiter:
    return RateLimiter(rpm, tpm, clock=clock, sleep=clock.sleep)


def test_requests_are_spaced_by_the_rate_after_the_burst():
    clock = FakeClock()
    limiter = _limiter(clock, rpm=120)  # 2 a second, burst of 2
    sent = []

    async def run() -> None:
        for _ in range(10):
            await limiter.acquire(1, 0)
            sent.append(clock.now)

    asyncio.run(run())
    assert sent[:2] == [0.0, 0.0]
    assert sent[-1] == pytest.approx(4.0)
    gaps = [b - a for a, b in zip(sent[1:], sent[2:], strict=False)]
    assert gaps == pytest.approx([0.5] * 8)


def test_a_reservation_larger_than_the_bucket_waits_for_it_full_and_leaves_debt():
    clock = FakeClock()
    limiter = _limiter(clock, tpm=60)  # 1 token a second, bucket of 1

    async def run() -> list[float]:
        times = []
        for amount in (5, 1, 1):
            await limiter.acquire(1, amount)
            times.append(clock.now)
        return times

    # 5 goes at once (full bucket) and leaves -4; the next needs 1 token: 5 s later; then 1 s more.
    assert asyncio.run(run()) == pytest.approx([0.0, 5.0, 6.0])


def test_releasing_returns_what_was_not_used_and_charges_what_was():
    clock = FakeClock()
    bucket_limiter = _limiter(clock, tpm=600)  # 10 a second, bucket of 10
    asyncio.run(bucket_limiter.acquire(1, 10))
    assert bucket_limiter.tokens is not None
    assert bucket_limiter.tokens.level == pytest.approx(0)
    asyncio.run(bucket_limiter.release(10, 4))
    assert bucket_limiter.tokens.level == pytest.approx(6)
    asyncio.run(bucket_limiter.release(2, 12))  # used more than estimated
    assert bucket_limiter.tokens.level == pytest.approx(-4)
    asyncio.run(bucket_limiter.release(10, None))  # no usage reported: the estimate stands
    assert bucket_limiter.tokens.level == pytest.approx(-4)
    asyncio.run(bucket_limiter.release(100, 0))
    assert bucket_limiter.tokens.level == pytest.approx(10)  # never above the bucket


def test_both_limits_are_reserved_together_in_arrival_order():
    clock = FakeClock()
    limiter = _limiter(clock, rpm=60, tpm=600)  # 1 request a second; 10 tokens a second
    order: list[tuple[int, float]] = []

    async def one(i: int, tokens: float) -> None:
        await limiter.acquire(1, tokens)
        order.append((i, clock.now))

    async def run() -> None:
        await asyncio.gather(*(one(i, tokens) for i, tokens in enumerate([10, 30, 1, 1])))

    asyncio.run(run())
    assert [i for i, _ in order] == [0, 1, 2, 3]
    # 0 at once; 1 waits for a full token bucket (1 s) and leaves -20; 2 waits for 1 token (2.1 s); 3 for 1 request.
    assert [t for _, t in order] == pytest.approx([0.0, 1.0, 3.1, 4.1])


def test_no_limits_never_wait():
    clock = FakeClock()
    limiter = _limiter(clock)
    asyncio.run(limiter.acquire(1, 1e9))
    assert clock.sleeps == []


def test_bucket_rejects_a_non_positive_rate():
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)
