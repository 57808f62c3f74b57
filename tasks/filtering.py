"""Filter tasks: one task per verdict shard writes its kept and rejected shards, cached by (fingerprint, shard)."""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import task

from tasks.caching import RETRIES, ShardCachePolicy, shard_task
from tracemill.filtering import funnel
from tracemill.filtering import stage as filters
from tracemill.store import Dataset, Store


@task(name="filter-length-bound", **RETRIES)
def length_bound(verdicts: Dataset, config: filters.LengthOutlierConfig) -> float | None:
    """The global length-outlier bound: a first pass reading only the token and error columns."""
    shards = [s["index"] for s in verdicts.manifest()["shards"]]
    tokens = [filters.measured_tokens(verdicts.read_shard(i, filters.LENGTH_COLUMNS)) for i in shards]
    return filters.length_bound(np.concatenate(tokens) if tokens else np.empty(0), config)


@task(name="filter-benchmarks", **RETRIES)
def benchmark_index(config: filters.ContaminationConfig, store: Store) -> tuple[filters.NgramIndex, list[str]]:
    """Read the benchmark texts once; their fingerprints become inputs of the kept dataset."""
    return filters.benchmark_index(config, store)


@shard_task("filter", ShardCachePolicy(outputs=("dataset", "rejected")))
def filter_shard(
    relabel: Dataset,
    verdicts: Dataset,
    dataset: Dataset,
    rejected: Dataset,
    shard: int,
    plan: filters.Plan | None,
    force: bool = False,
) -> dict[str, Any]:
    """Write the kept (``dataset``) and rejected shards; shards already in the store are reused, cache or not.

    Returns the shard's funnel counts, always taken from the shards as written.
    """
    if force or not (dataset.has_shard(shard) and rejected.has_shard(shard)):
        if plan is None:
            raise ValueError(f"filter shard {shard}: no filter plan given and the shard is not in {dataset.uri}")
        kept, dropped = filters.filter_shard(relabel.read_shard(shard), verdicts.read_shard(shard), plan, shard=shard)
        rejected.write_shard(shard, dropped)
        dataset.write_shard(shard, kept)
    counts = funnel.shard_counts(
        relabel.read_shard(shard, funnel.RELABEL_COLUMNS),
        verdicts.read_shard(shard, funnel.VERDICT_COLUMNS),
        dataset.read_shard(shard, funnel.KEPT_COLUMNS),
        rejected.read_shard(shard, funnel.REJECTED_COLUMNS),
    )
    return {"shard": shard, "funnel": funnel.to_json(counts)}


@task(name="filter-commit", **RETRIES)
def commit(
    kept: Dataset, rejected: Dataset, num_shards: int, config: filters.FilterConfig, inputs: list[str], force: bool
) -> None:
    """Write both manifests last, once every shard exists; current manifests are kept unless forced."""
    for dataset in (rejected, kept):
        if force or not dataset.is_current():
            dataset.commit(num_shards, config=config, code_version=filters.CODE_VERSION, inputs=inputs)
