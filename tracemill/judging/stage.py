"""The judging stages, shard by shard: judge the samples, relabel by majority, re-judge the relabelled.

Shards align: problems shard ``i`` holds the problems of samples shard ``i``, which gives verdicts
shard ``i``, relabel shard ``i`` and re-judged shard ``i``. Every function here takes and returns
Arrow tables of the record schemas; the LLM judge, when the config asks for one, is any teacher.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from tracemill.config import identity_of
from tracemill.judging.config import JudgeConfig, JudgeMode, RelabelConfig
from tracemill.judging.grading import Verdict, grade_many
from tracemill.judging.llm_judge import JudgeItem, ask_judge
from tracemill.judging.relabel import Decision, decide
from tracemill.records import RELABEL, SAMPLE, VERDICT, to_table
from tracemill.sampling.prompts import prompt_fields
from tracemill.stage import Logger, Stage, reuse_or_make, shard_summary
from tracemill.store import Dataset
from tracemill.teachers.base import Teacher
from tracemill.teachers.factory import Endpoints, no_endpoints, teacher_identity

VERDICTS = "verdicts"
RELABEL_STAGE = "relabel"
REJUDGED = "rejudged"
STAGES = (VERDICTS, RELABEL_STAGE, REJUDGED)
# The modules whose code decides a verdict or a relabel: extraction and normal forms, the comparison
# cascade, the symbolic worker, the judge prompt, the vote, and this module.
GRADER_MODULES = (
    "tracemill.judging.answers",
    "tracemill.judging.grading",
    "tracemill.judging.symbolic",
    "tracemill.judging.llm_judge",
    "tracemill.judging.relabel",
    "tracemill.judging.stage",
)


def grader_sources() -> dict[str, str]:
    """The source text of each module in :data:`GRADER_MODULES`."""
    sources = {}
    for name in GRADER_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"cannot find the source of {name}")
        sources[name] = Path(spec.origin).read_text(encoding="utf-8")
    return sources


def grader_version(sources: Mapping[str, str] | None = None) -> str:
    """A hash of the deciding code: any change to it re-judges cached samples (cheap); samples stay cached."""
    sources = grader_sources() if sources is None else sources
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(f"{name}\x1f{sources[name]}\x1e".encode())
    return f"judging-{digest.hexdigest()[:16]}"


# Part of the verdicts, relabel and re-judged fingerprints; derived, never bumped by hand.
CODE_VERSION = grader_version()
LLM_JUDGE = "llm_judge"


@dataclass
class JudgeStats:
    """What the judge model did in one shard; its verdicts themselves are in the rows."""

    asked: int = 0  # samples sent to the judge model
    undecided: int = 0  # replies without a verdict line: the rules' verdict stands
    overruled: int = 0  # judge verdicts that differ from the rules'


def judging_stages(
    judge_config: JudgeConfig,
    relabel_config: RelabelConfig,
    problems: str,
    samples: str,
    endpoints: Endpoints = no_endpoints,
) -> dict[str, Stage]:
    """The verdicts, relabel and rejudged stages of these inputs and configs, by stage name.

    ``endpoints`` gives the settings of the endpoint block a judge teacher names (its URL and model
    are part of the identity); a rules-only config needs none.
    """
    teacher = None
    if judge_config.uses_llm and judge_config.teacher is not None:
        teacher = teacher_identity(judge_config.teacher, endpoints(judge_config.teacher))
    judge = judge_config.identity(teacher)
    verdicts = Stage(VERDICTS, "verdict", CODE_VERSION, judge, (problems, samples), judge_config)
    relabel_identity = {**identity_of(relabel_config), "timeout_s": judge_config.timeout_s}
    relabel = Stage(
        RELABEL_STAGE, "relabel", CODE_VERSION, relabel_identity, (problems, verdicts.fingerprint), relabel_config
    )
    rejudged = Stage(
        REJUDGED, "verdict", CODE_VERSION, judge, (relabel.fingerprint, verdicts.fingerprint), judge_config
    )
    return {VERDICTS: verdicts, RELABEL_STAGE: relabel, REJUDGED: rejudged}


@dataclass(frozen=True)
class JudgeJob:
    """Judge one shard (a :class:`~tracemill.stage.ShardJob`): the samples against their problems' gold
    (verdicts) or, ``again``, the verdicts of the relabelled problems against their new gold (rejudged).

    ``gold`` holds the problems (the relabel dataset, ``again``), ``judged`` the samples (the verdicts).
    ``judge`` builds the judge model on first use, so a run whose shards all exist never loads it.
    """

    gold: Dataset
    judged: Dataset
    dataset: Dataset
    config: JudgeConfig
    judge: Callable[[], Teacher | None]
    again: bool = False

    @property
    def outputs(self) -> tuple[Dataset, ...]:
        return (self.dataset,)

    def run(self, shard: int, force: bool, log: Logger) -> dict[str, Any]:
        gold = self.gold.read_shard(shard)
        stats = JudgeStats()

        def make() -> list[pa.Table]:
            where = self.judged.store.uri(self.judged.shard_path(shard))
            asks = self.config.uses_llm and (not self.again or any(gold["relabeled"].to_pylist()))
            grade = rejudge_shard if self.again else judge_shard
            teacher = self.judge() if asks else None
            return [grade(gold, self.judged.read_shard(shard), self.config, teacher, stats=stats, where=where)]

        reuse_or_make(self.outputs, shard, make, force=force)
        if stats.undecided:
            log.warning(
                "%s shard %d: the judge gave no verdict line for %d of %d samples; the rules' verdicts stand",
                self.dataset.stage, shard, stats.undecided, stats.asked,
            )  # fmt: skip
        figures = {**verdict_stats(gold, self.dataset.read_shard(shard)), "judge": asdict(stats)}
        return shard_summary(self.dataset, shard, figures=figures)


@dataclass(frozen=True)
class RelabelJob:
    """Majority-relabel the problems of one shard that no sample answered correctly (a ShardJob)."""

    problems: Dataset
    verdicts: Dataset
    dataset: Dataset
    config: RelabelConfig
    timeout_s: float

    @property
    def outputs(self) -> tuple[Dataset, ...]:
        return (self.dataset,)

    def run(self, shard: int, force: bool, log: Logger) -> dict[str, Any]:
        def make() -> list[pa.Table]:
            where = self.verdicts.store.uri(self.verdicts.shard_path(shard))
            problems, verdicts = self.problems.read_shard(shard), self.verdicts.read_shard(shard)
            return [relabel_shard(problems, verdicts, self.config, timeout_s=self.timeout_s, where=where)]

        reuse_or_make(self.outputs, shard, make, force=force)
        figures = relabel_stats(self.dataset.read_shard(shard))
        log.info("relabel shard %d: %d of %d problems relabelled", shard, figures["relabeled"], figures["problems"])
        return shard_summary(self.dataset, shard, figures=figures)


def judge_shard(
    problems: pa.Table,
    samples: pa.Table,
    config: JudgeConfig,
    teacher: Teacher | None,
    *,
    stats: JudgeStats | None = None,
    where: str = "samples",
) -> pa.Table:
    """A verdict row for every sample, in the samples' order."""
    rows = judge_rows(_by_id(problems, where), samples.to_pylist(), config, teacher, stats, where)
    return to_table(rows, VERDICT, what=where)


