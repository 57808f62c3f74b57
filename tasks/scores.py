"""The scores task: one task per shard scores its samples with every verifier, cached by (fingerprint, shard)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.caching import shard_task
from tracemill.scoring import scores
from tracemill.scoring.config import VerifierConfig
from tracemill.store import Dataset


@shard_task(scores.STAGE)
def score_shard(
    relabel: Dataset,
    verdicts: Dataset,
    dataset: Dataset,
    shard: int,
    verifiers: list[VerifierConfig],
    scorers: Callable[[VerifierConfig], Any],
    force: bool = False,
) -> dict[str, Any]:
    """Score one shard; ``scorers`` builds each verifier's engine or judge on first use, so cached runs load none."""
    if force or not dataset.has_shard(shard):
        table = scores.score_shard(relabel.read_shard(shard), verdicts.read_shard(shard), verifiers, scorers)
        dataset.write_shard(shard, table)
    return {"shard": shard, "uri": dataset.store.uri(dataset.shard_path(shard))}
