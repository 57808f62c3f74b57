"""Problem-synthesis tasks: one task per shard, cached by (stage fingerprint, shard index)."""

from __future__ import annotations

from typing import Any

from prefect import task

from tasks.caching import RETRIES, shard_task
from tracemill.problems import stage as problems
from tracemill.store import Dataset


@shard_task("problems")
def synthesize_shard(source: problems.Source, dataset: Dataset, shard: int, force: bool = False) -> str:
    """Write one problems shard and return its URI; a shard already in the store is reused, cache or not."""
    if force or not dataset.has_shard(shard):
        dataset.write_shard(shard, problems.build_shard(source, shard, dataset.store))
    return dataset.store.uri(dataset.shard_path(shard))


@task(name="problems-commit", **RETRIES)
def commit_problems(
    source: problems.Source,
    dataset: Dataset,
    num_shards: int,
    inputs: list[str],
    force: bool = False,
    rows: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the manifest last, once every shard exists; a current manifest is kept unless forced.

    ``rows`` (the source's skipped and repaired rows per reason) goes in the manifest's ``metadata``.
    """
    if not force and dataset.is_current():
        return dataset.manifest()
    metadata = {"rows": rows} if rows is not None else None
    return dataset.commit(
        num_shards, config=source, code_version=problems.CODE_VERSION, inputs=inputs, metadata=metadata
    )