def relabel_shard(
    problems: pa.Table, verdicts: pa.Table, config: RelabelConfig, *, timeout_s: float = 5.0, where: str = "verdicts"
) -> pa.Table:
    """A relabel row for every problem: the gold after the majority vote, the original and the votes."""
    by_id = _by_id(problems, where)
    answers: dict[str, tuple[list[str | None], list[bool | None]]] = defaultdict(lambda: ([], []))
    for index, row in enumerate(verdicts.select(["problem_id", "extracted", "correct"]).to_pylist()):
        _check_known(row["problem_id"], by_id, where, index)
        extracted, correct = answers[row["problem_id"]]
        extracted.append(row["extracted"])
        correct.append(row["correct"])
    out = []
    for pid, problem in by_id.items():
        decision = Decision(problem["answer"], False, None)
        if config.may_relabel(problem["source"], problem.get("answer_trust")):
            extracted, correct = answers.get(pid, ([], []))
            decision = decide(
                problem["answer"],
                problem["answer_type"],
                extracted,
                correct,
                min_votes=config.min_votes,
                min_share=config.min_share,
                timeout_s=timeout_s,
            )
        out.append(
            {
                **problem,
                "answer": decision.answer,
                "original_answer": problem["answer"],
                "relabeled": decision.relabeled,
                "votes": decision.votes,
            }
        )
    return to_table(out, RELABEL, what=where)


