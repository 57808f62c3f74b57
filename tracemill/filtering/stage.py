"""The filter stage: every verdict row is kept or rejected with one reason.

Each filter is a small function that returns ``None`` (keep) or a reason string. Row filters look at
one sample; group filters (duplicates, the per-problem cap) look at the samples of one problem that
passed everything before them. A row is rejected by the first filter that objects, in the order
of :data:`REASONS`, so every reason counts rows the previous filters let through and the funnel adds up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracemill.filtering.config import FilterConfig, LengthOutlierConfig
from tracemill.filtering.dedup import MinHasher, NgramIndex, exact_duplicates, near_duplicates
from tracemill.filtering.rules import (
    contaminated,
    label,
    length_bound,
    multiple_answers,
    no_reasoning,
    over_limit,
    sampling_failed,
    too_long,
    truncated,
)
from tracemill.records import KEPT, REJECTED, VERDICT
from tracemill.sampling.prompts import PromptTemplate, templates

KEPT_STAGE = "kept"
REJECTED_STAGE = "rejected"
# Bump when a change here keeps or rejects other rows, or writes other fields, for the same config.
CODE_VERSION = "filters-1"


# --- the shard ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What a shard needs besides its rows: computed once per run from all shards or benchmark files."""

    config: FilterConfig
    length_limit: float | None = None  # global scope
    contamination: NgramIndex | None = None

    @property
    def templates(self) -> dict[str, PromptTemplate]:
        return {t.id: t for t in templates(p.template() for p in self.config.custom_prompts).values()}


_PROBLEM_FIELDS = [name for name in KEPT.names if name not in VERDICT.names and name not in ("system", "prompt")]


def filter_shard(relabel: pa.Table, verdicts: pa.Table, plan: Plan, *, shard: int = 0) -> tuple[pa.Table, pa.Table]:
    """Split a verdict shard into (kept, rejected) tables; ``relabel`` holds the shard's problems."""
    config = plan.config
    pids = relabel["problem_id"].to_pylist()
    position = {pid: i for i, pid in enumerate(pids)}
    rows = _rows(verdicts)
    at = []
    for i, row in enumerate(rows):
        if row["problem_id"] not in position:
            raise ValueError(
                f"verdicts shard {shard}: row {i} (problem {row['problem_id']}, sample {row['sample_idx']}) "
                "has no problem in the relabel shard: are the datasets shard-aligned?"
            )
        at.append(position[row["problem_id"]])
    questions = relabel["question"].to_pylist()
    answer_types = relabel["answer_type"].to_pylist()
    dirty = set()
    if plan.contamination is not None:
        dirty = {pid for pid, q in zip(pids, questions, strict=True) if contaminated(q, plan.contamination)}

    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        row["answer_type"] = answer_types[at[i]]
        groups.setdefault(row["problem_id"], []).append(i)
    reasons: list[str | None] = [None] * len(rows)
    group_checks = _group_checks(config)
    for pid, members in groups.items():
        members.sort(key=lambda i: rows[i]["sample_idx"])
        limit = plan.length_limit
        if config.length is not None and config.length.scope == "problem":
            limit = _problem_bound([rows[i] for i in members], config.length)
        checks = _row_checks(config, limit, pid in dirty)
        alive = []
        for i in members:
            reasons[i] = next((r for r in (check(rows[i]) for check in checks) if r), None)
            if reasons[i] is None:
                alive.append(i)
        for group_check in group_checks:
            found = group_check([rows[i] for i in alive])
            for i, reason in zip(alive, found, strict=True):
                reasons[i] = reason
            alive = [i for i, reason in zip(alive, found, strict=True) if reason is None]

    full = _join(relabel, verdicts, at, rows, plan.templates, shard)
    keep = pa.array([r is None for r in reasons], type=pa.bool_())
    kept = full.filter(keep)
    rejected = full.filter(pc.invert(keep))
    reason_column = pa.array([r for r in reasons if r is not None], type=pa.string())
    rejected = pa.Table.from_arrays([*rejected.columns, reason_column], schema=REJECTED)
    return kept, rejected


def _rows(verdicts: pa.Table) -> list[dict[str, Any]]:
    names = ["problem_id", "sample_idx", "reasoning", "response", "finish_reason", "completion_tokens"]
    names += ["error", "correct"]
    columns = {name: verdicts[name].to_pylist() for name in names}
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _row_checks(config: FilterConfig, limit: float | None, is_dirty: bool) -> list[Callable[[Any], str | None]]:
    checks: list[Callable[[Any], str | None]] = [sampling_failed]
    if is_dirty:
        checks.append(lambda row: "contaminated")
    if config.drop_truncated:
        checks.append(truncated)
    if config.require_reasoning:
        checks.append(no_reasoning)
    if config.single_answer:
        checks.append(multiple_answers)
    if config.length is not None:
        checks.append(lambda row: too_long(row, limit))
    if config.correct_only:
        checks.append(label)
    return checks


def _group_checks(config: FilterConfig) -> list[Callable[[list[dict[str, Any]]], list[str | None]]]:
    checks: list[Callable[[list[dict[str, Any]]], list[str | None]]] = []
    if config.exact_dedup:
        checks.append(exact_duplicates)
    if config.near_dedup is not None:
        hasher, threshold = MinHasher(config.near_dedup), config.near_dedup.threshold
        checks.append(lambda rows: near_duplicates(rows, hasher, threshold))
    if config.max_per_problem is not None:
        limit = config.max_per_problem
        checks.append(lambda rows: over_limit(rows, limit))
    return checks


def _problem_bound(rows: list[dict[str, Any]], config: LengthOutlierConfig) -> float | None:
    tokens = [r["completion_tokens"] for r in rows if r["error"] is None and r["completion_tokens"] is not None]
    if len(tokens) < config.min_samples:
        return None
    return length_bound(np.asarray(tokens, dtype=np.float64), config)


def _join(
    relabel: pa.Table,
    verdicts: pa.Table,
    at: list[int],
    rows: list[dict[str, Any]],
    known: Mapping[str, PromptTemplate],
    shard: int,
) -> pa.Table:
    """The verdict columns, then each row's problem fields and rendered prompt, in the KEPT schema."""
    problems = relabel.select(_PROBLEM_FIELDS).take(pa.array(at, type=pa.int64()))
    versions = verdicts["prompt_version"].to_pylist()
    rendered: dict[tuple[int, str], tuple[str | None, str]] = {}
    system, prompt = [], []
    for i, (index, version) in enumerate(zip(at, versions, strict=True)):
        key = (index, version)
        if key not in rendered:
            if version not in known:
                raise ValueError(
                    f"verdicts shard {shard}: row {i} (problem {rows[i]['problem_id']}): prompt_version {version!r} "
                    "is not a known template; add the sampling stage's custom prompts to filter_config.custom_prompts"
                )
            rendered[key] = render(known[version], relabel.slice(index, 1).to_pylist()[0])
        system.append(rendered[key][0])
        prompt.append(rendered[key][1])
    columns = [*verdicts.columns, *problems.columns, pa.array(system, pa.string()), pa.array(prompt, pa.string())]
    return pa.Table.from_arrays(columns, schema=KEPT)


def render(template: PromptTemplate, problem: Mapping[str, Any]) -> tuple[str | None, str]:
    """(system message, prompt text) of a problem: the user message of a chat prompt, or the completion text."""
    rendered = template.render(problem)
    if isinstance(rendered, str):
        return None, rendered
    system = next((m["content"] for m in rendered if m["role"] == "system"), None)
    return system, "\n\n".join(m["content"] for m in rendered if m["role"] == "user")
