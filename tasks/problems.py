"""Problem-synthesis tasks: one task per shard, cached by (stage fingerprint, shard index), then the commit."""

from __future__ import annotations

from prefect import task

from tasks.caching import RETRIES, stage_task
from tracemill import stage

synthesize_shard = stage_task("problems")
commit_problems = task(name="problems-commit", **RETRIES)(stage.commit)
