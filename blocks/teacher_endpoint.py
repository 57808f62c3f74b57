"""The teacher-endpoint block: an OpenAI-compatible API, its key as a secret, and its limits.

With ``shared_limits`` the request and token rates are kept by the Prefect API, as global
concurrency limits with slot decay (Prefect's rate limits) named after the block, so every run
that uses the block, on any worker, draws from the same budget: the provider's limits are per
key, not per run.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import httpx
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.concurrency.asyncio import rate_limit
from prefect.context import SettingsContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from pydantic import Field, SecretStr

from tracemill.teachers import factory
from tracemill.teachers.base import Teacher
from tracemill.teachers.config import TeacherConfig
from tracemill.teachers.factory import EndpointSettings

# Slots are taken from the API a quarter second's worth at a time, not one per request (each take is a
# round-trip), and what a run has not spent a second later is dropped, so runs cannot pile up bursts.
CHUNK_S = 0.25
HOLD_S = 1.0


class TeacherEndpoint(Block):
    """An OpenAI-compatible endpoint a teacher is sampled from (vllm serve, SGLang, DeepSeek, Together…)."""

    _block_type_name = "tracemill teacher endpoint"
    _block_type_slug = "tracemill-teacher-endpoint"
    _description = "Base URL, model, API key and rate limits of an OpenAI-compatible teacher endpoint."

    base_url: str = Field(..., description="API base URL ending in /v1.", examples=["https://api.deepseek.com/v1"])
    model: str = Field(..., min_length=1, description="Model id the endpoint serves.", examples=["deepseek-reasoner"])
    api_key: SecretStr | None = Field(None, description="API key; empty for a local server without one.")
    max_concurrency: int = Field(16, ge=1, le=4096, description="Requests in flight at once (per run).")
    requests_per_minute: float | None = Field(None, gt=0, description="Request rate limit; empty: none.")
    tokens_per_minute: float | None = Field(None, gt=0, description="Token rate limit (prompt + completion).")
    input_price_per_million: float | None = Field(
        None, ge=0, description="Price of a million prompt tokens, for `tracemill plan`'s cost; empty: unknown."
    )
    output_price_per_million: float | None = Field(
        None, ge=0, description="Price of a million completion tokens, for `tracemill plan`'s cost; empty: unknown."
    )
    shared_limits: bool = Field(
        False,
        description="Share the rate limits among all runs using this block, through Prefect global concurrency "
        "limits named after it (one API key's budget); off: each run may use the full rates.",
    )

    def settings(self, requests: bool = False) -> EndpointSettings:
        """The plain settings the teacher factory builds an endpoint teacher with; with ``requests`` (a run that
        sends some) the limiter of the shared rate limits too, set up on the Prefect API."""
        return EndpointSettings(
            base_url=self.base_url,
            model=self.model,
            api_key=self.api_key.get_secret_value() if self.api_key else None,
            max_concurrency=self.max_concurrency,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            limiter=self.shared_limiter() if requests else None,
        )

    def limit_name(self, kind: str) -> str:
        """The global concurrency limit of ``kind`` (requests or tokens) that this block's runs share."""
        if not self._block_document_name:
            raise ValueError("shared limits are named after the block: save or load it by name first")
        return f"tracemill-endpoint-{self._block_document_name}-{kind}"

    def shared_limiter(self) -> Callable[[], SharedRateLimiter] | None:
        """Create or update the block's global concurrency limits; a maker of limiters drawing on them.

        None without ``shared_limits`` or without any rate limit (the teacher then keeps its own).
        """
        rates = {"requests": self.requests_per_minute, "tokens": self.tokens_per_minute}
        buckets = {kind: per_minute for kind, per_minute in rates.items() if per_minute}
        if not self.shared_limits or not buckets:
            return None
        names = {kind: self.limit_name(kind) for kind in buckets}
        with get_client(sync_client=True) as client:
            for kind, per_minute in buckets.items():
                bucket = SharedBucket(names[kind], per_minute)
                limit = {"limit": bucket.limit, "slot_decay_per_second": bucket.rate}
                try:  # the block's current rates win
                    client.update_global_concurrency_limit(bucket.name, GlobalConcurrencyLimitUpdate(**limit))
                except ObjectNotFound:
                    try:
                        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=bucket.name, **limit))
                    except (ObjectAlreadyExists, httpx.HTTPStatusError):  # made by another run at the same moment
                        client.update_global_concurrency_limit(bucket.name, GlobalConcurrencyLimitUpdate(**limit))
        settings = SettingsContext.get()  # which API: the teacher's thread does not inherit the flow's context

        def make() -> SharedRateLimiter:
            requests, tokens = (SharedBucket(names[k], buckets[k]) if k in buckets else None for k in rates)
            return SharedRateLimiter(requests, tokens, settings)

        return make


