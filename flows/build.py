"""The build flow: source → sample → judge → relabel → re-judge → filter → export, every stage cached.

Each stage is a subflow that takes the fingerprints of its inputs and returns its dataset's URI, so a
rerun walks the same chain and finds every finished shard; a stage that fails stops the build with
the stage, the shard and the cause.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.context import get_run_context
from prefect.deployments import run_deployment

from blocks.object_store import open_store
from blocks.teacher_endpoint import endpoint_settings
from flows.entry import StageFailedError
from flows.filtering import filter_and_export
from flows.judging import judge_samples
from flows.preflight import check_build
from flows.problems import synthesize_problems
from flows.sampling import sample_problems
from flows.scores import score_samples
from tracemill.build import BuildConfig
from tracemill.faults import is_transient_fault
from tracemill.problems.stage import STAGE as PROBLEMS_STAGE
from tracemill.sampling import stage as sampling
from tracemill.stage import commit, shards_to_make
from tracemill.store import fingerprint_of

T = TypeVar("T")


def run_stage(stage: str, run: Callable[..., T], **kwargs: Any) -> T:
    """Run one stage's subflow, turning its failure into an error that names the stage and the shard."""
    try:
        return run(**kwargs)
    except Exception as exc:
        where = "; ".join(getattr(exc, "__notes__", []))
        advice = (
            "Finished shards are kept: rerun the build to resume."
            if is_transient_fault(exc)
            else "Finished shards are kept: fix the cause above, then rerun the build."
        )
        raise StageFailedError(
            f"stage {stage!r} failed{f' ({where})' if where else ''}: {type(exc).__name__}: {exc}. {advice}"
        ) from exc


@flow(name="build-dataset")
def build_dataset(config: BuildConfig, force: bool = False) -> dict[str, str]:
    """Build the dataset ``config`` describes and return where each stage's output is."""
    logger = get_run_logger()
    check_build(config, force)  # seconds, before any stage: a missing model or a refused store fails here
    store = config.store
    problems = run_stage("problems", synthesize_problems, source=config.source, store=store, force=force)
    problems_fp = fingerprint_of(problems)
    if config.orchestration.sampling_on == "gpu_pool":
        samples = run_stage("sampling", sample_on_gpu_pool, config=config, problems=problems_fp, force=force)
    else:
        samples = run_stage(
            "sampling",
            sample_problems,
            problems=problems_fp,
            sampling_config=config.sampling,
            store=store,
            force=force,
        )
    judged = run_stage(
        "judging",
        judge_samples,
        problems=problems_fp,
        samples=fingerprint_of(samples),
        judge_config=config.judge,
        relabel_config=config.relabel,
        store=store,
        force=force,
    )
    scored = {}
    if config.scores.verifiers:  # no verifiers, no stage: builds without them keep their fingerprints
        scored["scores"] = run_stage(
            "scores",
            score_samples,
            relabel=fingerprint_of(judged["relabel"]),
            rejudged=fingerprint_of(judged["rejudged"]),
            scores_config=config.scores,
            store=store,
            force=force,
        )
    outputs = run_stage(
        "filter and export",
        filter_and_export,
        relabel=fingerprint_of(judged["relabel"]),
        verdicts=fingerprint_of(judged["rejudged"]),
        scores=fingerprint_of(scored["scores"]) if scored else None,
        filter_config=config.filters,
        export_config=config.export,
        store=store,
        force=force,
        build_info=build_info(config, problems, samples, judged),
    )
    locations = {"problems": problems, "samples": samples, **judged, **scored, **outputs}
    create_markdown_artifact(
        key="build-summary",
        markdown=f"# Dataset `{config.name}`\n\n"
        + "\n".join(f"* {stage}: `{where}`" for stage, where in locations.items())
        + "\n",
        description=f"Where the stages of {config.name} wrote their output",
    )
    logger.info("build %s complete: %s", config.name, locations)
    return locations


def build_info(config: BuildConfig, problems: str, samples: str, judged: dict[str, str]) -> dict[str, Any]:
    """What the dataset card records of the build: the config (secrets live in blocks, not here) and fingerprints."""
    fingerprints = {"problems": fingerprint_of(problems), "samples": fingerprint_of(samples)}
    fingerprints.update({stage: fingerprint_of(uri) for stage, uri in judged.items()})
    info = {"name": config.name, "config": config.model_dump(mode="json"), "fingerprints": fingerprints}
    # Rows the source skipped or repaired, per reason: the funnel and the card show them.
    manifest = open_store(config.store).dataset(PROBLEMS_STAGE, fingerprints["problems"], "problem").manifest()
    rows = manifest.get("metadata", {}).get("rows")
    return {**info, "source_rows": rows} if rows else info


def sample_on_gpu_pool(config: BuildConfig, problems: str, force: bool) -> str:
    """Sample through the GPU work pool: one run of the sampling deployment per chunk of missing shards.

    Each chunk's idempotency key is (this flow run, dataset, shards), so a retried build gets the
    runs it already submitted back instead of submitting them again; a chunk whose run had failed
    is submitted anew under the retry's own key.
    """
    logger = get_run_logger()
    store = open_store(config.store)
    total = len(store.dataset("problems", problems, "problem").manifest()["shards"])
    stage = sampling.samples_stage(config.sampling, problems, endpoint_settings)
    dataset = stage.dataset(store)
    if dataset.is_current() and not force:
        return dataset.uri
    todo = shards_to_make(dataset, range(total), force)
    size = config.orchestration.shards_per_run
    chunks = [todo[start : start + size] for start in range(0, len(todo), size)]
    context = get_run_context()
    parent = context.flow_run.id
    attempt = context.flow_run.run_count
    parameters = {
        "problems": problems,
        "sampling_config": config.sampling.model_dump(mode="json"),
        "store": config.store.model_dump(mode="json"),
        "force": force,
    }
    runs = []
    for chunk in chunks:
        key = f"{parent}:{dataset.fingerprint}:{chunk[0]}-{chunk[-1]}"
        run = _submit(config.orchestration.sampling_deployment, {**parameters, "shards": chunk}, key)
        if run.state is not None and run.state.is_final() and not run.state.is_completed():
            run = _submit(config.orchestration.sampling_deployment, {**parameters, "shards": chunk}, f"{key}:{attempt}")
        logger.info("shards %s → sampling run %s", chunk, run.name)
        runs.append((chunk, run.id))
    for chunk, run_id in runs:
        state = _wait(run_id)
        if not state.is_completed():
            raise RuntimeError(f"sampling run {run_id} for shards {chunk} ended {state.name}: {state.message}")
    missing = commit(stage, [dataset], total, force=force, partial=True)
    if missing:
        raise RuntimeError(f"sampling runs completed but shards {missing} of {dataset.uri} are missing")
    return dataset.uri


def _submit(deployment: str, parameters: dict[str, Any], key: str) -> Any:
    return run_deployment(name=deployment, parameters=parameters, timeout=0, idempotency_key=key, as_subflow=True)


def _wait(run_id: Any, poll_s: float = 2.0) -> Any:
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(run_id).state
            if state is not None and state.is_final():
                return state
            time.sleep(poll_s)
