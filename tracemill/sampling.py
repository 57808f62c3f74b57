"""The sampling stage: problem shards in, one sample row per (problem_id, sample_idx) out.

Sampling is the expensive stage, so a shard is generated in sub-batches of problems, each
checkpointed atomically in the store before the next starts. A rerun after a crash reads the
finished sub-batches instead of generating them again, and asks again only for the samples whose
requests had failed for good; the shard is assembled from the checkpoints, so every
(problem_id, sample_idx) appears exactly once.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tracemill.prompts import PromptTemplate
from tracemill.records import SAMPLE, to_table
from tracemill.store import Dataset
from tracemill.teachers.base import Generation, SampleRequest, SamplingParams, Teacher, split_reasoning

STAGE = "samples"
# Bump when a change here changes the rows written for the same config and teacher.
CODE_VERSION = "sampling-1"


class SamplingFailedError(RuntimeError):
    """Too many requests of a shard failed for good; the checkpoints are kept for the rerun."""


@dataclass
class ShardStats:
    """What one shard cost and produced, for the run's table artifact."""

    rows: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generated_tokens: int = 0  # completion tokens generated in this run, not read back from checkpoints
    generated_batches: int = 0
    resumed_batches: int = 0
    seconds: float = 0.0
    finish_reasons: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def tokens_per_s(self) -> float:
        """Generation speed of this run: resumed sub-batches cost no time, so their tokens do not count."""
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0


