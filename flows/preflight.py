"""Preflight of a build and of each stage flow: the library's checks, with what blocks name resolved.

A teacher is checked only where its stage still has work, so a rerun of a finished build whose
sampling server is gone (or whose model folder was cleared) still reaches the stages it changes.
"""

from __future__ import annotations

from collections.abc import Mapping

from blocks.object_store import open_store
from blocks.teacher_endpoint import endpoint_settings
from tracemill import preflight
from tracemill.build import BuildConfig
from tracemill.config import StoreConfig
from tracemill.judging import stage as judging
from tracemill.problems import stage as problems
from tracemill.sampling import stage as sampling
from tracemill.teachers.config import TeacherConfig
from tracemill.teachers.factory import check_teacher


def check_build(config: BuildConfig, force: bool = False) -> None:
    """Before the problems stage: the store, and each teacher this process runs for a stage with work left.

    Any failure stops the build here, an unreachable store or server too: the user is there to see it.
    With ``sampling_on: gpu_pool`` the model lives on the GPU workers: their sampling runs check it.
    """
    sampling_here = config.orchestration.sampling_on == "in_process"
    judge = config.judge.teacher if config.judge.uses_llm else None
    done = set() if force or not (sampling_here or judge) else _finished(config)
    teachers = {}
    if sampling_here and "sampling" not in done:
        teachers["sampling teacher"] = config.sampling.teacher
    if judge is not None and "judging" not in done:
        teachers["judge teacher"] = judge
    preflight.raise_problems(_problems(config.store, teachers))


def check_stage(store: StoreConfig, teachers: Mapping[str, TeacherConfig] | None = None) -> None:
    """At a stage flow's entry: what no retry can fix stops it; an outage is left to its tasks' retries."""
    preflight.raise_problems(_problems(store, teachers or {}), transient_ok=True)


def _problems(store: StoreConfig, teachers: Mapping[str, TeacherConfig]) -> list[preflight.Problem | None]:
    """The store can be written with its block's credentials, and each teacher's model or endpoint is there."""
    label = f"store {store.url}" + (f" (ObjectStore block {store.block!r})" if store.block else "")
    try:
        found = [preflight.check_store(open_store(store), label)]
    except ValueError as exc:  # the block is not there
        found = [preflight.Problem(f"{label}: {exc}")]
    return found + [_teacher_problem(name, teacher) for name, teacher in teachers.items()]


def _teacher_problem(name: str, teacher: TeacherConfig) -> preflight.Problem | None:
    block = teacher.endpoint_block()
    label = name if block is None else f"{name} (TeacherEndpoint block {block!r})"
    try:
        endpoint = endpoint_settings(teacher)
    except ValueError as exc:  # the block is not there
        return preflight.Problem(f"{label}: {exc}")
    return check_teacher(teacher, endpoint, label)


def _finished(config: BuildConfig) -> set[str]:
    """The teacher stages ("sampling", "judging") whose datasets are complete and intact already."""
    try:
        store = open_store(config.store)
        problems_fp = problems.stage_fingerprint(config.source, store)
        samples = sampling.samples_stage(config.sampling, problems_fp, endpoint_settings).dataset(store)
        if not samples.is_current():
            return set()
        stages = judging.judging_stages(
            config.judge, config.relabel, problems_fp, samples.fingerprint, endpoint_settings
        )
        judged = all(stages[s].dataset(store).is_current() for s in (judging.VERDICTS, judging.REJUDGED))
    except Exception:  # a store, block or source that fails here fails the checks or the stage that follows
        return set()
    return {"sampling", "judging"} if judged else {"sampling"}
