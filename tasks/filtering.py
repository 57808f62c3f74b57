"""Filter tasks: one task per verdict shard writes its kept and rejected shards, cached by (fingerprint, shard)."""

from __future__ import annotations

import numpy as np
from prefect import task

from tasks.caching import RETRIES, stage_task
from tracemill import stage
from tracemill.filtering import benchmarks, dedup, rules
from tracemill.filtering.config import ContaminationConfig, LengthOutlierConfig
from tracemill.store import Dataset, Store


@task(name="filter-length-bound", **RETRIES)
def length_bound(verdicts: Dataset, config: LengthOutlierConfig) -> float | None:
    """The global length-outlier bound: a first pass reading only the token and error columns."""
    shards = [s["index"] for s in verdicts.manifest()["shards"]]
    tokens = [rules.measured_tokens(verdicts.read_shard(i, rules.LENGTH_COLUMNS)) for i in shards]
    return rules.length_bound(np.concatenate(tokens) if tokens else np.empty(0), config)


@task(name="filter-benchmarks", **RETRIES)
def benchmark_index(config: ContaminationConfig, store: Store) -> tuple[dedup.NgramIndex, list[str]]:
    """Read the benchmark texts once; their fingerprints become inputs of the kept dataset."""
    return benchmarks.benchmark_index(config, store)


filter_shard = stage_task("filter")
commit = task(name="filter-commit", **RETRIES)(stage.commit)
