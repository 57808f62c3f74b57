"""Sampling tasks: one task per problems shard, cached by (samples fingerprint, shard index)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.caching import shard_task
from tracemill.sampling import stage as sampling
from tracemill.store import Dataset


@shard_task("samples")
def sample_shard(
    problems: Dataset,
    dataset: Dataset,
    shard: int,
    sampler: Callable[[], sampling.Sampler],
    force: bool = False,
) -> dict[str, Any]:
    """Sample one shard, resuming from its checkpoints; returns its location and statistics.

    The shard tasks of a run share one ``sampler`` and run at once, so their requests stream into
    one engine. ``sampler`` builds it (and the engine) on first use, so a run whose shards all exist
    never loads it.
    """
    checkpoints = dataset.checkpoints(shard, sampling.CHECKPOINT_TAG)
    if force:
        checkpoints.delete()
    elif dataset.has_shard(shard):
        checkpoints.delete()  # left behind when a run died between writing the shard and clearing them
        stats = sampling.account(dataset.read_shard(shard), sampling.ShardStats())
        return _summary(dataset, shard, stats)
    stats = sampler().sample_shard(shard, problems.read_shard(shard), dataset)
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
        "prompt_too_long": stats.too_long,
        "generated_problems": stats.generated_problems,
        "resumed_problems": stats.resumed_problems,
        "checkpoint_parts": stats.checkpoint_parts,
    }
