"""Sampling tasks: one task per problems shard, cached by (samples fingerprint, shard index)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.caching import shard_task
from tracemill import sampling
from tracemill.store import Dataset
from tracemill.teachers.base import Teacher
from tracemill.teachers.config import SamplingConfig


@shard_task("samples")
def sample_shard(
    problems: Dataset,
    dataset: Dataset,
    shard: int,
    config: SamplingConfig,
    teacher: Callable[[], Teacher],
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Sample one shard, resuming from its checkpoints; returns its location and statistics.

    ``teacher`` builds the engine on first use, so a run whose shards all exist never loads it.
    """
    checkpoints = dataset.checkpoints(shard, f"b{config.batch_size}")
    if force:
        checkpoints.delete()
    elif dataset.has_shard(shard):
        checkpoints.delete()  # left behind when a run died between writing the shard and clearing them
        stats = sampling.account(dataset.read_shard(shard), sampling.ShardStats())
        return _summary(dataset, shard, stats)
    table, stats = sampling.sample_shard(
        problems.read_shard(shard),
        teacher(),
        config.params(),
        templates=config.templates(),
        prompt=config.prompt,
        base_seed=config.seed,
        batch_size=config.batch_size,
        checkpoints=checkpoints,
        max_failed_share=config.max_failed_share,
        progress=progress,
    )
    dataset.write_shard(shard, table)
    checkpoints.delete()
    return _summary(dataset, shard, stats)


def _summary(dataset: Dataset, shard: int, stats: sampling.ShardStats) -> dict[str, Any]:
    return {
        "shard": shard,
        "uri": dataset.store.uri(dataset.shard_path(shard)),
        "rows": stats.rows,
        "failed": stats.failed,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "generated_tokens": stats.generated_tokens,
        "seconds": round(stats.seconds, 3),
        "tokens_per_s": round(stats.tokens_per_s, 1),
        "finish_reasons": dict(stats.finish_reasons),
        "errors": dict(stats.errors),
        "generated_batches": stats.generated_batches,
        "resumed_batches": stats.resumed_batches,
    }
