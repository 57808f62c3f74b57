"""The scores task: one task per shard scores its samples with every verifier, cached by (fingerprint, shard)."""

from __future__ import annotations

from tasks.caching import stage_task
from tracemill.scoring import scores

score_shard = stage_task(scores.STAGE)
