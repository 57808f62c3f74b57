"""The vLLM offline engine as a teacher: built once, fed continuously, one engine request per sample.

``stream`` drives the engine's own loop (``LLM.enqueue``/``enqueue_chat`` and ``llm_engine.step``):
it keeps ``window`` sequences queued (twice ``max_num_seqs`` by default) and hands each request's
samples back as soon as they finish, so the engine never drains while work remains. A request
the engine rejects (a prompt longer than the context, bad parameters) becomes failed Generations
with its error kind instead of an exception.

vLLM spawns worker processes, so importing this module has no side effects and callers that
build an engine from a script need the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tracemill.teachers.base import (
    BAD_REQUEST,
    PROMPT_TOO_LONG,
    Feed,
    Generation,
    ListFeed,
    SampleRequest,
    SamplingParams,
    failed_generations,
)

log = logging.getLogger(__name__)


class VllmTeacher:
    """``vllm.LLM`` behind the teacher interface. Sample ``i`` of a request uses seed ``seed + i``:
    vLLM seeds the ``n`` children of a request that way, so a sample reruns alone with ``n=1``."""

    def __init__(self, model: str, window: int | None = None, **engine_args: Any):
        from vllm import LLM

        from tracemill import lifetime

        self.model = model
        with lifetime.reaped_with_us():  # the engine core and its workers die with this process, even on kill -9
            self.llm = LLM(model=model, **engine_args)
        self.window = window or 2 * self.llm.llm_engine.vllm_config.scheduler_config.max_num_seqs

    def generate(self, requests: Sequence[SampleRequest], params: SamplingParams) -> list[list[Generation]]:
        """Chat prompts (messages) go through the model's chat template, text prompts go in raw."""
        feed = ListFeed(requests)
        self.stream(feed, params)
        return feed.results

    def stream(self, feed: Feed, params: SamplingParams) -> None:
        """Keep ``window`` sequences in the engine until the feed is exhausted and all have finished.

        Each sample is its own engine request (``n=1``, seed ``seed + i``: what vLLM gives the ``i``-th
        child of an ``n`` request, so the samples are the same), so a finished sequence frees its slot
        in the window at once rather than when its problem's slowest sibling ends; prefix caching
        prefills the shared prompt once.
        """
        engine = self.llm.llm_engine
        in_flight: dict[str, tuple[_Open, int]] = {}  # engine request id → (its request, sample offset)
        while True:
            while len(in_flight) < self.window and (request := feed.take(0.0 if in_flight else 0.2)) is not None:
                job = _Open(request, time.perf_counter())
                for offset in range(request.n):
                    try:
                        in_flight[self._add(request, offset, params)] = (job, offset)
                    except Exception as exc:
                        kind = rejected(exc)
                        if kind is None:
                            raise
                        log.warning("the engine rejected %s sample %d: %s (%s)", request.key, offset, kind, exc)
                        job.generations += failed_generations(request, offset, 1, kind, 0.0)
                if job.done:
                    feed.finish(request, job.generations)
            if not in_flight:
                if feed.exhausted:
                    return
                continue
            if not engine.has_unfinished_requests():
                raise RuntimeError(f"the engine dropped {len(in_flight)} request(s) it had accepted")
            for output in engine.step():
                if not output.finished or output.request_id not in in_flight:
                    continue
                job, offset = in_flight.pop(output.request_id)
                job.generations.append(_generation(job.request, offset, output, time.perf_counter() - job.started))
                if job.done:
                    feed.finish(job.request, job.generations)

    def close(self) -> None:
        """Stop the engine's worker processes now rather than at interpreter exit."""
        self.llm.llm_engine.engine_core.shutdown()

    def _add(self, request: SampleRequest, offset: int, params: SamplingParams) -> str:
        """Queue sample ``offset`` of a request; returns the id its outputs carry (vLLM's enqueue returns
        the internal id: that one plus ``-`` and a random suffix)."""
        sampling = self._sampling_params(request.seed + offset, params)
        if isinstance(request.prompt, str):
            internal = self.llm.enqueue([request.prompt], [sampling], use_tqdm=False)[0]
        else:
            internal = self.llm.enqueue_chat([request.prompt], [sampling], use_tqdm=False)[0]  # type: ignore[list-item]
        return internal.rsplit("-", 1)[0]

    def _sampling_params(self, seed: int, params: SamplingParams) -> Any:
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = None
        if params.guided_regex is not None or params.guided_json is not None:
            structured = StructuredOutputsParams(regex=params.guided_regex, json=params.guided_json)
        return VllmSamplingParams(
            n=1,
            seed=seed,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            structured_outputs=structured,
            skip_special_tokens=True,
        )


def rejected(exc: Exception) -> str | None:
    """The error kind of a request the engine refused; None for errors that are not the request's fault."""
    from vllm.exceptions import VLLMClientError

    if isinstance(exc, VLLMClientError | ValueError):
        text = str(exc)
        too_long = ("maximum model length", "maximum context length", "is too long")
        return PROMPT_TOO_LONG if any(phrase in text for phrase in too_long) else BAD_REQUEST
    return None


@dataclass
class _Open:
    """A request whose samples are in the engine, and those already back."""

    request: SampleRequest
    started: float
    generations: list[Generation] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.generations) == self.request.n


def _generation(request: SampleRequest, offset: int, output: Any, elapsed: float) -> Generation:
    completion = output.outputs[0]
    return Generation(
        sample_idx=request.first_idx + offset,
        seed=request.seed + offset,
        text=completion.text,
        finish_reason=completion.finish_reason,
        prompt_tokens=len(output.prompt_token_ids or []),
        completion_tokens=len(completion.token_ids),
        latency_s=_latency(output, elapsed),
    )


def _latency(output: Any, elapsed: float) -> float:
    """The request's own time in the engine where vLLM reports it, else its wall time since it was added."""
    metrics = getattr(output, "metrics", None)
    queued = getattr(metrics, "queued_ts", 0.0)  # engine-core monotonic clock, like last_token_ts
    last = getattr(metrics, "last_token_ts", 0.0)
    if isinstance(queued, float) and isinstance(last, float) and 0.0 < queued <= last:
        return last - queued
    return elapsed
