"""Judging tasks: one task per shard and stage (verdicts, relabel, re-judged), cached by (fingerprint, shard).

A shard already in the store is reused, cache record or not; its figures are counted again from it.
"""

from __future__ import annotations

from tasks.caching import stage_task

judge_shard = stage_task("verdicts")
relabel_shard = stage_task("relabel")
rejudge_shard = stage_task("rejudged")
