"""The problems stage: a source config in, problem shards out.

Shards are independent, so any worker can build any shard: a procedural shard generates its
range of scenes; a shard of any other source takes its slice of the problems read once per process
from the CLEVR files, the benchmark or the user's files. The stage only calls the source's own methods
(``tracemill.problems.source``), so a new source never touches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tracemill.problems.source import Source
from tracemill.records import DEFAULT_TRUST, PROBLEM, to_table
from tracemill.stage import Logger, Stage, reuse_or_make, shard_summary
from tracemill.store import Dataset, Store

STAGE = "problems"
# Bump when a change in the sources changes the rows they produce: it is part of every fingerprint.
CODE_VERSION = "problems-3"


def input_fingerprints(source: Source, store: Store) -> list[str]:
    """Identities of the inputs: each file's size and modification time (or ETag); a Hub dataset's name and revision."""
    return source.inputs(store)


def problems_stage(source: Source, store: Store) -> Stage:
    """The problems stage of ``source``: the whole source config is its identity and its manifest's config."""
    return Stage(STAGE, "problem", CODE_VERSION, source, tuple(input_fingerprints(source, store)))


def stage_fingerprint(source: Source, store: Store) -> str:
    return problems_stage(source, store).fingerprint


@dataclass(frozen=True)
class ProblemsJob:
    """Write one problems shard of ``source`` (a :class:`~tracemill.stage.ShardJob`)."""

    source: Source
    dataset: Dataset

    @property
    def outputs(self) -> tuple[Dataset, ...]:
        return (self.dataset,)

    def run(self, shard: int, force: bool, log: Logger) -> dict[str, Any]:
        reuse_or_make(self.outputs, shard, lambda: [build_shard(self.source, shard, self.dataset.store)], force=force)
        return shard_summary(self.dataset, shard)


def num_shards(source: Source, store: Store) -> int:
    return source.num_shards(store)


def row_report(source: Source, store: Store) -> dict[str, Any]:
    """Rows the source skipped or repaired, per reason (see ``problems.rows``): the manifest's ``rows`` entry."""
    return source.row_report(store).to_dict()


def build_shard(source: Source, shard: int, store: Store) -> pa.Table:
    """The problem rows of one shard as a table of the PROBLEM schema."""
    rows, what = source.shard(shard, store)
    rows = [{**row, "answer_trust": row.get("answer_trust") or DEFAULT_TRUST} for row in rows]
    return to_table(rows, PROBLEM, what=what)