def request_seed(base_seed: int, problem_id: str) -> int:
    """The seed of a problem's request; sample ``i`` uses ``request_seed + i``, so reruns reproduce it."""
    digest = hashlib.sha256(f"{base_seed}\x1f{problem_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 2  # < 2**30, leaving room for + sample index


def template_for(
    problem: Mapping[str, Any], templates: Mapping[str, PromptTemplate], prompt: str | None
) -> PromptTemplate:
    """The configured template, else the problem's own default."""
    name = prompt or problem.get("prompt_template")
    if name is None:
        raise ValueError(f"problem {problem['problem_id']}: no prompt template configured and none on the problem")
    if name not in templates:
        raise ValueError(
            f"problem {problem['problem_id']}: unknown prompt template {name!r}; known: {sorted(templates)}"
        )
    return templates[name]


def sample_shard(
    problems: pa.Table,
    teacher: Teacher,
    params: SamplingParams,
    *,
    templates: Mapping[str, PromptTemplate],
    prompt: str | None,
    base_seed: int,
    batch_size: int,
    checkpoints: Dataset,
    max_failed_share: float,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pa.Table, ShardStats]:
    """Sample ``params.n`` traces per problem, resuming from ``checkpoints`` (one part per sub-batch)."""
    rows = problems.to_pylist()
    batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    stats = ShardStats()
    done = set(checkpoints.shard_indices())
    tables = []
    start = time.perf_counter()
    for index, batch in enumerate(batches):
        if index in done:
            table = checkpoints.read_shard(index)
            retried = _retry_failed(table, batch, teacher, params, templates, prompt, base_seed)
            if retried is not None:
                checkpoints.write_shard(index, retried)
                table = retried
            stats.resumed_batches += 1
        else:
            requests = [_request(p, params.n, templates, prompt, base_seed) for p in batch]
            table = _table(batch, requests, teacher.generate(requests, params), teacher, templates, prompt)
            checkpoints.write_shard(index, table)
            stats.generated_batches += 1
            stats.generated_tokens += pc.sum(table["completion_tokens"]).as_py() or 0
        tables.append(table)
        if progress:
            progress(index + 1, len(batches))
    stats.seconds = time.perf_counter() - start
    result = pa.concat_tables(tables) if tables else SAMPLE.empty_table()
    account(result, stats)
    if stats.rows and stats.failed / stats.rows > max_failed_share:
        kinds = ", ".join(f"{kind}: {count}" for kind, count in stats.errors.most_common())
        raise SamplingFailedError(
            f"{stats.failed} of {stats.rows} samples failed ({kinds}), above the bound of {max_failed_share:.0%}; "
            "finished sub-batches are checkpointed and a rerun asks only for the failed samples"
        )
    return result, stats


def _request(
    problem: Mapping[str, Any], n: int, templates: Mapping[str, PromptTemplate], prompt: str | None, base_seed: int
) -> SampleRequest:
    template = template_for(problem, templates, prompt)
    pid = problem["problem_id"]
    return SampleRequest(key=pid, prompt=template.render(problem), n=n, seed=request_seed(base_seed, pid))


def _table(
    batch: list[dict[str, Any]],
    requests: list[SampleRequest],
    generations: list[list[Generation]],
    teacher: Teacher,
    templates: Mapping[str, PromptTemplate],
    prompt: str | None,
) -> pa.Table:
    out = []
    for problem, request, gens in zip(batch, requests, generations, strict=True):
        got = sorted(g.sample_idx for g in gens)
        if got != list(request.sample_indices):
            raise RuntimeError(
                f"teacher returned samples {got} for {request.key}, asked for {list(request.sample_indices)}"
            )
        template = template_for(problem, templates, prompt)
        for gen in sorted(gens, key=lambda g: g.sample_idx):
            out.append(_row(problem["problem_id"], gen, teacher.model, template))
    return to_table(out, SAMPLE, what="samples")


def _row(problem_id: str, gen: Generation, teacher: str, template: PromptTemplate) -> dict[str, Any]:
    reasoning, response = (None, None)
    if gen.text is not None:
        reasoning, response = split_reasoning(gen.text, gen.reasoning, template.opens_think)
    return {
        "problem_id": problem_id,
        "sample_idx": gen.sample_idx,
        "teacher": teacher,
        "prompt_version": template.id,
        "seed": gen.seed,
        "reasoning": reasoning,
        "response": response,
        "finish_reason": gen.finish_reason,
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "latency_s": gen.latency_s,
        "error": gen.error,
    }


def _retry_failed(
    table: pa.Table,
    batch: list[dict[str, Any]],
    teacher: Teacher,
    params: SamplingParams,
    templates: Mapping[str, PromptTemplate],
    prompt: str | None,
    base_seed: int,
) -> pa.Table | None:
    """Ask again for the samples of a checkpoint whose requests had failed; None when there are none."""
    rows = table.to_pylist()
    failed = [(i, r) for i, r in enumerate(rows) if r["error"] is not None]
    if not failed:
        return None
    by_id = {p["problem_id"]: p for p in batch}
    requests = [
        SampleRequest(
            key=r["problem_id"],
            prompt=template_for(by_id[r["problem_id"]], templates, prompt).render(by_id[r["problem_id"]]),
            n=1,
            seed=request_seed(base_seed, r["problem_id"]) + r["sample_idx"],
            first_idx=r["sample_idx"],
        )
        for _, r in failed
    ]
    for (position, row), gens in zip(failed, teacher.generate(requests, replace(params, n=1)), strict=True):
        template = template_for(by_id[row["problem_id"]], templates, prompt)
        rows[position] = _row(row["problem_id"], gens[0], teacher.model, template)
    return to_table(rows, SAMPLE, what="samples")


def account(table: pa.Table, stats: ShardStats) -> ShardStats:
    """Add a sample table's rows, failures, tokens and finish reasons to ``stats``."""
    stats.rows += table.num_rows
    for row in table.select(["finish_reason", "prompt_tokens", "completion_tokens", "error"]).to_pylist():
        if row["error"] is not None:
            stats.failed += 1
            stats.errors[row["error"]] += 1
            continue
        stats.finish_reasons[row["finish_reason"] or "unknown"] += 1
        stats.prompt_tokens += row["prompt_tokens"] or 0
        stats.completion_tokens += row["completion_tokens"] or 0
    return stats
