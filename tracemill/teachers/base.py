"""What every teacher backend takes and returns, and the parts of a generation they share."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Prompt = str | list[dict[str, str]]  # raw completion text, or chat messages


@dataclass(frozen=True)
class SamplingParams:
    """Generation parameters; the same for both backends."""

    n: int = 1
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 4096
    guided_regex: str | None = None
    guided_json: dict[str, Any] | None = None


@dataclass(frozen=True)
class SampleRequest:
    """``n`` samples of one prompt: sample ``first_idx + i`` is generated with seed ``seed + i``."""

    key: str
    prompt: Prompt
    n: int
    seed: int
    first_idx: int = 0

    @property
    def sample_indices(self) -> range:
        return range(self.first_idx, self.first_idx + self.n)


@dataclass(frozen=True)
class Generation:
    """One sample as a backend returns it. ``error`` is the error kind of a request that failed for good."""

    sample_idx: int
    seed: int
    text: str | None
    reasoning: str | None = None  # an API's separate reasoning field (DeepSeek's reasoning_content)
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    error: str | None = None


# Error kinds of requests that never reached a model, shared by the backends.
PROMPT_TOO_LONG = "prompt_too_long"
BAD_REQUEST = "bad_request"


class Feed(Protocol):
    """Where a streaming teacher takes requests from, one at a time as it has room, and hands results to.

    Requests are handed out only when the teacher can start them, so the feeder decides late what
    to send (and may stop sending a problem's remaining samples).
    """

    def take(self, wait_s: float = 0.0) -> SampleRequest | None:
        """The next request, waiting up to ``wait_s`` for one; None when there is none now."""
        ...

    def finish(self, request: SampleRequest, generations: list[Generation]) -> None:
        """The Generations of a taken request (one per sample index, failed ones with an error kind)."""
        ...

    @property
    def exhausted(self) -> bool:
        """True once no request will come any more."""
        ...


class Teacher(Protocol):
    """A backend: streams requests from a feed with a bounded window in flight (``stream``), and
    returns, for a list of requests, exactly one Generation per requested sample index (``generate``)."""

    model: str

    def generate(self, requests: Sequence[SampleRequest], params: SamplingParams) -> list[list[Generation]]: ...

    def stream(self, feed: Feed, params: SamplingParams) -> None:
        """Serve ``feed`` until it is exhausted and nothing is in flight."""
        ...


class ListFeed:
    """A fixed list of requests as a feed: what ``generate`` streams; ``results`` in the list's order."""

    def __init__(self, requests: Sequence[SampleRequest]):
        self._pending = deque(enumerate(requests))
        self._taken: dict[int, list[int]] = {}
        self.results: list[list[Generation]] = [[] for _ in requests]

    def take(self, wait_s: float = 0.0) -> SampleRequest | None:
        if not self._pending:
            return None
        position, request = self._pending.popleft()
        self._taken.setdefault(id(request), []).append(position)
        return request

    def finish(self, request: SampleRequest, generations: list[Generation]) -> None:
        self.results[self._taken[id(request)].pop(0)] = sorted(generations, key=lambda g: g.sample_idx)

    @property
    def exhausted(self) -> bool:
        return not self._pending


def failed_generations(
    request: SampleRequest, offset: int, count: int, kind: str, latency_s: float
) -> list[Generation]:
    """Generations with ``error=kind`` for samples ``offset .. offset+count-1`` of a request."""
    return [
        Generation(
            sample_idx=request.first_idx + offset + i,
            seed=request.seed + offset + i,
            text=None,
            latency_s=latency_s,
            error=kind,
        )
        for i in range(count)
    ]


def split_reasoning(
    text: str, reasoning: str | None = None, prompt_opens_think: bool = False
) -> tuple[str | None, str]:
    """Split a completion into (reasoning, response) on ``<think>…</think>``.

    ``reasoning`` from the API (DeepSeek's ``reasoning_content``) wins when given. A prompt that
    already ends in ``<think>`` means the completion starts inside the reasoning. A completion
    that opens ``<think>`` and never closes it is all reasoning and has an empty response.
    """
    if reasoning is not None:
        return reasoning, text
    if prompt_opens_think:
        text = "<think>" + text
    stripped = text.lstrip()
    if not stripped.startswith("<think>"):
        return None, text
    body = stripped[len("<think>") :]
    end = body.find("</think>")
    if end < 0:
        return body.strip(), ""
    return body[:end].strip(), body[end + len("</think>") :].strip()
