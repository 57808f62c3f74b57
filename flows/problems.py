"""The problems flow: synthesize a problems dataset from any source (CLEVR, a benchmark, the user's files)."""

from __future__ import annotations

import argparse
import sys

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
from flows.entry import read_source, run_cli
from flows.preflight import check_stage
from tasks.problems import commit_problems, synthesize_shard
from tracemill.config import StoreConfig
from tracemill.export.card import markdown_table
from tracemill.filtering import funnel
from tracemill.problems import stage as problems
from tracemill.problems.config import ClevrProceduralSource, ProblemsConfig, SourceConfig, load_problems_config


@flow(name="synthesize-problems")
def synthesize_problems(
    source: SourceConfig = ClevrProceduralSource(),  # noqa: B008 - pydantic defaults render in the UI form
    store: StoreConfig = StoreConfig(),  # noqa: B008
    force: bool = False,
) -> str:
    """Write the problems dataset for ``source`` and return its URI; a rerun reuses every finished shard."""
    logger = get_run_logger()
    check_stage(store)
    where = open_store(store)
    stage = problems.problems_stage(source, where)
    dataset = stage.dataset(where)
    num_shards = problems.num_shards(source, where)
    logger.info("problems dataset %s: %d shard(s)", dataset.uri, num_shards)
    rows = problems.row_report(source, where)
    table = funnel.source_rows_table(rows)
    for line in table:
        logger.warning(
            "source rows %s: %d, %s (first: %s)", line["action"], line["rows"], line["reason"], line["first"]
        )

    shard_task = synthesize_shard.with_options(result_storage=result_storage(store), refresh_cache=force or None)
    progress = create_progress_artifact(progress=0.0, key="problems-progress", description="Problem shards written")
    futures = shard_task.map(unmapped(problems.ProblemsJob(source, dataset)), range(num_shards), unmapped(force))
    for done, _ in enumerate(as_completed(futures), start=1):
        update_progress_artifact(progress, progress=100.0 * done / num_shards)
    futures.result()  # raises the first shard failure, naming the shard's task run

    # The rows the source skipped or repaired, per reason, go in the manifest's metadata.
    commit_problems(stage, [dataset], num_shards, force=force, metadata={"rows": rows})
    manifest = dataset.manifest()
    create_table_artifact(
        key="problems-shards",
        table=[{"shard": s["index"], "file": s["file"], "rows": s["rows"]} for s in manifest["shards"]],
        description=f"Shards of {dataset.uri}",
    )
    create_markdown_artifact(
        key="problems-summary",
        markdown=(
            f"# Problems dataset\n\n* location: `{dataset.uri}`\n* fingerprint: `{dataset.fingerprint}`\n"
            f"* rows: {manifest['rows']} in {len(manifest['shards'])} shard(s)\n* source: `{source.kind}`\n"
            + (f"\nSource rows skipped or repaired:\n\n{markdown_table(table)}" if table else "")
        ),
        description="Problems dataset summary",
    )
    logger.info("problems dataset complete: %s (%d rows)", dataset.uri, manifest["rows"])
    return dataset.uri


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.problems [--config FILE] [--force]``: run the flow, print the dataset location."""
    parser = argparse.ArgumentParser(description="Synthesize a problems dataset.")
    parser.add_argument("--config", help="YAML build config; its `source:` and `store:` are used")
    parser.add_argument("--force", action="store_true", help="recompute every shard")
    args = parser.parse_args(argv)

    def run() -> None:
        config = load_problems_config(args.config) if args.config else ProblemsConfig()
        read_source(config.source, config.store)
        uri = synthesize_problems(source=config.source, store=config.store, force=args.force)
        print(f"problems dataset: {uri}")

    return run_cli("flows.problems", run)


if __name__ == "__main__":
    sys.exit(main())
