"""The judging flow: judge a samples dataset, relabel by majority where no sample is correct, re-judge.

Three stages, each a dataset of its own with one cached task per shard: ``verdicts`` (every sample
judged against the original gold), ``relabel`` (the problems, with the gold replaced where a clear
majority of the samples disagrees with it) and ``rejudged`` (the verdicts, with the samples of
relabelled problems judged again). The judge model, when the mode needs one, is built once per
flow run and only if some shard has to be judged.
"""

from __future__ import annotations

import contextlib
import functools
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
from blocks.teacher_endpoint import build_teacher, endpoint_settings
from flows.preflight import check_stage
from tasks import judging as tasks
from tracemill.config import StoreConfig
from tracemill.judging import stage as judging
from tracemill.judging.config import JudgeConfig, RelabelConfig
from tracemill.problems import stage as problems_stage
from tracemill.sampling import stage as sampling
from tracemill.stage import aligned_shards, commit
from tracemill.store import Dataset
from tracemill.teachers.base import Teacher


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
    total = aligned_shards(gold, sampled)
    stages = judging.judging_stages(judge_config, relabel_config, problems, samples, endpoint_settings)
    verdicts, relabel, rejudged = (stages[name].dataset(where) for name in judging.STAGES)
    needs_judge = judge_config.uses_llm and (force or not (verdicts.is_current() and rejudged.is_current()))
    check_stage(store, {"judge teacher": judge_config.teacher} if needs_judge and judge_config.teacher else None)
    logger.info("judging %s (%d shards, judge mode %s) into %s", sampled.uri, total, judge_config.mode, verdicts.uri)

    options: dict[str, Any] = {"result_storage": result_storage(store), "refresh_cache": force or None}
    shard_tasks = {
        judging.VERDICTS: tasks.judge_shard.with_options(**options),
        judging.RELABEL_STAGE: tasks.relabel_shard.with_options(**options),
        judging.REJUDGED: tasks.rejudge_shard.with_options(**options),
    }
    progress = create_progress_artifact(progress=0.0, key="judging-progress", description="Judging progress")
    steps = iter(range(1, 3 * total + 1))
    summaries: dict[str, list[dict[str, Any]]] = {}
    with _judge(judge_config) as judge:
        jobs = {
            judging.VERDICTS: judging.JudgeJob(gold, sampled, verdicts, judge_config, judge),
            judging.RELABEL_STAGE: judging.RelabelJob(gold, verdicts, relabel, relabel_config, judge_config.timeout_s),
            judging.REJUDGED: judging.JudgeJob(relabel, verdicts, rejudged, judge_config, judge, again=True),
        }
        for name, job in jobs.items():  # in stage order: each reads the one before
            summaries[name] = []
            for shard in range(total):
                summaries[name].append(shard_tasks[name](job, shard, force))
                update_progress_artifact(progress, progress=100.0 * next(steps) / (3 * total))
            commit(stages[name], job.outputs, total, force=force)

    _artifacts(*summaries.values(), {"verdicts": verdicts, "relabel": relabel, "rejudged": rejudged})
    return {"verdicts": verdicts.uri, "relabel": relabel.uri, "rejudged": rejudged.uri}


@contextlib.contextmanager
def _judge(config: JudgeConfig) -> Iterator[Callable[[], Teacher | None]]:
    """The judge model's builder: built on first call only, once per flow run, and closed on leaving; a
    rules-only config never has one."""
    teacher = config.teacher
    if teacher is None or not config.uses_llm:
        yield lambda: None
        return
    judge = functools.cache(lambda: build_teacher(teacher))
    try:
        yield judge
    finally:
        if judge.cache_info().currsize:
            close = getattr(judge(), "close", None)
            if close:
                close()


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
