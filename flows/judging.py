"""The judging flow: judge a samples dataset, relabel by majority where no sample is correct, re-judge.

Three stages, each a dataset of its own with one cached task per shard: ``verdicts`` (every sample
judged against the original gold), ``relabel`` (the problems, with the gold replaced where a clear
majority of the samples disagrees with it) and ``rejudged`` (the verdicts, with the samples of
relabelled problems judged again). The judge model, when the mode needs one, is built once per
flow run and only if some shard has to be judged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from blocks.object_store import open_store
from blocks.store_results import result_storage
from flows.preflight import check_stage
from flows.sampling import lazy_teacher, teacher_identity
from tasks import judging as tasks
from tracemill.config import StoreConfig
from tracemill.judging import stage as judging
from tracemill.judging.config import JudgeConfig, RelabelConfig
from tracemill.problems import stage as problems_stage
from tracemill.sampling import stage as sampling
from tracemill.store import Dataset, fingerprint
from tracemill.teachers.base import Teacher


def stage_fingerprints(
    judge_config: JudgeConfig, relabel_config: RelabelConfig, problems: str, samples: str
) -> dict[str, str]:
    """The fingerprints of the verdicts, relabel and rejudged datasets of these inputs and configs."""
    teacher = teacher_identity(judge_config.teacher) if judge_config.uses_llm and judge_config.teacher else None
    judge = judge_config.identity(teacher)
    verdicts = fingerprint(judging.VERDICTS, judge, judging.CODE_VERSION, [problems, samples])
    relabel_identity = {**relabel_config.model_dump(mode="json"), "timeout_s": judge_config.timeout_s}
    relabel = fingerprint(judging.RELABEL_STAGE, relabel_identity, judging.CODE_VERSION, [problems, verdicts])
    rejudged = fingerprint(judging.REJUDGED, judge, judging.CODE_VERSION, [relabel, verdicts])
    return {judging.VERDICTS: verdicts, judging.RELABEL_STAGE: relabel, judging.REJUDGED: rejudged}


@flow(name="judge-samples")
def judge_samples(
    problems: str,
    samples: str,
    judge_config: JudgeConfig = JudgeConfig(),  # noqa: B008 - pydantic defaults render in the UI form
    relabel_config: RelabelConfig = RelabelConfig(),  # noqa: B008
    store: StoreConfig = StoreConfig(),  # noqa: B008
    force: bool = False,
) -> dict[str, str]:
    """Judge, relabel and re-judge the samples dataset ``samples`` of the problems dataset ``problems``.

    Returns the URIs of the ``verdicts``, ``relabel`` and ``rejudged`` datasets; each manifest is
    written once all of its shards exist.
    """
    logger = get_run_logger()
    where = open_store(store)
    gold = where.dataset(problems_stage.STAGE, problems, "problem")
    sampled = where.dataset(sampling.STAGE, samples, "sample")
    total = _aligned_shards(gold, sampled)
    fps = stage_fingerprints(judge_config, relabel_config, problems, samples)
    verdicts = where.dataset(judging.VERDICTS, fps[judging.VERDICTS], "verdict")
    relabel = where.dataset(judging.RELABEL_STAGE, fps[judging.RELABEL_STAGE], "relabel")
    rejudged = where.dataset(judging.REJUDGED, fps[judging.REJUDGED], "verdict")
    needs_judge = judge_config.uses_llm and (force or not (verdicts.is_current() and rejudged.is_current()))
    check_stage(store, {"judge teacher": judge_config.teacher} if needs_judge and judge_config.teacher else None)
    logger.info("judging %s (%d shards, judge mode %s) into %s", sampled.uri, total, judge_config.mode, verdicts.uri)

    options: dict[str, Any] = {"result_storage": result_storage(store), "refresh_cache": force or None}
    judge_task = tasks.judge_shard.with_options(**options)
    relabel_task = tasks.relabel_shard.with_options(**options)
    rejudge_task = tasks.rejudge_shard.with_options(**options)
    progress = create_progress_artifact(progress=0.0, key="judging-progress", description="Judging progress")
    steps = iter(range(1, 3 * total + 1))

    def advance() -> None:
        update_progress_artifact(progress, progress=100.0 * next(steps) / (3 * total))

    with _judge(judge_config) as judge:
        judged = []
        for shard in range(total):
            judged.append(judge_task(gold, sampled, verdicts, shard, judge_config, judge, force))
            advance()
        _commit(verdicts, total, judge_config, [problems, samples], force)
        relabelled = []
        for shard in range(total):
            relabelled.append(
                relabel_task(gold, verdicts, relabel, shard, relabel_config, judge_config.timeout_s, force)
            )
            advance()
        _commit(relabel, total, relabel_config, [problems, verdicts.fingerprint], force)
        final = []
        for shard in range(total):
            final.append(rejudge_task(relabel, verdicts, rejudged, shard, judge_config, judge, force))
            advance()
        _commit(rejudged, total, judge_config, [relabel.fingerprint, verdicts.fingerprint], force)

    _artifacts(judged, relabelled, final, {"verdicts": verdicts, "relabel": relabel, "rejudged": rejudged})
    return {"verdicts": verdicts.uri, "relabel": relabel.uri, "rejudged": rejudged.uri}


@contextlib.contextmanager
def _judge(config: JudgeConfig) -> Iterator[Callable[[], Teacher | None]]:
    """The judge model's builder; a rules-only config never has one."""
    if config.teacher is None or not config.uses_llm:
        yield lambda: None
        return
    with lazy_teacher(config.teacher) as teacher:
        yield teacher


def _aligned_shards(problems: Dataset, samples: Dataset) -> int:
    """Shard ``i`` of the samples holds the samples of problems shard ``i``; both must have as many shards."""
    total = len(samples.manifest()["shards"])
    expected = len(problems.manifest()["shards"])
    if total != expected:
        raise ValueError(
            f"samples dataset {samples.uri} has {total} shards but its problems dataset {problems.uri} has "
            f"{expected}: sample every shard of the problems before judging"
        )
    return total


def _commit(dataset: Dataset, total: int, config: Any, inputs: list[str], force: bool) -> None:
    """Write the manifest last, once every shard exists; a current one is kept unless forced."""
    if force or not dataset.is_current():
        dataset.commit(total, config=config, code_version=judging.CODE_VERSION, inputs=inputs)


def _artifacts(
    judged: list[dict[str, Any]],
    relabelled: list[dict[str, Any]],
    final: list[dict[str, Any]],
    datasets: dict[str, Dataset],
) -> None:
    before, relabel, after = (judging.merge(s["figures"] for s in stage) for stage in (judged, relabelled, final))
    create_table_artifact(
        key="judging-accuracy",
        table=judging.accuracy_table(before, after),
        description="Accuracy per source: against the original gold, and after relabel and re-judging",
    )
    create_table_artifact(
        key="judging-decided-by",
        table=judging.decided_by_table(before, after),
        description="Which tier decided the verdicts (exact, numeric, symbolic, choice, llm_judge, unparsed, timeout)",
    )
    locations = "\n".join(f"* {stage}: `{dataset.uri}`" for stage, dataset in datasets.items())
    sections = [judging.relabel_summary(relabel), judging.judge_summary(before, after), f"## Datasets\n\n{locations}\n"]
    create_markdown_artifact(
        key="judging-summary",
        markdown="\n".join(sections),
        description="Majority relabel rate and most common relabels, the judge model's work, the datasets",
    )
