"""The sampling flow: sample a chunk of shards of a problems dataset with one teacher.

This is the flow the GPU work pool runs: the engine is built once per flow run, on first need,
and the chunk's shard tasks run at once (``shards_at_once`` of them), streaming their requests
into that one engine through one :class:`~tracemill.sampling.stage.Sampler`, so it never drains
between shards.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from blocks.object_store import open_store
from blocks.store_results import result_storage
from blocks.teacher_endpoint import build_teacher, endpoint_settings
from flows.entry import run_cli
from flows.preflight import check_stage
from tasks.sampling import sample_shard
from tracemill.config import StoreConfig
from tracemill.problems import stage as problems_stage
from tracemill.sampling import stage as sampling
from tracemill.sampling.config import SamplingConfig
from tracemill.stage import commit, shards_to_make
from tracemill.store import fingerprint_of


@contextlib.contextmanager
def lazy_sampler(
    config: SamplingConfig, progress: Callable[[sampling.Progress], None]
) -> Iterator[Callable[[], sampling.Sampler]]:
    """A builder of the run's one Sampler (and its teacher): built on the first shard that needs it, from
    whichever shard task's thread asks first, and closed, with the teacher, on leaving."""
    lock = threading.Lock()
    built: list[sampling.Sampler] = []

    def get() -> sampling.Sampler:
        with lock:
            if not built:
                built.append(sampling.sampler_for(config, build_teacher(config.teacher), progress))
            return built[0]

    try:
        yield get
    finally:
        if built:
            built[0].close()
            close = getattr(built[0].teacher, "close", None)
            if close:
                close()


def _reporter(artifact: Any) -> Callable[[sampling.Progress], None]:
    """Progress as the sampler reports it: the progress artifact and, in a terminal, one updating line.

    The sampler reports from its own thread, so the update runs in a copy of the flow's context.
    """
    context = contextvars.copy_context()

    def update(progress: sampling.Progress) -> None:
        share = 100.0 * progress.problems_done / progress.problems_total if progress.problems_total else 0.0
        context.run(update_progress_artifact, artifact, progress=share)
        if sys.stderr.isatty():
            print(f"\rsampling: {progress.line()}   ", end="", file=sys.stderr, flush=True)

    return update


@flow(name="sample-problems")
def sample_problems(
    problems: str,
    sampling_config: SamplingConfig,
    store: StoreConfig = StoreConfig(),  # noqa: B008 - pydantic defaults render in the UI form
    shards: list[int] | None = None,
    force: bool = False,
) -> str:
    """Sample the given shards (all when empty) of the problems dataset with fingerprint ``problems``.

    Returns the samples dataset URI; its manifest is written once every shard of it exists.
    """
    logger = get_run_logger()
    where = open_store(store)
    source = where.dataset(problems_stage.STAGE, problems, "problem")
    total = len(source.manifest()["shards"])
    todo = list(range(total)) if shards is None else sorted(set(shards))
    bad = [s for s in todo if not 0 <= s < total]
    if bad:
        raise ValueError(f"shards {bad} are not in the problems dataset {source.uri} ({total} shards)")
    stage = sampling.samples_stage(sampling_config, problems, endpoint_settings)
    dataset = stage.dataset(where)
    logger.info("samples dataset %s: %d of %d shard(s) in this run", dataset.uri, len(todo), total)
    needs_teacher = bool(shards_to_make(dataset, todo, force))
    check_stage(store, {"sampling teacher": sampling_config.teacher} if needs_teacher else None)

    progress = create_progress_artifact(progress=0.0, key="samples-progress", description="Sampling progress")
    task = sample_shard.with_options(result_storage=result_storage(store), refresh_cache=force or None)
    with (
        lazy_sampler(sampling_config, _reporter(progress)) as sampler,
        ThreadPoolTaskRunner(max_workers=sampling_config.shards_at_once) as runner,
    ):
        job = sampling.SamplesJob(source, dataset, sampler)
        futures = [runner.submit(task, {"job": job, "shard": s, "force": force}) for s in todo]
        states = [future.wait() or future.state for future in futures]
    failed = next((state for state in states if not state.is_completed()), None)
    if failed is not None:
        failed.result()  # raises the shard's own exception, with its note
    summaries = [state.result() for state in states]
    update_progress_artifact(progress, progress=100.0)
    if sys.stderr.isatty():
        print(file=sys.stderr)

    create_table_artifact(
        key="samples-shards",
        table=[
            {
                **{k: v for k, v in s.items() if k not in ("uri", "finish_reasons", "errors", "prompt_too_long")},
                "finish_reasons": ", ".join(f"{k}: {v}" for k, v in sorted(s["finish_reasons"].items())),
                "errors": ", ".join(f"{k}: {v}" for k, v in sorted(s["errors"].items())),
                "prompt_too_long": ", ".join(s["prompt_too_long"]),
            }
            for s in summaries
        ],
        description=f"Samples per shard of {dataset.uri}",
    )
    commit(stage, [dataset], total, force=force, partial=True)  # by whichever run sees the last shard written
    return dataset.uri


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.sampling --config FILE --problems FP``: sample, print the dataset location."""
    from tracemill.build import load_build_config

    parser = argparse.ArgumentParser(description="Sample a problems dataset with the config's teacher.")
    parser.add_argument("--config", required=True, help="YAML build config; its `sampling:` and `store:` are used")
    parser.add_argument("--problems", required=True, help="problems dataset: its fingerprint or location")
    parser.add_argument("--shards", type=int, nargs="*", help="shard indices to sample (default: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--force", action="store_true", help="sample again, discarding shards and checkpoints")
    args = parser.parse_args(argv)

    def run() -> None:
        config = load_build_config(args.config, args.overrides)
        problems = fingerprint_of(args.problems)
        uri = sample_problems(problems, config.sampling, config.store, shards=args.shards, force=args.force)
        print(f"samples dataset: {uri}")

    return run_cli("flows.sampling", run)


if __name__ == "__main__":
    sys.exit(main())
