"""An OpenAI-compatible endpoint as a teacher: ``vllm serve``, SGLang, DeepSeek, Together, SiliconFlow.

All requests of a teacher run on one private event loop in a background thread, so ``generate``
works the same from scripts, worker threads and a running event loop's thread, and the
concurrency bound, rate limits and connection pool are shared by every caller. Retries are ours
alone (the openai client's are off): exponential backoff with full jitter on 429, 5xx, timeouts
and connection errors, honouring ``Retry-After``. A request that fails for good becomes
Generations with ``text=None`` and a short ``error`` kind; one bad request never fails a batch.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import openai

from tracemill.teachers.base import (
    BAD_REQUEST,
    Feed,
    Generation,
    ListFeed,
    Prompt,
    SampleRequest,
    SamplingParams,
    failed_generations,
)
from tracemill.teachers.ratelimit import Limiter, RateLimiter

log = logging.getLogger(__name__)


# Error kinds a Generation may carry.
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
CONNECTION = "connection"
AUTH = "auth"
MALFORMED = "malformed"


@dataclass(frozen=True)
class Failure:
    """Why one attempt failed: the error kind, whether another attempt may help, and the server's wait."""

    kind: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else self.kind


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify(exc: BaseException) -> Failure | None:
    """Map an exception of one attempt to a Failure; None for exceptions that are bugs, not bad requests."""
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return Failure(TIMEOUT, True)
    if isinstance(exc, openai.APIConnectionError):
        return Failure(CONNECTION, True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
        if status == 429:
            return Failure(RATE_LIMITED, True, status, retry_after)
        if status == 408:
            return Failure(TIMEOUT, True, status, retry_after)
        if status >= 500 or status == 409:
            return Failure(SERVER_ERROR, True, status, retry_after)
        if status in (401, 403):
            return Failure(AUTH, False, status)
        return Failure(BAD_REQUEST, False, status)
    if isinstance(exc, openai.APIResponseValidationError | ValueError):  # JSONDecodeError is a ValueError
        return Failure(MALFORMED, False)
    return None


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max, base * 2**attempt)], so retrying clients spread out."""
    return rng.uniform(0.0, min(max_s, base_s * 2.0**attempt))


def messages_of(prompt: Prompt) -> list[dict[str, str]]:
    """Chat messages of a prompt; a text prompt is one user message."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]


