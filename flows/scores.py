"""The scores flow: every verifier scores every re-judged sample, one cached task per shard.

Reward models load on vLLM's pooling runner and LM judges through the teacher interface, each once
per flow run and only if some shard has to be scored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from blocks.object_store import open_store
from blocks.store_results import result_storage
from blocks.teacher_endpoint import build_teacher, endpoint_settings
from flows.preflight import check_stage
from tasks.scores import score_shard
from tracemill.config import StoreConfig
from tracemill.scoring import scores, worth
from tracemill.scoring.config import LmJudgeVerifier, ScoresConfig, VerifierConfig
from tracemill.stage import aligned_shards, commit


@flow(name="score-samples")
def score_samples(
    relabel: str,
    rejudged: str,
    scores_config: ScoresConfig,
    store: StoreConfig = StoreConfig(),  # noqa: B008 - pydantic defaults render in the UI form
    force: bool = False,
) -> str:
    """Score the re-judged samples ``rejudged`` (shard-aligned with the relabel dataset ``relabel``); returns the
    scores dataset's URI, whose manifest is written once every shard exists."""
    judges = {f"verifier {v.name}": v.teacher for v in scores_config.verifiers if isinstance(v, LmJudgeVerifier)}
    check_stage(store, judges)
    where = open_store(store)
    problems = where.dataset("relabel", relabel, "relabel")
    verdicts = where.dataset("rejudged", rejudged, "verdict")
    total = aligned_shards(problems, verdicts)
    stage = scores.scores_stage(scores_config, relabel, rejudged, endpoint_settings)
    dataset = stage.dataset(where)
    get_run_logger().info(
        "scoring %s with %d verifier(s) into %s", verdicts.uri, len(scores_config.verifiers), dataset.uri
    )
    task = score_shard.with_options(result_storage=result_storage(store), refresh_cache=force or None)
    with _scorers() as scorers:
        job = scores.ScoresJob(problems, verdicts, dataset, scores_config.verifiers, scorers)
        for shard in range(total):
            task(job, shard, force)

    def worth_table() -> dict[str, Any]:  # what the verifiers are worth: the manifest's metadata
        table = worth.worth_table(
            problems.read(["problem_id", "answer_trust"]),
            verdicts.read(["problem_id", "sample_idx", "extracted", "correct"]),
            pa.concat_tables([dataset.read_shard(shard) for shard in range(total)]),
        )
        return {"worth": table}

    commit(stage, [dataset], total, force=force, metadata=worth_table)
    create_table_artifact(
        key="verifier-worth",
        table=worth.display_rows(dataset.manifest()["metadata"]["worth"]),
        description="What each verifier is worth on problems with a gold: AUROC, best-of-n vs majority vote vs the "
        "first sample, and how often it picks a correct sample when there is one",
    )
    return dataset.uri


@contextlib.contextmanager
def _scorers() -> Iterator[Callable[[VerifierConfig], Any]]:
    """Each verifier's engine or judge, built on first use (one per flow run) and closed on leaving."""
    built: dict[str, Any] = {}

    def get(verifier: VerifierConfig) -> Any:
        if verifier.name not in built:
            if isinstance(verifier, LmJudgeVerifier):
                built[verifier.name] = build_teacher(verifier.teacher)
            else:
                from tracemill.scoring.pooling import PoolingScorer

                built[verifier.name] = PoolingScorer(verifier)
        return built[verifier.name]

    try:
        yield get
    finally:
        for scorer in built.values():
            close = getattr(scorer, "close", None)
            if close:
                close()
