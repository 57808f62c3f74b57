"""What every teacher backend takes and returns, and the parts of a generation they share."""

from __future__ import annotations

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


class Teacher(Protocol):
    """A backend: returns, for each request, exactly one Generation per requested sample index."""

    model: str

    def generate(self, requests: Sequence[SampleRequest], params: SamplingParams) -> list[list[Generation]]: ...


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
