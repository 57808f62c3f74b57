"""Score one shard of re-judged samples with every verifier: rows in the SCORE record, long format.

Each verifier sees the problem (its description, question and options) and the sample's text. A
reward model gives one score, a process reward model one per step (steps split by its separator),
an LM judge ``verdicts_per_sample`` verdicts, each request with its own seed, parsed strictly
(:func:`tracemill.judging.llm_judge.parse_judgement`: only a last line ``Judgement: Yes`` or ``No`` counts).
A failed sample (no response) gets a row with no score, so every sample has one row per verifier.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tracemill.config import identity_of
from tracemill.judging.llm_judge import parse_judgement
from tracemill.records import SCORE, to_table
from tracemill.sampling.prompts import prompt_fields
from tracemill.scoring.config import (
    LmJudgeVerifier,
    ProcessRewardModelVerifier,
    RewardModelVerifier,
    ScoresConfig,
    VerifierConfig,
)
from tracemill.scoring.pooling import PoolingScorer, encode
from tracemill.seeds import request_seed
from tracemill.stage import Logger, Stage, reuse_or_make, shard_summary
from tracemill.store import Dataset
from tracemill.teachers.base import SampleRequest, Teacher
from tracemill.teachers.factory import Endpoints, no_endpoints, teacher_identity

STAGE = "scores"
CODE_VERSION = "scores-1"

LM_JUDGE_PROMPT = """\
Below are a problem and a candidate solution. Decide whether the solution's final answer is correct.

Explain your reasoning in one or two sentences, then give your judgement on a last line of its own, \
exactly "Judgement: Yes" or "Judgement: No".

Problem:
{problem}

Solution:
{solution}
"""

# What a shard function gets to score with: the verifier's engine (a PoolingScorer) or judge (a Teacher).
Scorers = Callable[[VerifierConfig], Any]


def verifier_prompt(problem: Mapping[str, Any]) -> str:
    """The problem as every verifier sees it: description, question and lettered options."""
    fields = prompt_fields(problem)
    return f"{fields['problem']}\n{fields['options']}" if fields["options"] else fields["problem"]


def scored_text(row: Mapping[str, Any], which: str) -> str | None:
    """The sample's text a verifier scores: the full trace (``<think>`` reasoning, then the response) or the
    answer part only; None for a failed sample."""
    response = row.get("response")
    if response is None:
        return None
    reasoning = row.get("reasoning")
    if which == "answer" or not reasoning:
        return response
    return f"<think>\n{reasoning}\n</think>\n\n{response}"


def steps_of(text: str, separator: str) -> list[str]:
    """The steps of a text: the non-blank parts between separators, each but the last followed by it."""
    parts = [part for part in text.split(separator) if part.strip()]
    return [part + separator for part in parts[:-1]] + parts[-1:]


def verifier_identity(verifier: VerifierConfig, endpoints: Endpoints = no_endpoints) -> dict[str, Any]:
    """What decides a verifier's scores; an endpoint judge is named by its block's URL and model."""
    if isinstance(verifier, LmJudgeVerifier):
        return verifier.identity(teacher_identity(verifier.teacher, endpoints(verifier.teacher)))
    return identity_of(verifier)


def scores_stage(config: ScoresConfig, relabel: str, rejudged: str, endpoints: Endpoints = no_endpoints) -> Stage:
    """The scores stage of the re-judged samples ``rejudged`` (shard-aligned with the relabel dataset ``relabel``)."""
    identity = {"verifiers": [verifier_identity(v, endpoints) for v in config.verifiers]}
    return Stage(STAGE, "score", CODE_VERSION, identity, (relabel, rejudged), config)


@dataclass(frozen=True)
class ScoresJob:
    """Score one shard with every verifier (a :class:`~tracemill.stage.ShardJob`); ``scorers`` builds each
    verifier's engine or judge on first use, so a run whose shards all exist loads none."""

    relabel: Dataset
    verdicts: Dataset
    dataset: Dataset
    verifiers: Sequence[VerifierConfig]
    scorers: Scorers

    @property
    def outputs(self) -> tuple[Dataset, ...]:
        return (self.dataset,)

    def run(self, shard: int, force: bool, log: Logger) -> dict[str, Any]:
        def make() -> list[pa.Table]:
            problems, verdicts = self.relabel.read_shard(shard), self.verdicts.read_shard(shard)
            return [score_shard(problems, verdicts, self.verifiers, self.scorers)]

        reuse_or_make(self.outputs, shard, make, force=force)
        return shard_summary(self.dataset, shard)


