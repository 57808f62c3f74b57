"""Judging tasks: one task per shard and stage (verdicts, relabel, re-judged), cached by (fingerprint, shard).

A shard already in the store is reused, cache record or not; its figures are counted again from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from prefect import get_run_logger

from tasks.caching import shard_task
from tracemill.judging import stage as judging
from tracemill.judging.config import JudgeConfig, RelabelConfig
from tracemill.store import Dataset
from tracemill.teachers.base import Teacher


@shard_task("verdicts")
def judge_shard(
    problems: Dataset,
    samples: Dataset,
    dataset: Dataset,
    shard: int,
    config: JudgeConfig,
    judge: Callable[[], Teacher | None],
    force: bool = False,
) -> dict[str, Any]:
    """Judge one samples shard; ``judge`` builds the judge model on first use, so cached runs never load it."""
    gold = problems.read_shard(shard)
    stats = judging.JudgeStats()
    if force or not dataset.has_shard(shard):
        where = samples.store.uri(samples.shard_path(shard))
        teacher = judge() if config.uses_llm else None
        dataset.write_shard(
            shard, judging.judge_shard(gold, samples.read_shard(shard), config, teacher, stats=stats, where=where)
        )
    return _verdicts_summary(dataset, shard, gold, stats)


@shard_task("relabel")
def relabel_shard(
    problems: Dataset,
    verdicts: Dataset,
    dataset: Dataset,
    shard: int,
    config: RelabelConfig,
    timeout_s: float,
    force: bool = False,
) -> dict[str, Any]:
    """Majority-relabel the problems of one shard that no sample answered correctly."""
    if force or not dataset.has_shard(shard):
        where = verdicts.store.uri(verdicts.shard_path(shard))
        table = judging.relabel_shard(
            problems.read_shard(shard), verdicts.read_shard(shard), config, timeout_s=timeout_s, where=where
        )
        dataset.write_shard(shard, table)
    figures = judging.relabel_stats(dataset.read_shard(shard))
    get_run_logger().info(
        "relabel shard %d: %d of %d problems relabelled", shard, figures["relabeled"], figures["problems"]
    )
    return _summary(dataset, shard, figures)


@shard_task("rejudged")
def rejudge_shard(
    relabel: Dataset,
    verdicts: Dataset,
    dataset: Dataset,
    shard: int,
    config: JudgeConfig,
    judge: Callable[[], Teacher | None],
    force: bool = False,
) -> dict[str, Any]:
    """Judge the samples of the shard's relabelled problems again, against their new gold."""
    gold = relabel.read_shard(shard)
    stats = judging.JudgeStats()
    if force or not dataset.has_shard(shard):
        where = verdicts.store.uri(verdicts.shard_path(shard))
        relabeled = any(gold["relabeled"].to_pylist())
        teacher = judge() if config.uses_llm and relabeled else None
        dataset.write_shard(
            shard, judging.rejudge_shard(gold, verdicts.read_shard(shard), config, teacher, stats=stats, where=where)
        )
    return _verdicts_summary(dataset, shard, gold, stats)


def _verdicts_summary(dataset: Dataset, shard: int, problems: Any, stats: judging.JudgeStats) -> dict[str, Any]:
    if stats.undecided:
        get_run_logger().warning(
            "%s shard %d: the judge gave no verdict line for %d of %d samples; the rules' verdicts stand",
            dataset.stage, shard, stats.undecided, stats.asked,
        )  # fmt: skip
    figures = {**judging.verdict_stats(problems, dataset.read_shard(shard)), "judge": asdict(stats)}
    return _summary(dataset, shard, figures)


def _summary(dataset: Dataset, shard: int, figures: dict[str, Any]) -> dict[str, Any]:
    """A shard task's result: where the shard is, and its figures for the flow's artifacts."""
    return {"shard": shard, "uri": dataset.store.uri(dataset.shard_path(shard)), "figures": figures}