def rejudge_shard(
    relabel: pa.Table,
    verdicts: pa.Table,
    config: JudgeConfig,
    teacher: Teacher | None,
    *,
    stats: JudgeStats | None = None,
    where: str = "verdicts",
) -> pa.Table:
    """The verdicts again, with the samples of relabelled problems judged against their new gold.

    Samples of problems that kept their gold pass through unchanged, without grading them again.
    """
    relabeled = {r["problem_id"]: r for r in relabel.to_pylist() if r["relabeled"]}
    rows = verdicts.to_pylist()
    todo = [i for i, row in enumerate(rows) if row["problem_id"] in relabeled]
    if not todo:
        return to_table(rows, VERDICT, what=where)
    samples = [{name: rows[i][name] for name in SAMPLE.names} for i in todo]
    for i, row in zip(todo, judge_rows(relabeled, samples, config, teacher, stats, where), strict=True):
        rows[i] = row
    return to_table(rows, VERDICT, what=where)


def judge_rows(
    problems: Mapping[str, Mapping[str, Any]],
    samples: list[dict[str, Any]],
    config: JudgeConfig,
    teacher: Teacher | None,
    stats: JudgeStats | None = None,
    where: str = "samples",
) -> list[dict[str, Any]]:
    """Grade sample rows against their problems' gold, then let the judge model decide where the mode says."""
    for index, row in enumerate(samples):
        _check_known(row["problem_id"], problems, where, index)
    items = [
        (row["response"], problems[row["problem_id"]]["answer"], problems[row["problem_id"]]["answer_type"],
         len(problems[row["problem_id"]].get("choices") or []) or None)
        for row in samples
    ]  # fmt: skip
    verdicts = grade_many(items, timeout_s=config.timeout_s, workers=config.workers)
    out = [
        {**row, "extracted": v.extracted, "correct": v.correct, "decided_by": v.decided_by}
        for row, v in zip(samples, verdicts, strict=True)
    ]
    if not config.uses_llm:
        return out
    if teacher is None:
        raise ValueError(f"judge mode {config.mode.value!r} needs a judge teacher (judge.teacher)")
    chosen = [i for i, v in enumerate(verdicts) if _for_judge(v, config)]
    questions = [
        JudgeItem(
            key=f"{out[i]['problem_id']}/{out[i]['sample_idx']}",
            problem=_problem_text(problems[out[i]["problem_id"]]),
            reference=problems[out[i]["problem_id"]]["answer"],
            predicted=str(verdicts[i].extracted),
        )
        for i in chosen
    ]
    stats = stats if stats is not None else JudgeStats()
    stats.asked += len(chosen)
    for i, judged in zip(chosen, ask_judge(questions, teacher, config.params(), base_seed=config.seed), strict=True):
        if judged is None:
            stats.undecided += 1
            continue
        stats.overruled += judged != out[i]["correct"]
        out[i].update(correct=judged, decided_by=LLM_JUDGE)
    return out


def _for_judge(verdict: Verdict, config: JudgeConfig) -> bool:
    """Whether the judge model sees this sample: never without a parsed answer."""
    if verdict.extracted is None:
        return False
    if config.mode is JudgeMode.llm:
        return True
    return verdict.correct is None or (config.recheck_negatives and verdict.correct is False)


def _problem_text(problem: Mapping[str, Any]) -> str:
    """What the judge reads as the problem: description, question and lettered options."""
    fields = prompt_fields(problem)
    return f"{fields['problem']}\n{fields['options']}" if fields["options"] else fields["problem"]