def endpoint_settings(teacher: TeacherConfig, requests: bool = False) -> EndpointSettings | None:
    """The settings of the TeacherEndpoint block a teacher config names; None for a teacher that names none."""
    name = teacher.endpoint_block()
    return None if name is None else TeacherEndpoint.load(name).settings(requests)


def build_teacher(teacher: TeacherConfig) -> Teacher:
    """The teacher, with its block's settings and shared limits where it names an endpoint block."""
    return factory.build_teacher(teacher, endpoint_settings(teacher, requests=True))


class SharedBucket:
    """One rate limit on the Prefect API, spent locally from slots taken a chunk at a time.

    The limit holds one second's worth (the burst) and decays at the rate. Tokens reserved but not
    used go back to the API in chunks; tokens used beyond the reservation are a debt the next take
    pays first.
    """

    def __init__(self, name: str, per_minute: float):
        self.name = name
        self.rate = per_minute / 60.0
        self.limit = max(1, math.ceil(self.rate))
        self.chunk = max(1, min(self.limit, round(self.rate * CHUNK_S)))
        self.held = 0.0
        self.expires = 0.0
        self.unused = 0.0

    async def take(self, amount: float) -> None:
        if time.monotonic() >= self.expires:
            self.held = min(self.held, 0.0)  # drop what was not spent in time, keep a debt
        while self.held < amount:
            occupy = min(self.limit, max(self.chunk, math.ceil(amount - self.held)))
            await rate_limit(self.name, occupy=occupy, strict=True)
            self.held += occupy
            self.expires = time.monotonic() + HOLD_S
        self.held -= amount

    async def give(self, amount: float) -> None:
        if amount < 0:
            self.held += amount
            return
        self.unused += amount
        if self.unused >= self.chunk:
            slots, self.unused = int(self.unused), self.unused - int(self.unused)
            async with get_client() as client:
                await client.release_concurrency_slots(names=[self.name], slots=slots, occupancy_seconds=HOLD_S)


class SharedRateLimiter:
    """The teacher's limiter (``tracemill.teachers.ratelimit.Limiter``) on a block's shared limits."""

    def __init__(self, requests: SharedBucket | None, tokens: SharedBucket | None, settings: SettingsContext):
        self.requests = requests
        self.tokens = tokens
        self._settings = settings
        self._lock = asyncio.Lock()

    def _api(self) -> SettingsContext:
        """The settings (which Prefect API) of the run that made the limiter, for this call."""
        return SettingsContext(profile=self._settings.profile, settings=self._settings.settings)

    async def acquire(self, requests: int, tokens: float) -> None:
        async with self._lock:  # one queue for both limits, as the local limiter has
            with self._api():
                if self.requests is not None:
                    await self.requests.take(requests)
                if self.tokens is not None:
                    await self.tokens.take(tokens)

    async def release(self, tokens: float, used: float | None) -> None:
        if self.tokens is not None and used is not None:
            with self._api():
                await self.tokens.give(tokens - used)
