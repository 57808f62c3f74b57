"""Token buckets for an API's requests-per-minute and tokens-per-minute limits.

A request reserves from every bucket at once, under one lock, so requests leave in the order they
asked and no bucket's wait lets another's tokens pile up into a burst. A reservation larger than a
bucket holds waits for a full bucket and leaves it in debt, so long-run rates still hold; the
tokens-per-minute reservation is an estimate settled with the actual usage once it is known.

:class:`Limiter` is what the endpoint teacher asks before and after each HTTP request; the token
buckets here keep one process's limits, and the flows inject one kept by the Prefect API when
several runs share an API key (``blocks.teacher_endpoint``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """``per_minute`` tokens a minute, holding at most ``burst`` (default: one second's worth, at least 1).

    A small burst keeps short windows under the limit too, not just whole minutes.
    """

    def __init__(self, per_minute: float, burst: float | None = None, *, clock: Clock = time.monotonic):
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute}")
        self.rate = per_minute / 60.0
        self.capacity = burst if burst is not None else max(1.0, self.rate)
        self.level = self.capacity
        self._clock = clock
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
        self._updated = now

    def delay(self, amount: float) -> float:
        """Seconds until ``amount`` (or a full bucket, for more than it holds) is available."""
        self._refill()
        shortfall = min(amount, self.capacity) - self.level
        # Refills are floats: a rounding residue would ask for waits too short to move the clock.
        return shortfall / self.rate if shortfall > 1e-9 else 0.0

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount

    def give(self, amount: float) -> None:
        """Return tokens (a negative amount takes more, e.g. when usage exceeded the estimate)."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


class Limiter(Protocol):
    """Rate limits around HTTP requests: reserve before sending, settle the token estimate after."""

    async def acquire(self, requests: int, tokens: float) -> None:
        """Wait until ``requests`` carrying ``tokens`` (an estimate) may be sent, and reserve them."""

    async def release(self, tokens: float, used: float | None) -> None:
        """The requests are done: settle the ``tokens`` reserved with those ``used`` (None: the estimate stands)."""


class RateLimiter:
    """A request-rate bucket and a token-rate bucket, either optional, reserved together (one process's)."""

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ):
        self.requests = TokenBucket(requests_per_minute, clock=clock) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, clock=clock) if tokens_per_minute else None
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def acquire(self, requests: int, tokens: float) -> None:
        wants: Sequence[tuple[TokenBucket, float]] = [
            (bucket, amount)
            for bucket, amount in ((self.requests, requests), (self.tokens, tokens))
            if bucket is not None
        ]
        if not wants:
            return
        async with self._lock:
            while (wait := max(bucket.delay(amount) for bucket, amount in wants)) > 0:
                await self._sleep(wait)
            for bucket, amount in wants:
                bucket.take(amount)

    async def release(self, tokens: float, used: float | None) -> None:
        if self.tokens is not None and used is not None:
            self.tokens.give(tokens - used)
