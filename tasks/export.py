"""Export tasks: one task per kept shard writes that shard's files of every layout; then the card, the
DatasetDict and the push, which read only a few columns or the files already written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prefect import task

from blocks.hub_target import HubTarget
from tasks.caching import RETRIES, ShardCachePolicy, stage_task
from tracemill.export import card
from tracemill.export import layouts as export
from tracemill.store import Dataset

export_shard = stage_task("export", ShardCachePolicy(marker=export.done_marker))


@task(name="export-card", **RETRIES)
def write_card(out: Dataset, kept: Dataset, **details: Any) -> card.Card:
    """Write README.md (the dataset card) and the length histogram; returns the card and its page for the UI."""
    return export.write_card(out, kept, **details)


@task(name="export-merge-jsonl", task_run_name="export-merge-{name}", **RETRIES)
def merge_jsonl(out: Dataset, name: str, markers: Sequence[Mapping[str, Any]], force: bool = False) -> str:
    return export.merge_jsonl(out, name, markers, force)


@task(name="export-dataset-dict", **RETRIES)
def save_dataset_dict(out: Dataset, hub_configs: Mapping[str, str], force: bool = False) -> str:
    return export.save_dataset_dict(out, hub_configs, force)


@task(name="export-manifest", **RETRIES)
def write_manifest(out: Dataset) -> dict[str, Any]:
    """The export's manifest: each file's size and checksum, for ``tracemill verify``."""
    return export.write_manifest(out)


@task(name="push-to-hub", **RETRIES)
def push(out: Dataset, target: str, message: str) -> str:
    """Upload the export folder to the HubTarget block's repository; the token never leaves the block and the call."""
    block = HubTarget.load(target)
    token = block.token.get_secret_value() if block.token else None
    with export.local_folder(out) as folder:
        return export.push_to_hub(folder, repo_id=block.repo_id, token=token, private=block.private, message=message)
