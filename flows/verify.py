"""``tracemill verify``: check a build's datasets and exports against their manifests; ``--repair`` fixes them.

The build's locations come from its fingerprints, computed by the same functions its stages use.
A repair deletes the damaged files and reruns the build, which recomputes exactly those shards
and files (every other shard task is ``Cached``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blocks.object_store import open_store
from flows.filtering import kept_fingerprint
from flows.judging import stage_fingerprints
from flows.sampling import samples_fingerprint
from tracemill.build import BuildConfig
from tracemill.export import layouts as export
from tracemill.filtering import stage as filters
from tracemill.judging import stage as judging
from tracemill.problems import stage as problems
from tracemill.sampling import stage as sampling
from tracemill.store import Dataset
from tracemill.verify import OK, Report, check_dataset, check_export, repair, table


def build_outputs(config: BuildConfig) -> tuple[list[tuple[str, Dataset]], Dataset]:
    """The datasets of a build, in stage order, and its export folder."""
    store = open_store(config.store)
    problems_fp = problems.stage_fingerprint(config.source, store)
    samples_fp = samples_fingerprint(config.sampling, problems_fp)
    judged = stage_fingerprints(config.judge, config.relabel, problems_fp, samples_fp)
    filter_config = config.filter_config()
    contamination = filter_config.contamination
    benchmarks = filters.benchmark_index(contamination, store)[1] if contamination is not None else []
    kept_fp, _ = kept_fingerprint(filter_config, judged[judging.RELABEL_STAGE], judged[judging.REJUDGED], benchmarks)
    datasets = [
        ("problems", store.dataset(problems.STAGE, problems_fp, "problem")),
        ("samples", store.dataset(sampling.STAGE, samples_fp, "sample")),
        ("verdicts", store.dataset(judging.VERDICTS, judged[judging.VERDICTS], "verdict")),
        ("relabel", store.dataset(judging.RELABEL_STAGE, judged[judging.RELABEL_STAGE], "relabel")),
        ("rejudged", store.dataset(judging.REJUDGED, judged[judging.REJUDGED], "verdict")),
        ("kept", store.dataset(filters.KEPT_STAGE, kept_fp, "kept")),
        ("rejected", store.dataset(filters.REJECTED_STAGE, kept_fp, "rejected")),
    ]
    return datasets, export.export_dir(store, kept_fp, config.export)


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
