"""The stage contract: what every stage declares, and what is written once for all of them.

A stage (problems, samples, verdicts, relabel, rejudged, scores, kept/rejected, exports) declares a
:class:`Stage`: its name and record type, the identity of its config (the fields that change its
output), its code version and its inputs' fingerprints; from these it gets its fingerprint and its
datasets. Its work on one shard is a :class:`ShardJob`, which the orchestrator runs once per shard,
anywhere (the one generic shard task in ``tasks/``). Written once here, in the spirit of datatrove's
executor: inputs must be shard-aligned (:func:`aligned_shards`), a shard the store holds whole is
reused unless forced and stale checkpoints go (:func:`reuse_or_make`), and a dataset is committed
once every shard exists (:func:`commit`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import pyarrow as pa
from pydantic import BaseModel

from tracemill.store import Dataset, Store, fingerprint

Logger = logging.Logger | logging.LoggerAdapter[Any]


def aligned_shards(*inputs: Dataset) -> int:
    """The shard count of complete inputs where shard ``i`` of each covers the same problems."""
    counts = []
    for dataset in inputs:
        if not dataset.is_complete():
            raise ValueError(f"{dataset.uri}: no manifest: the {dataset.stage} dataset is missing or incomplete")
        counts.append(len(dataset.manifest()["shards"]))
    for dataset, count in zip(inputs[1:], counts[1:], strict=True):
        if count != counts[0]:
            raise ValueError(
                f"{inputs[0].uri} has {counts[0]} shard(s) but {dataset.uri} has {count}: they must be shard-aligned"
            )
    return counts[0]


def is_written(outputs: Sequence[Dataset], shard: int) -> bool:
    """Whether the store holds shard ``shard`` of every output whole (see ``Dataset.has_shard``)."""
    return all(dataset.has_shard(shard) for dataset in outputs)


def shards_to_make(dataset: Dataset, shards: Iterable[int], force: bool = False) -> list[int]:
    """The shards of ``shards`` a run has to make: all when forced, else those the store does not hold with the
    size the manifest records (one listing, for deciding what to send where; the shard job checks each again)."""
    if force:
        return list(shards)
    intact = set(dataset.intact_shards())
    return [shard for shard in shards if shard not in intact]


def reuse_or_make(
    outputs: Sequence[Dataset],
    shard: int,
    make: Callable[[], Sequence[pa.Table] | None],
    *,
    force: bool = False,
    checkpoints: str | None = None,
) -> bool:
    """Reuse shard ``shard`` of ``outputs`` when the store holds it whole, else ``make`` it; whether it was made.

    The store is the truth, not a cache record: a shard that is there with its recorded size is
    reused unless forced. ``make`` returns one table per output (written here, the main one last), or None
    when it wrote them itself (sampling assembles its shard from checkpoints). Checkpoints tagged
    ``checkpoints`` go when the shard is forced (start over) or reused (left behind by a run that
    died between writing the shard and clearing them); otherwise ``make`` resumes from them.
    """
    stale = None if checkpoints is None else outputs[0].checkpoints(shard, checkpoints)
    if not force and is_written(outputs, shard):
        if stale is not None:
            stale.delete()
        return False
    if force and stale is not None:
        stale.delete()
    tables = make()
    for dataset, table in reversed(list(zip(outputs, tables or (), strict=tables is not None))):
        dataset.write_shard(shard, table)
    return True


@dataclass(frozen=True)
class Stage:
    """What decides a stage's output, hence its fingerprint and where its datasets are.

    ``identity`` is what the fingerprint hashes of the config (derived by the config model, with
    exclude-lists for what does not change output); ``config`` is what the manifest records (the
    whole config; ``identity`` when None). ``inputs`` are the fingerprints of everything read, in
    order: datasets, benchmark files, source files. ``also`` names further datasets (stage, record)
    written beside the main one under the same fingerprint (kept's rejected rows).
    """

    name: str
    record: str
    code_version: str
    identity: BaseModel | Mapping[str, Any]
    inputs: tuple[str, ...] = ()
    config: BaseModel | Mapping[str, Any] | None = None
    also: tuple[tuple[str, str], ...] = ()

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.name, self.identity, self.code_version, self.inputs)

    def outputs(self, store: Store) -> tuple[Dataset, ...]:
        """The stage's datasets in ``store``: the main one first."""
        names = ((self.name, self.record), *self.also)
        return tuple(store.dataset(name, self.fingerprint, record) for name, record in names)

    def dataset(self, store: Store) -> Dataset:
        return self.outputs(store)[0]


def commit(
    stage: Stage,
    outputs: Sequence[Dataset],
    num_shards: int,
    *,
    force: bool = False,
    partial: bool = False,
    metadata: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
) -> list[int]:
    """Write each output's manifest, last, once all ``num_shards`` shards exist; returns the shards still missing.

    A current manifest is kept unless forced. A shard still missing is an error, since the caller has
    just made them all, unless ``partial``: several runs may write one dataset's shards (sampling
    chunks on the GPU pool), and whichever sees the last shard written commits. ``metadata`` (what the
    stage records beside its rows), when a function, is only called when a manifest is written.
    """
    present = [set(dataset.shard_sizes()) for dataset in outputs]
    missing = sorted({i for shards in present for i in range(num_shards) if i not in shards})
    if missing and not partial:
        raise RuntimeError(
            f"{outputs[0].uri}: shard(s) {missing} of {num_shards} are missing, so it cannot be committed"
        )
    stale = [dataset for dataset in outputs if force or not dataset.is_current()]
    if missing or not stale:
        return missing
    recorded = metadata() if callable(metadata) else metadata
    for dataset in reversed(stale):  # the main dataset last: its manifest says the stage is done
        dataset.commit(
            num_shards,
            config=stage.identity if stage.config is None else stage.config,
            code_version=stage.code_version,
            inputs=stage.inputs,
            metadata=recorded,
        )
    return []


class ShardJob(Protocol):
    """One stage's work on any one of its shards, as the generic shard task runs it.

    ``outputs`` are the datasets ``run`` writes (the main one first: the shard task's cache key and
    lock are named after it); ``run`` writes shard ``shard`` through :func:`reuse_or_make` and
    returns what the flow shows of it (location, figures). ``log`` is the run's logger.
    """

    @property
    def outputs(self) -> tuple[Dataset, ...]: ...

    def run(self, shard: int, force: bool, log: Logger) -> dict[str, Any]: ...


def shard_summary(dataset: Dataset, shard: int, **figures: Any) -> dict[str, Any]:
    """What a shard job returns: the shard's index and location, and its figures for the flow's artifacts."""
    return {"shard": shard, "uri": dataset.store.uri(dataset.shard_path(shard)), **figures}
