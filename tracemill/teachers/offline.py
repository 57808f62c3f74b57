"""The vLLM offline engine as a teacher: built once, fed large batches, ``n`` samples per request.

vLLM spawns worker processes, so importing this module has no side effects and callers that
build an engine from a script need the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tracemill.teachers.base import Generation, SampleRequest, SamplingParams


class VllmTeacher:
    """``vllm.LLM`` behind the teacher interface. Sample ``i`` of a request uses seed ``seed + i``:
    vLLM seeds the ``n`` children of a request that way, so a sample reruns alone with ``n=1``."""

    def __init__(self, model: str, **engine_args: Any):
        from vllm import LLM

        self.model = model
        self.llm = LLM(model=model, **engine_args)

    def generate(self, requests: Sequence[SampleRequest], params: SamplingParams) -> list[list[Generation]]:
        """Chat prompts (messages) go through the model's chat template, text prompts go in raw."""
        results: list[list[Generation]] = [[] for _ in requests]
        chat = [i for i, r in enumerate(requests) if not isinstance(r.prompt, str)]
        raw = [i for i, r in enumerate(requests) if isinstance(r.prompt, str)]
        for indices, run in ((chat, self.llm.chat), (raw, self.llm.generate)):
            if not indices:
                continue
            start = time.perf_counter()
            outputs = run(
                [requests[i].prompt for i in indices],
                [self._sampling_params(requests[i], params) for i in indices],
                use_tqdm=False,
            )
            elapsed = time.perf_counter() - start
            for i, output in zip(indices, outputs, strict=True):
                results[i] = _generations(requests[i], output, elapsed)
        return results

    def close(self) -> None:
        """Stop the engine's worker processes now rather than at interpreter exit."""
        self.llm.llm_engine.engine_core.shutdown()

    def _sampling_params(self, request: SampleRequest, params: SamplingParams) -> Any:
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = None
        if params.guided_regex is not None or params.guided_json is not None:
            structured = StructuredOutputsParams(regex=params.guided_regex, json=params.guided_json)
        return VllmSamplingParams(
            n=request.n,
            seed=request.seed,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            structured_outputs=structured,
            skip_special_tokens=True,
        )


def _generations(request: SampleRequest, output: Any, elapsed: float) -> list[Generation]:
    prompt_tokens = len(output.prompt_token_ids or [])
    latency = _latency(output, elapsed)
    by_index = {completion.index: completion for completion in output.outputs}
    return [
        Generation(
            sample_idx=request.first_idx + i,
            seed=request.seed + i,
            text=by_index[i].text,
            finish_reason=by_index[i].finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(by_index[i].token_ids),
            latency_s=latency,
        )
        for i in range(request.n)
    ]


def _latency(output: Any, elapsed: float) -> float:
    """The request's own time in the engine where vLLM reports it, else the batch's wall time."""
    metrics = getattr(output, "metrics", None)
    queued = getattr(metrics, "queued_ts", 0.0)  # engine-core monotonic clock, like last_token_ts
    last = getattr(metrics, "last_token_ts", 0.0)
    if isinstance(queued, float) and isinstance(last, float) and 0.0 < queued <= last:
        return last - queued
    return elapsed