def score_shard(
    problems: pa.Table, verdicts: pa.Table, verifiers: Sequence[VerifierConfig], scorers: Scorers
) -> pa.Table:
    """SCORE rows for every sample of ``verdicts`` and every verifier, verifier by verifier in sample order.

    ``problems`` is the shard's relabel table (the prompt comes from it); ``scorers(verifier)`` returns the
    verifier's PoolingScorer or judge Teacher, built on first use.
    """
    by_id = {row["problem_id"]: row for row in problems.to_pylist()}
    samples = verdicts.to_pylist()
    prompts = [verifier_prompt(by_id[row["problem_id"]]) for row in samples]
    rows: list[dict[str, Any]] = []
    for verifier in verifiers:
        if isinstance(verifier, LmJudgeVerifier):
            rows += lm_judge_rows(verifier, samples, prompts, scorers(verifier))
        else:
            rows += reward_rows(verifier, samples, prompts, scorers(verifier))
    return to_table(rows, SCORE, what=f"{STAGE} shard")


def _base(verifier: VerifierConfig, sample: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "problem_id": sample["problem_id"],
        "sample_idx": sample["sample_idx"],
        "verifier": verifier.name,
        "kind": verifier.kind,
    }


def reward_rows(
    verifier: RewardModelVerifier | ProcessRewardModelVerifier,
    samples: Sequence[Mapping[str, Any]],
    prompts: Sequence[str],
    scorer: PoolingScorer,
) -> list[dict[str, Any]]:
    """Score rows of a reward model (one score) or a process reward model (a score per step, min/max/avg)."""
    process = isinstance(verifier, ProcessRewardModelVerifier)
    inputs, where = [], []
    for index, (sample, prompt) in enumerate(zip(samples, prompts, strict=True)):
        text = scored_text(sample, verifier.text)
        if text is None or not text.strip():
            continue
        pieces = steps_of(text, verifier.step_separator) if process else [text]
        inputs.append(encode(scorer.tokenizer, prompt, pieces, verifier.max_length))
        where.append(index)
    scores = dict(zip(where, zip(inputs, scorer.score(inputs), strict=True), strict=True))
    rows = []
    for index, sample in enumerate(samples):
        row = _base(verifier, sample)
        if index in scores:
            encoded, values = scores[index]
            row.update(tokens=len(encoded.token_ids), truncated=encoded.truncated)
            if not process:
                row["score"] = values[0]
            elif values:
                low, high = min(values), max(values)
                row.update(score=low, step_scores=values, min_score=low, max_score=high)
                row["avg_score"] = statistics.fmean(values)
        rows.append(row)
    return rows


def lm_judge_prompt(problem: str, solution: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": LM_JUDGE_PROMPT.format(problem=problem.strip(), solution=solution.strip())}]


def lm_judge_rows(
    verifier: LmJudgeVerifier, samples: Sequence[Mapping[str, Any]], prompts: Sequence[str], teacher: Teacher
) -> list[dict[str, Any]]:
    """Score rows of an LM judge: ``verdicts_per_sample`` verdicts (seeds ``seed``, ``seed + 1``, …) and their mean."""
    requests, where = [], []
    for index, (sample, prompt) in enumerate(zip(samples, prompts, strict=True)):
        solution = scored_text(sample, "answer")
        if solution is None or not solution.strip():
            continue
        key = f"{sample['problem_id']}/{sample['sample_idx']}"
        seed = request_seed(verifier.seed, f"{verifier.name}\x1f{key}")
        requests.append(
            SampleRequest(key=key, prompt=lm_judge_prompt(prompt, solution), n=verifier.verdicts_per_sample, seed=seed)
        )
        where.append(index)
    answers = dict(zip(where, teacher.generate(requests, verifier.params()), strict=True))
    rows = []
    for index, sample in enumerate(samples):
        row = _base(verifier, sample)
        if index in answers:
            generations = answers[index]
            verdicts = [None if g.error is not None else _as_score(parse_judgement(g.text)) for g in generations]
            parsed = [v for v in verdicts if v is not None]
            row.update(
                verdicts=verdicts,
                score=statistics.fmean(parsed) if parsed else None,
                tokens=sum(g.completion_tokens or 0 for g in generations),
            )
        rows.append(row)
    return rows


def _as_score(verdict: bool | None) -> float | None:
    return None if verdict is None else float(verdict)
