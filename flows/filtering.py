"""The filter-and-export flow: final verdicts and relabelled problems in; kept, rejected and every export out.

The build flow calls it as a subflow; it can also be rerun alone, e.g. with another filter config,
which reuses every verdict and writes a new kept dataset beside the old one.
"""

from __future__ import annotations

import json

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import as_completed

from blocks.object_store import open_store
from blocks.store_results import result_storage
from flows.preflight import check_stage
from tasks.export import export_shard, merge_jsonl, push, save_dataset_dict, write_card, write_manifest
from tasks.filtering import benchmark_index, commit, filter_shard, length_bound
from tracemill.config import StoreConfig
from tracemill.export import layouts as export
from tracemill.export.card import markdown_table
from tracemill.export.config import ExportConfig
from tracemill.filtering import funnel
from tracemill.filtering import stage as filters
from tracemill.filtering.config import FilterConfig
from tracemill.scoring import worth
from tracemill.stage import aligned_shards, is_written
from tracemill.store import Dataset

FUNNEL_FILE = "funnel.json"

RELABEL_STAGE = "relabel"
VERDICTS_STAGE = "rejudged"
SCORES_STAGE = "scores"


@flow(name="filter-and-export")
def filter_and_export(
    relabel: str,
    verdicts: str,
    filter_config: FilterConfig,
    export_config: ExportConfig,
    store: StoreConfig = StoreConfig(),  # noqa: B008 - pydantic defaults render in the UI form
    force: bool = False,
    build_info: dict | None = None,
    scores: str | None = None,
) -> dict[str, str]:
    """Filter the verdicts dataset ``verdicts`` (shard-aligned with the relabel dataset ``relabel``) and export.

    Returns the URIs of ``kept``, ``rejected``, the export folder and each export in it.
    """
    logger = get_run_logger()
    check_stage(store)
    where = open_store(store)
    problems = where.dataset(RELABEL_STAGE, relabel, "relabel")
    samples = where.dataset(VERDICTS_STAGE, verdicts, "verdict")
    num_shards = aligned_shards(problems, samples)

    index, benchmarks = None, []
    if filter_config.contamination is not None:
        index, benchmarks = benchmark_index(filter_config.contamination, where)
    stage = filters.kept_stage(filter_config, relabel, verdicts, benchmarks)
    kept, rejected = stage.outputs(where)
    fp = stage.fingerprint
    logger.info("kept dataset %s, rejected %s: %d shard(s)", kept.uri, rejected.uri, num_shards)

    plan = None
    if force or not all(is_written((kept, rejected), i) for i in range(num_shards)):
        bound = None
        if filter_config.length is not None and filter_config.length.scope == "global":
            bound = length_bound(samples, filter_config.length)
        plan = filters.Plan(filter_config, length_limit=bound, contamination=index)

    storage = result_storage(store)
    shard_task = filter_shard.with_options(result_storage=storage, refresh_cache=force or None)
    progress = create_progress_artifact(
        progress=0.0, key="filter-export-progress", description="Shards filtered, then exported"
    )
    job = filters.FilterJob(problems, samples, kept, rejected, plan)
    futures = shard_task.map(unmapped(job), range(num_shards), unmapped(force))
    for done, _ in enumerate(as_completed(futures), start=1):
        update_progress_artifact(progress, progress=50.0 * done / num_shards)
    summaries = futures.result()
    commit(stage, [kept, rejected], num_shards, force=force)
    counts = funnel.merge(funnel.from_json(s["funnel"]) for s in summaries)
    create_table_artifact(
        key="filter-funnel",
        table=funnel.stage_table(counts),
        description="Samples through the filters per source: rows in, dropped, rows out; last row: kept.\n\n"
        + markdown_table(funnel.summary_table(counts)),
    )

    out = export.export_dir(where, fp, export_config, scores)
    scored = None if scores is None else where.dataset(SCORES_STAGE, scores, "score")
    if scored is not None:  # the card shows what the verifiers are worth
        build_info = {**(build_info or {}), "verifiers": worth.display_rows(scored.manifest()["metadata"]["worth"])}
    export_task = export_shard.with_options(result_storage=storage, refresh_cache=force or None)
    exports = export_task.map(
        unmapped(export.ExportJob(kept, rejected, out, export_config, scored)), range(num_shards), unmapped(force)
    )
    for done, _ in enumerate(as_completed(exports), start=1):
        update_progress_artifact(progress, progress=50.0 + 50.0 * done / num_shards)
    markers = exports.result()
    hub_configs = export.configs(markers)
    fingerprints = {"relabel": relabel, "verdicts": verdicts, "kept": fp, "rejected": fp, "export": out.fingerprint}
    card = write_card(
        out,
        kept,
        funnel=counts,
        filter_config=filter_config,
        export_config=export_config,
        build_info=build_info,
        fingerprints=fingerprints,
        hub_configs=hub_configs,
    )
    create_markdown_artifact(
        key="dataset-card", markdown=card.page, description=f"The dataset card, as written to {_uri(out, export.CARD)}"
    )

    # The funnel as a file beside the exports, for the CLI and for anyone reading the folder without Prefect.
    tables = {"per source": funnel.summary_table(counts), "through the filters": funnel.stage_table(counts)}
    tables["source rows skipped or repaired"] = funnel.source_rows_table((build_info or {}).get("source_rows"))
    export.publish(out, FUNNEL_FILE, lambda f: f.write(json.dumps(tables, indent=1).encode()))
    result = {
        "kept": kept.uri,
        "rejected": rejected.uri,
        "exports": out.uri,
        "card": _uri(out, export.CARD),
        "funnel": _uri(out, FUNNEL_FILE),
    }
    for name, files in hub_configs.items():
        key = {"default": "parquet", "rejected": "rejected_parquet"}.get(name, name)
        result[key] = merge_jsonl(out, name, markers, force) if files.endswith(".jsonl") else _uri(out, files)
    if export_config.hf_dataset and "default" in hub_configs:
        result["hf_dataset"] = save_dataset_dict(out, hub_configs, force)
    write_manifest(out)
    if export_config.hub_target:
        result["hub"] = push(out, export_config.hub_target, f"tracemill export {out.fingerprint} (kept {fp})")
    logger.info("filtered %d of %d samples into %s; exports in %s", counts[funnel.ALL].kept, counts[funnel.ALL].samples,
                kept.uri, out.uri)  # fmt: skip
    return result


def _uri(out: Dataset, relative: str) -> str:
    return out.store.uri(f"{out.path}/{relative}")