def _by_id(problems: pa.Table, where: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in problems.to_pylist():
        if row["problem_id"] in out:
            raise ValueError(f"{where}: problem_id {row['problem_id']!r} appears twice in the problems shard")
        out[row["problem_id"]] = row
    return out


def _check_known(pid: str, problems: Mapping[str, Any], where: str, index: int) -> None:
    if pid not in problems:
        raise ValueError(
            f"{where}: row {index} field 'problem_id': {pid!r} is not in the matching problems shard "
            "(shards of problems and samples must align)"
        )


# Figures for the run's artifacts. Each shard's figures are plain nested dicts of counts, so a
# cached task can return them and a flow can add them up with `merge`.


def verdict_stats(problems: pa.Table, verdicts: pa.Table) -> dict[str, Any]:
    """Per source: problems, solved problems (a correct sample), samples, correct, wrong, undecided; and decided_by."""
    source_of = dict(zip(problems["problem_id"].to_pylist(), problems["source"].to_pylist(), strict=True))
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for source in source_of.values():
        by_source[source]["problems"] += 1
    solved: set[str] = set()
    decided_by: Counter[str] = Counter()
    for row in verdicts.select(["problem_id", "correct", "decided_by"]).to_pylist():
        counts = by_source[source_of.get(row["problem_id"], "?")]
        counts["samples"] += 1
        counts[{True: "correct", False: "wrong", None: "undecided"}[row["correct"]]] += 1
        decided_by[row["decided_by"]] += 1
        if row["correct"] is True and row["problem_id"] not in solved:
            solved.add(row["problem_id"])
            counts["solved"] += 1
    return {"by_source": {s: dict(c) for s, c in by_source.items()}, "decided_by": dict(decided_by)}


def relabel_stats(relabel: pa.Table) -> dict[str, Any]:
    """Problems, those put to a vote (no sample correct), those relabelled, each 'old → new' relabel; per source
    the problems, their verified golds (never relabelled) and the relabelled ones."""
    rows = relabel.select(["source", "answer_trust", "original_answer", "answer", "relabeled", "votes"]).to_pylist()
    relabels = Counter(f"{r['original_answer']} → {r['answer']}" for r in rows if r["relabeled"])
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        counts = by_source[r["source"]]
        counts["problems"] += 1
        counts["verified"] += r["answer_trust"] == "verified"
        counts["relabeled"] += r["relabeled"]
    return {
        "problems": len(rows),
        "voted": sum(r["votes"] is not None for r in rows),
        "relabeled": sum(r["relabeled"] for r in rows),
        "relabels": dict(relabels),
        "by_source": {source: dict(counts) for source, counts in by_source.items()},
    }


def merge(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Add up nested dicts of counts (the per-shard figures) into one."""
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, Mapping):
                total[key] = merge([total.get(key, {}), value])
            else:
                total[key] = total.get(key, 0) + value
    return total


def accuracy_table(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Accuracy per source, judged against the original gold and after relabel and re-judging."""
    table = []
    for source in sorted(after["by_source"]):
        b, a = before["by_source"].get(source, {}), after["by_source"][source]
        samples = a.get("samples", 0)
        table.append(
            {
                "source": source,
                "problems": a.get("problems", 0),
                "samples": samples,
                "accuracy": _share(b.get("correct", 0), samples),
                "accuracy_after_relabel": _share(a.get("correct", 0), samples),
                "undecided": a.get("undecided", 0),
                "solved_problems": a.get("solved", 0),
            }
        )
    return table


def decided_by_table(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """How many verdicts each tier decided, before and after re-judging."""
    names = sorted(set(before.get("decided_by", {})) | set(after.get("decided_by", {})))
    return [
        {
            "decided_by": name,
            "verdicts": before["decided_by"].get(name, 0),
            "rejudged": after["decided_by"].get(name, 0),
        }
        for name in names
    ]


def judge_summary(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """Markdown: how often the judge model was asked, gave no verdict, and overruled the rules."""
    lines = ["## Judge model", "", "| stage | asked | no verdict | overruled the rules |", "|---|---|---|---|"]
    for stage, figures in (("verdicts", before), ("rejudged", after)):
        judge = figures.get("judge", {})
        lines.append(
            f"| {stage} | {judge.get('asked', 0)} | {judge.get('undecided', 0)} | {judge.get('overruled', 0)} |"
        )
    return "\n".join(lines) + "\n"


def relabel_summary(stats: Mapping[str, Any], top: int = 10) -> str:
    """Markdown: the relabel rate and the most common relabels."""
    problems, relabeled = stats.get("problems", 0), stats.get("relabeled", 0)
    lines = [
        "# Majority relabel",
        "",
        f"* problems: {problems}",
        f"* put to a vote (no correct sample): {stats.get('voted', 0)}",
        f"* relabelled: {relabeled} ({_share(relabeled, problems):.1%})",
    ]
    by_source = stats.get("by_source", {})
    if by_source:
        lines += ["", "| source | problems | verified golds (never relabelled) | relabelled |", "|---|---|---|---|"]
        lines += [
            f"| {_cell(s)} | {c.get('problems', 0)} | {c.get('verified', 0)} | {c.get('relabeled', 0)} |"
            for s, c in sorted(by_source.items())
        ]
    common = Counter(stats.get("relabels", {})).most_common(top)
    if common:
        lines += ["", "| gold → majority | problems |", "|---|---|"]
        lines += [f"| {_cell(relabel)} | {count} |" for relabel, count in common]
    return "\n".join(lines) + "\n"


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _cell(text: str, limit: int = 80) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
