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
import functools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from blocks.object_store import open_store
from blocks.store_results import result_storage
from blocks.teacher_endpoint import TeacherEndpoint
from flows.entry import run_cli
from flows.preflight import check_stage
from tasks.sampling import sample_shard
from tracemill.config import StoreConfig
from tracemill.problems import stage as problems_stage
from tracemill.sampling import stage as sampling
from tracemill.store import Dataset, fingerprint, fingerprint_of
from tracemill.teachers.base import Teacher
from tracemill.teachers.config import EndpointTeacherConfig, SamplingConfig, TeacherConfig, VllmTeacherConfig


def teacher_identity(config: TeacherConfig) -> dict[str, Any]:
    """What names the teacher in the samples fingerprint; an endpoint's comes from its block."""
    if isinstance(config, VllmTeacherConfig):
        return config.identity()
    block = TeacherEndpoint.load(config.block)
    return {"kind": config.kind, "base_url": block.base_url, "model": block.model}


def build_teacher(config: TeacherConfig) -> Teacher:
    if isinstance(config, VllmTeacherConfig):
        from tracemill.teachers.offline import VllmTeacher

        return VllmTeacher(config.model, **config.engine_args())
    return _endpoint_teacher(config)


@contextlib.contextmanager
def lazy_teacher(config: TeacherConfig) -> Iterator[Callable[[], Teacher]]:
    """A builder of the teacher: built on first call only, once per flow run, and closed on leaving."""
    teacher = functools.cache(lambda: build_teacher(config))
    try:
        yield teacher
    finally:
        if teacher.cache_info().currsize:
            close = getattr(teacher(), "close", None)
            if close:
                close()


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


def _endpoint_teacher(config: EndpointTeacherConfig) -> Teacher:
    from tracemill.teachers.endpoint import EndpointTeacher

    block = TeacherEndpoint.load(config.block)
    return EndpointTeacher(
        base_url=block.base_url,
        model=block.model,
        api_key=block.api_key.get_secret_value() if block.api_key else None,
        max_concurrency=block.max_concurrency,
        requests_per_minute=block.requests_per_minute,
        tokens_per_minute=block.tokens_per_minute,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        supports_n=config.supports_n,
        limiter=block.shared_limiter(),  # None: this run's own limits
    )


def samples_fingerprint(config: SamplingConfig, problems: str) -> str:
    identity = config.identity(teacher_identity(config.teacher))
    return fingerprint(sampling.STAGE, identity, sampling.CODE_VERSION, [problems])


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
    dataset = where.dataset(sampling.STAGE, samples_fingerprint(sampling_config, problems), "sample")
    logger.info("samples dataset %s: %d of %d shard(s) in this run", dataset.uri, len(todo), total)
    needs_teacher = force or not set(todo) <= set(dataset.intact_shards())
    check_stage(store, {"sampling teacher": sampling_config.teacher} if needs_teacher else None)

    progress = create_progress_artifact(progress=0.0, key="samples-progress", description="Sampling progress")
    task = sample_shard.with_options(result_storage=result_storage(store), refresh_cache=force or None)
    with (
        lazy_sampler(sampling_config, _reporter(progress)) as sampler,
        ThreadPoolTaskRunner(max_workers=sampling_config.shards_at_once) as runner,
    ):
        futures = [
            runner.submit(
                task, {"problems": source, "dataset": dataset, "shard": s, "sampler": sampler, "force": force}
            )
            for s in todo
        ]
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
    commit_samples(dataset, total, sampling_config, problems, force)
    return dataset.uri


def commit_samples(dataset: Dataset, total: int, config: SamplingConfig, problems: str, force: bool) -> list[int]:
    """Write the samples manifest once all ``total`` shards exist; returns the shards still missing.

    Several runs may sample one dataset's shards (chunks on the GPU pool): whichever sees the last
    shard written commits it.
    """
    missing = sorted(set(range(total)) - set(dataset.shard_indices()))
    if not missing and (force or not dataset.is_current()):
        dataset.commit(total, config=config, code_version=sampling.CODE_VERSION, inputs=[problems])
    return missing


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
