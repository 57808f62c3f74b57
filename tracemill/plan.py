"""What a build will ask of its models before it runs: per stage, inference calls, tokens and cost.

Weaver's formulas: sampling makes ``problems × n`` calls (``problems`` with an endpoint that takes
``n``); an LLM judge at most one per sample (every parsed answer in ``llm`` mode, only the undecided
ones in ``cascade``: an upper bound either way, re-judging of relabelled problems not counted);
reward models ``samples × models``; LM judges ``samples × judges × verdicts``. Prompt tokens are
counted on the rendered prompts with the model's own tokenizer where it is a local folder, else
estimated at four characters a token; completion tokens are ``max_tokens`` per call, or the mean a
previous build of the same samples measured. Cost is given where the endpoint's block has prices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracemill.build import BuildConfig
from tracemill.judging.llm_judge import judge_prompt
from tracemill.sampling.stage import template_for
from tracemill.scoring.config import LmJudgeVerifier
from tracemill.scoring.scores import lm_judge_prompt, verifier_prompt
from tracemill.teachers.base import Prompt
from tracemill.teachers.config import EndpointTeacherConfig, TeacherConfig
from tracemill.teachers.endpoint import estimate_tokens

Counter = Callable[[Prompt], int]


@dataclass(frozen=True)
class Prices:
    """An endpoint's prices per million prompt (input) and completion (output) tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


def token_counter(model: str | None) -> Counter:
    """Prompt tokens of a prompt: the local model folder's tokenizer (with its chat template), else chars / 4."""
    if model is None or not (Path(model) / "tokenizer_config.json").exists():
        return lambda prompt: estimate_tokens(prompt, 0, 1)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)

    def count(prompt: Prompt) -> int:
        if isinstance(prompt, str):
            return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        return len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))

    return count


def _model(teacher: TeacherConfig) -> str | None:
    return getattr(teacher, "model", None)


def plan(
    config: BuildConfig,
    problems: Sequence[Mapping[str, Any]],
    *,
    prices: Mapping[str, Prices] | None = None,
    measured_completion: float | None = None,
    counter: Callable[[str | None], Counter] = token_counter,
) -> list[dict[str, Any]]:
    """One row per stage that calls a model: stage, model, calls, prompt and completion tokens, cost, basis.

    ``prices`` by endpoint block name; ``measured_completion``: the mean completion tokens of a previous
    build's samples (else ``max_tokens``); ``counter(model)`` counts a prompt's tokens for that model.
    """
    prices = prices or {}
    sampling = config.sampling
    samples = len(problems) * sampling.n
    completion = measured_completion if measured_completion is not None else sampling.max_tokens
    basis = "measured mean" if measured_completion is not None else "max_tokens"
    templates = sampling.templates()
    count = counter(_model(sampling.teacher))
    prompt_tokens = [count(template_for(p, templates, sampling.prompt).render(p)) for p in problems]
    per_problem = (
        1 if isinstance(sampling.teacher, EndpointTeacherConfig) and sampling.teacher.supports_n else sampling.n
    )
    rows = [
        _row("sampling", sampling.teacher, len(problems) * per_problem, sum(prompt_tokens) * per_problem,
             round(samples * completion), f"completion: {basis}", prices),
    ]  # fmt: skip
    judge = config.judge
    if judge.uses_llm and judge.teacher is not None:
        count = counter(_model(judge.teacher))
        tokens = sum(count(judge_prompt(p["question"], p["answer"], p["answer"])) for p in problems) * sampling.n
        rows.append(
            _row("judging", judge.teacher, samples, tokens, samples * judge.max_tokens,
                 f"at most one call per sample ({judge.mode.value})", prices)
        )  # fmt: skip
    for verifier in config.scores.verifiers:
        stage = f"scores: {verifier.name}"
        if isinstance(verifier, LmJudgeVerifier):
            count = counter(_model(verifier.teacher))
            calls = samples * verifier.verdicts_per_sample
            tokens = sum(count(lm_judge_prompt(verifier_prompt(p), "")) for p in problems) * sampling.n
            tokens = round((tokens + samples * completion) * verifier.verdicts_per_sample)
            rows.append(_row(stage, verifier.teacher, calls, tokens, calls * verifier.max_tokens,
                             f"{verifier.verdicts_per_sample} verdicts per sample", prices))  # fmt: skip
        else:
            count = counter(verifier.model)
            read = [min(count(verifier_prompt(p)) + completion, verifier.max_length) for p in problems]
            rows.append({"stage": stage, "model": verifier.model, "calls": samples,
                         "prompt_tokens": round(sum(read) * sampling.n), "completion_tokens": 0, "cost": None,
                         "basis": f"{verifier.kind}: reads prompt and sample"})  # fmt: skip
    return rows


def _row(
    stage: str, teacher: TeacherConfig, calls: int, prompt_tokens: int, completion_tokens: int, basis: str,
    prices: Mapping[str, Prices],
) -> dict[str, Any]:  # fmt: skip
    name = teacher.block if isinstance(teacher, EndpointTeacherConfig) else teacher.model
    price = prices.get(teacher.block) if isinstance(teacher, EndpointTeacherConfig) else None
    return {
        "stage": stage,
        "model": name,
        "calls": calls,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost": None if price is None else price.cost(prompt_tokens, completion_tokens),
        "basis": basis,
    }
