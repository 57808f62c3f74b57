"""Sampling tasks: one task per problems shard, cached by (samples fingerprint, shard index)."""

from __future__ import annotations

from tasks.caching import stage_task

sample_shard = stage_task("samples")
