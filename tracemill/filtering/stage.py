"""The filter stage: every verdict row is kept or rejected with one reason.

Each filter is a small function that returns ``None`` (keep) or a reason string. Row filters look at
one sample; group filters (duplicates, the per-problem cap) look at the samples of one problem that
passed everything before them. A row is rejected by the first filter that objects, in the order
of :func:`~tracemill.filtering.rules.reasons`, so every reason counts rows the previous filters let
through and the funnel adds up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracemill.filtering import funnel
from tracemill.filtering.config import FilterConfig, LengthOutlierConfig
from tracemill.filtering.dedup import MinHasher, NgramIndex, exact_duplicates, near_duplicates
from tracemill.filtering.rules import (
    ROW_FILTERS,
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
from tracemill.stage import Logger, Stage, reuse_or_make
from tracemill.store import Dataset

KEPT_STAGE = "kept"
REJECTED_STAGE = "rejected"
# Bump when a change here keeps or rejects other rows, or writes other fields, for the same config.
CODE_VERSION = "filters-1"


def kept_stage(config: FilterConfig, relabel: str, verdicts: str, benchmarks: Sequence[str] = ()) -> Stage:
    """The kept stage, with its rejected rows under the same fingerprint; its inputs are the judged datasets and
    the contamination benchmark files."""
    also = ((REJECTED_STAGE, "rejected"),)
    return Stage(KEPT_STAGE, "kept", CODE_VERSION, config, (relabel, verdicts, *benchmarks), also=also)


@dataclass(frozen=True)
class FilterJob:
    """Write one shard's kept and rejected rows (a :class:`~tracemill.stage.ShardJob`).

    ``plan`` is None when the run found every shard written already; its funnel counts are always
    taken from the shards as written.
    """

    relabel: Dataset
    verdicts: Dataset
    kept: Dataset
    rejected: Dataset
    plan: Plan | None

    @property
    def outputs(self) -> tuple[Dataset, ...]:
        return (self.kept, self.rejected)

    def run(self, shard: int, force: bool, log: Logger) -> dict[str, Any]:
        def make() -> tuple[pa.Table, pa.Table]:
            if self.plan is None:
                raise ValueError(f"filter shard {shard}: no filter plan given and the shard is not in {self.kept.uri}")
            return filter_shard(self.relabel.read_shard(shard), self.verdicts.read_shard(shard), self.plan, shard=shard)

        reuse_or_make(self.outputs, shard, make, force=force)
        counts = funnel.shard_counts(
            self.relabel.read_shard(shard, funnel.RELABEL_COLUMNS),
            self.verdicts.read_shard(shard, funnel.VERDICT_COLUMNS),
            self.kept.read_shard(shard, funnel.KEPT_COLUMNS),
            self.rejected.read_shard(shard, funnel.REJECTED_COLUMNS),
        )
        return {"shard": shard, "funnel": funnel.to_json(counts)}


# --- the shard ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What a shard needs besides its rows: computed once per run from all shards or benchmark files."""

    config: FilterConfig
    length_limit: float | None = None  # global scope
    contamination: NgramIndex | None = None


_PROBLEM_FIELDS = [name for name in KEPT.names if name not in VERDICT.names]


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

    full = _join(relabel, verdicts, at)
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
    for row_filter in ROW_FILTERS.values():
        if getattr(config, row_filter.toggle):
            checks.append(lambda row, f=row_filter: f.reason if f.drops(row) else None)
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


def _join(relabel: pa.Table, verdicts: pa.Table, at: list[int]) -> pa.Table:
    """The verdict columns (with the prompt each sample recorded as sent), then its problem's fields: KEPT."""
    problems = relabel.select(_PROBLEM_FIELDS).take(pa.array(at, type=pa.int64()))
    return pa.Table.from_arrays([*verdicts.columns, *problems.columns], schema=KEPT)