def estimate_tokens(prompt: Prompt, max_tokens: int, n: int) -> int:
    """What a request may cost before it is sent: prompt characters / 4 (+4 a message) and every choice in full."""
    if isinstance(prompt, str):
        prompt_tokens = len(prompt) // 4
    else:
        prompt_tokens = sum(len(m.get("content") or "") // 4 + 4 for m in prompt)
    return prompt_tokens + max_tokens * n


def split_tokens(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder, so the parts sum to it; even if all 0)."""
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    scale = sum(weights)
    exact = [total * w / scale for w in weights]
    parts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _reasoning_of(message: Any) -> str | None:
    """DeepSeek's ``reasoning_content``, or vLLM's ``reasoning``; None when the server sends neither."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str):
            return value
    return None


def parse_choices(response: Any, chat: bool, count: int) -> list[tuple[str, str | None, str | None]]:
    """(text, reasoning, finish_reason) of choices 0..count-1; raises ValueError on a body that lacks them."""
    if not hasattr(response, "choices") or not isinstance(response.choices, list):
        raise ValueError("response has no choices")
    by_index = {}
    for position, choice in enumerate(response.choices):
        index = getattr(choice, "index", None)
        by_index[index if isinstance(index, int) else position] = choice
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        raise ValueError(f"response lacks choices {missing}")
    parsed = []
    for i in range(count):
        choice = by_index[i]
        if chat:
            message = choice.message
            text, reasoning = message.content or "", _reasoning_of(message)
        else:
            text, reasoning = choice.text or "", None
        if not isinstance(text, str):
            raise ValueError(f"choice {i} text is {type(text).__name__}")
        parsed.append((text, reasoning, choice.finish_reason))
    return parsed


def completion_tokens_per_choice(
    total: int, choices: Sequence[tuple[str, str | None, str | None]], max_tokens: int
) -> list[int]:
    """Split a response's completion tokens across its choices, which OpenAI-style usage does not count.

    A choice cut at ``max_tokens`` (finish ``length``) generated exactly that many; the rest are
    split across the other choices in proportion to the characters each generated (text and
    reasoning). With one choice, or a total the cut ones do not fit in, it is all proportional.
    """
    weights = [len(text) + len(reasoning or "") for text, reasoning, _ in choices]
    cut = [i for i, (_, _, finish) in enumerate(choices) if finish == "length"]
    rest = total - max_tokens * len(cut)
    if len(choices) == 1 or not cut or rest < 0:
        return split_tokens(total, weights)
    others = [i for i in range(len(choices)) if i not in cut]
    parts = dict(zip(others, split_tokens(rest, [weights[i] for i in others]), strict=True))
    return [max_tokens if i in cut else parts[i] for i in range(len(choices))]


def generations_from(
    response: Any,
    chat: bool,
    request: SampleRequest,
    offset: int,
    count: int,
    latency_s: float,
    max_tokens: int,
) -> list[Generation]:
    """Generations for samples ``offset .. offset+count-1`` of ``request`` from one response.

    Every choice gets the response's prompt tokens; its completion tokens are split across choices.
    """
    choices = parse_choices(response, chat, count)
    usage = getattr(response, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None)
    completion_tokens = getattr(usage, "completion_tokens", None)
    per_choice: list[int | None] = [None] * count
    if isinstance(completion_tokens, int):
        per_choice = list(completion_tokens_per_choice(completion_tokens, choices, max_tokens))
    return [
        Generation(
            sample_idx=request.first_idx + offset + i,
            seed=request.seed + offset + i,
            text=text,
            reasoning=reasoning,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None,
            completion_tokens=per_choice[i],
            latency_s=latency_s,
        )
        for i, (text, reasoning, finish_reason) in enumerate(choices)
    ]


def tokens_used(generations: Sequence[Generation]) -> int | None:
    """Prompt plus completion tokens of one response's Generations; None when the server sent no usage."""
    if not generations or any(g.prompt_tokens is None or g.completion_tokens is None for g in generations):
        return None
    return (generations[0].prompt_tokens or 0) + sum(g.completion_tokens or 0 for g in generations)


class EndpointTeacher:
    """``openai.AsyncOpenAI`` behind the teacher interface.

    Like the offline engine, chat prompts (messages) go to the chat completions API and text
    prompts to the completions API, raw, so a template that ends inside ``<think>`` is continued
    rather than answered. With ``supports_n`` one HTTP request asks for a request's ``n`` samples
    with ``seed=request.seed`` (vLLM seeds choice ``i`` with ``seed + i``); otherwise each sample is
    its own request with ``n=1`` and seed ``request.seed + i``. ``latency_s`` is the duration of the
    attempt that produced the result (for failures: from the first attempt to giving up). Call
    ``close()`` when done. ``limiter`` makes the rate limiter on the teacher's loop (the flows pass
    one kept by the Prefect API when runs share limits); by default the per-minute limits are this
    process's own token buckets.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        max_concurrency: int = 16,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        timeout_s: float = 600.0,
        max_retries: int = 6,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        supports_n: bool = False,
        limiter: Callable[[], Limiter] | None = None,
    ):
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must not be negative, got {max_retries}")
        self.base_url = base_url
        self.model = model
        self._api_key = api_key
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.supports_n = supports_n
        self._make_limiter = limiter or (lambda: RateLimiter(requests_per_minute, tokens_per_minute))
        self._rng = random.Random()
        self._start_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter: Limiter | None = None

    def __repr__(self) -> str:
        limits = f"rpm={self.requests_per_minute}, tpm={self.tokens_per_minute}"
        return (
            f"EndpointTeacher(base_url={self.base_url!r}, model={self.model!r}, "
            f"max_concurrency={self.max_concurrency}, {limits}, supports_n={self.supports_n})"
        )

    def generate(self, requests: Sequence[SampleRequest], params: SamplingParams) -> list[list[Generation]]:
        """Blocking; safe from any thread, including one running an event loop."""
        self._check(requests)
        future = asyncio.run_coroutine_threadsafe(self._generate(requests, params), self._ensure_loop())
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        """Close the HTTP client and stop the background loop; a later call starts them afresh."""
        with self._start_lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return
            if threading.current_thread() is thread:
                raise RuntimeError("EndpointTeacher.close() called from its own event loop")
            asyncio.run_coroutine_threadsafe(self._close_client(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> EndpointTeacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, requests: Sequence[SampleRequest]) -> None:
        if self._thread is not None and threading.current_thread() is self._thread:
            raise RuntimeError("EndpointTeacher called from its own event loop; that would deadlock")

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="tracemill-endpoint", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
                self._semaphore = asyncio.Semaphore(self.max_concurrency)
                self._limiter = self._make_limiter()
                self._client = None
            return self._loop

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:  # made on the teacher's loop, whose connections it keeps
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key or "EMPTY",  # local servers take no key, but the client wants one
                timeout=self.timeout_s,
                max_retries=0,
            )
        return self._client

    async def _close_client(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def stream(self, feed: Feed, params: SamplingParams) -> None:
        """Blocking: serve ``feed`` with one sliding window of requests until it is exhausted."""
        self._check([])
        future = asyncio.run_coroutine_threadsafe(self._stream(feed, params), self._ensure_loop())
        try:
            future.result()
        except BaseException:
            future.cancel()
            raise

    async def _generate(self, requests: Sequence[SampleRequest], params: SamplingParams) -> list[list[Generation]]:
        feed = ListFeed(requests)
        await self._stream(feed, params)
        return feed.results

    async def _stream(self, feed: Feed, params: SamplingParams) -> None:
        """Keep ``2 * max_concurrency`` HTTP requests started (the semaphore lets ``max_concurrency`` run),
        taking the next request from the feed as soon as one finishes, across every caller's batch."""
        window = 2 * self.max_concurrency
        calls: dict[asyncio.Task[list[Generation]], SampleRequest] = {}
        open_requests: dict[int, list[Any]] = {}  # id(request) → [calls left, Generations so far]
        try:
            while True:
                while len(calls) < window and (request := feed.take()) is not None:
                    self._start(feed, request, params, calls, open_requests)
                if not calls:
                    if feed.exhausted:
                        return
                    if (request := await asyncio.to_thread(feed.take, 0.2)) is not None:
                        self._start(feed, request, params, calls, open_requests)
                    continue
                done, _ = await asyncio.wait(calls, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
                for call in done:
                    request = calls.pop(call)
                    state = open_requests[id(request)]
                    state[0] -= 1
                    state[1].extend(call.result())
                    if state[0] == 0:
                        del open_requests[id(request)]
                        feed.finish(request, sorted(state[1], key=lambda g: g.sample_idx))
        finally:
            for call in calls:
                call.cancel()

    def _start(
        self,
        feed: Feed,
        request: SampleRequest,
        params: SamplingParams,
        calls: dict[asyncio.Task[list[Generation]], SampleRequest],
        open_requests: dict[int, list[Any]],
    ) -> None:
        """Start the HTTP request(s) of one request: one for all its samples with ``supports_n``, else one each."""
        if request.n <= 0:
            feed.finish(request, [])
            return
        parts = [(0, request.n)] if self.supports_n else [(i, 1) for i in range(request.n)]
        open_requests[id(request)] = [len(parts), []]
        for offset, count in parts:
            calls[asyncio.ensure_future(self._request(request, params, offset, count))] = request

    def _body(self, request: SampleRequest, params: SamplingParams, seed: int, count: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "n": count,
            "seed": seed,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if isinstance(request.prompt, str):
            body["prompt"] = request.prompt
        else:
            body["messages"] = messages_of(request.prompt)
        structured = {}
        if params.guided_regex is not None:
            structured["regex"] = params.guided_regex
        if params.guided_json is not None:
            structured["json"] = params.guided_json
        if structured:
            body["extra_body"] = {"structured_outputs": structured}  # vLLM's structured outputs
        return body

    async def _request(
        self, request: SampleRequest, params: SamplingParams, offset: int, count: int
    ) -> list[Generation]:
        """Samples ``offset .. offset+count-1`` of a request from one HTTP request, retried while that may help."""
        assert self._semaphore is not None and self._limiter is not None
        body = self._body(request, params, request.seed + offset, count)
        chat = not isinstance(request.prompt, str)
        create = self._get_client().chat.completions.create if chat else self._get_client().completions.create
        estimate = estimate_tokens(request.prompt, params.max_tokens, count)
        first_start = time.perf_counter()
        attempt = 0
        while True:
            async with self._semaphore:
                await self._limiter.acquire(1, estimate)
                generations, failure, detail = await self._attempt(create, body, chat, request, offset, count)
                if failure is None:
                    await self._limiter.release(estimate, tokens_used(generations))
                else:  # a timed-out request may have been served and counted; the other failures were not
                    await self._limiter.release(estimate, estimate if failure.kind == TIMEOUT else 0)
            if failure is None:
                return generations
            first = request.first_idx + offset
            where = (
                f"{request.key} sample {first}" if count == 1 else f"{request.key} samples {first}..{first + count - 1}"
            )
            if not failure.retryable or attempt >= self.max_retries:
                log.warning("giving up on %s after %d attempt(s): %s (%s)", where, attempt + 1, failure.kind, detail)
                return failed_generations(request, offset, count, failure.kind, time.perf_counter() - first_start)
            if failure.retry_after is not None:
                delay = min(failure.retry_after, self.backoff_max_s)
            else:
                delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)
            attempt += 1
            log.info(
                "retrying %s after %s (retry %d of %d) in %.2fs",
                where,
                failure.describe(),
                attempt,
                self.max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    async def _attempt(
        self, create: Any, body: dict[str, Any], chat: bool, request: SampleRequest, offset: int, count: int
    ) -> tuple[list[Generation], Failure | None, str]:
        """One HTTP request: its Generations, or why it failed and a redacted description of the error."""
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await create(**body)
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            return [], failure, _redact(_short(exc), self._api_key)
        try:
            elapsed = time.perf_counter() - start
            generations = generations_from(response, chat, request, offset, count, elapsed, body["max_tokens"])
            return generations, None, ""
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:  # a 200 body without the fields
            return [], Failure(MALFORMED, False), _redact(_short(exc), self._api_key)


def _short(exc: BaseException, limit: int = 200) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[:limit] + "…"
