"""``tracemill verify``: check a build's datasets and exports against their manifests; ``--repair`` fixes them.

The build's locations come from its fingerprints, computed by the same functions its stages use.
A repair deletes the damaged files and reruns the build, which recomputes exactly those shards
and files (every other shard task is ``Cached``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blocks.object_store import open_store
from blocks.teacher_endpoint import endpoint_settings
from tracemill.build import BuildConfig
from tracemill.export import layouts as export
from tracemill.filtering import stage as filters
from tracemill.filtering.benchmarks import benchmark_index
from tracemill.judging import stage as judging
from tracemill.problems import stage as problems
from tracemill.sampling import stage as sampling
from tracemill.store import Dataset
from tracemill.verify import OK, Report, check_dataset, check_export, repair, table


def build_outputs(config: BuildConfig) -> tuple[list[tuple[str, Dataset]], Dataset]:
    """The datasets of a build, in stage order, and its export folder."""
    store = open_store(config.store)
    source = problems.problems_stage(config.source, store)
    samples = sampling.samples_stage(config.sampling, source.fingerprint, endpoint_settings)
    judged = judging.judging_stages(
        config.judge, config.relabel, source.fingerprint, samples.fingerprint, endpoint_settings
    )
    contamination = config.filters.contamination
    benchmarks = benchmark_index(contamination, store)[1] if contamination is not None else []
    relabel, rejudged = judged[judging.RELABEL_STAGE].fingerprint, judged[judging.REJUDGED].fingerprint
    kept = filters.kept_stage(config.filters, relabel, rejudged, benchmarks)
    stages = [source, samples, *judged.values(), kept]
    datasets = [(dataset.stage, dataset) for stage in stages for dataset in stage.outputs(store)]
    return datasets, export.export_dir(store, kept.fingerprint, config.export)


def verify_build(config: BuildConfig) -> list[Report]:
    """Check every dataset and the export of a build against their manifests."""
    datasets, out = build_outputs(config)
    return [check_dataset(name, dataset) for name, dataset in datasets] + [check_export("exports", out)]


def verify(config: BuildConfig, repair_damage: bool, rebuild: Callable[[BuildConfig], Any]) -> int:
    """Print the check; with ``repair_damage``, delete what is damaged, ``rebuild`` and check again.

    Returns the exit status: 0 when everything is sound (after the repair), 1 otherwise.
    """
    reports = verify_build(config)
    print(table(reports))
    if all(r.status == OK for r in reports):
        return 0
    if not repair_damage:
        print("\ntracemill verify --repair deletes the damaged files and rebuilds exactly those.")
        return 1
    removed = repair(reports)
    print(f"\nremoved {len(removed)} file(s):" + "".join(f"\n  {uri}" for uri in removed))
    print("rebuilding …")
    rebuild(config)
    reports = verify_build(config)
    print("\nafter the repair:\n" + table(reports))
    return 0 if all(r.status == OK for r in reports) else 1
