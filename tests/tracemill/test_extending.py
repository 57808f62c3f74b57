"""The README's "Extending tracemill" recipes, each done here in the test and run through the library's stage
functions without Prefect: a toy source (the problems shard), a toy filter (filter_shard) and a toy export layout
(export_shard); and the fingerprint identity each new config field gets (derived from the config model)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pytest
from pydantic import Field, TypeAdapter

from tracemill.config import identity_of
from tracemill.export import layouts as export
from tracemill.export.config import ExportConfig
from tracemill.filtering import funnel, rules
from tracemill.filtering import stage as filters
from tracemill.filtering.config import FilterConfig
from tracemill.judging import stage as judging
from tracemill.judging.config import JudgeConfig, RelabelConfig
from tracemill.problems import source as sources
from tracemill.problems import stage as problems
from tracemill.problems.config import SourceConfig
from tracemill.problems.rows import RowReport
from tracemill.records import SAMPLE, to_table
from tracemill.sampling import stage as sampling
from tracemill.sampling.config import SamplingConfig
from tracemill.sampling.prompts import BUILTIN, prompt_columns
from tracemill.store import Store
from tracemill.teachers.config import VllmTeacherConfig
from tracemill.teachers.factory import teacher_identity

# --- the extensions, as a contributor writes them ----------------------------------------------------


class ToySource(sources.ReadSource):
    """Additions ``i + 2``: a source is its config (a ``kind`` literal) and its reader."""

    kind: Literal["toy"] = "toy"
    count: int = Field(5, ge=1, le=1000, description="Problems.")
    max_problems: int | None = Field(None, ge=1, description="A seeded sample of this many; all when empty.")
    sample_seed: int = Field(0, ge=0, description="Seed of the max_problems sample.")
    problems_per_shard: int = Field(3, ge=1, description="Problems per shard.")

    def read(self, store: Store, report: RowReport) -> list[dict[str, Any]]:
        return [
            {"problem_id": f"toy-{i}", "source": "toy", "split": "test", "question": f"What is {i} + 2?",
             "answer": str(i + 2), "answer_type": "integer", "prompt_template": "math_boxed"}
            for i in range(self.count)
        ]  # fmt: skip

    def where(self) -> str:
        return "toy additions"


class ToyFilterConfig(FilterConfig):
    """A filter's toggle is a field of FilterConfig."""

    drop_shouting: bool = Field(False, description="Drop samples whose response ends in '!!!'.")


SHOUTING = rules.RowFilter("shouting", "drop_shouting", lambda row: (row["response"] or "").endswith("!!!"))


class ToyExportConfig(ExportConfig):
    """A layout's toggle is a field of ExportConfig."""

    answers_only: bool = Field(True, description="answers/*.jsonl: {problem_id, answer} of each kept sample.")


ANSWERS = export.Layout(
    "answers",
    "answers/train",
    "jsonl",
    lambda kept, rejected, scores: kept.select(["problem_id", "extracted"]).to_pylist(),
    "answers_only",
)


@pytest.fixture
def registered() -> Iterator[None]:
    """The three registrations, undone after the test."""
    builtin = dict(sources.SOURCES)
    sources.register_source(ToySource)
    rules.register_row_filter(SHOUTING)
    export.register_layout(ANSWERS)
    try:
        yield
    finally:
        sources.SOURCES.pop("toy")
        rules.ROW_FILTERS.pop("shouting")
        export.LAYOUTS.pop("answers")
        assert builtin == sources.SOURCES


# --- a source ----------------------------------------------------------------------------------------


def test_the_source_union_is_derived_from_the_registry(registered: None) -> None:
    builtin = [kind for kind in sources.SOURCES if kind != "toy"]
    assert [m.model_fields["kind"].default for m in _members(SourceConfig)] == builtin  # imported before "toy"
    union = TypeAdapter(sources.source_union())
    assert union.validate_python({"kind": "toy", "count": 4}) == ToySource(count=4)
    picker = union.json_schema()
    assert "toy" in [member["title"] for member in picker["anyOf"]]  # the UI form's kind picker offers it
    assert "clevr_procedural" in json.dumps(picker)


def test_a_registered_source_runs_through_the_problems_stage(registered: None, tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    source = ToySource()
    assert problems.num_shards(source, store) == 2
    shard = problems.build_shard(source, 1, store)
    assert shard.column("problem_id").to_pylist() == ["toy-3", "toy-4"]
    assert shard.column("answer_trust").to_pylist() == ["reference", "reference"]
    assert problems.row_report(source, store) == RowReport().to_dict()
    assert problems.stage_fingerprint(ToySource(count=6), store) != problems.stage_fingerprint(source, store)


# --- a filter and an export layout --------------------------------------------------------------------


def _samples(problem_rows: pa.Table) -> pa.Table:
    """Two samples per problem, as the sampling stage writes them: a right one, and a shouted one for toy-0."""
    template = BUILTIN["math_boxed"]
    rows = []
    for problem in problem_rows.to_pylist():
        for idx in range(2):
            shout = "!!!" if (problem["problem_id"], idx) == ("toy-0", 1) else ""
            rows.append(
                {"problem_id": problem["problem_id"], "sample_idx": idx, "teacher": "toy-teacher",
                 "prompt_version": template.id, **prompt_columns(template.render(problem)), "seed": idx,
                 "reasoning": f"I add, way {idx}.", "response": f"So \\boxed{{{problem['answer']}}}{shout}",
                 "finish_reason": "stop", "completion_tokens": 5}
            )  # fmt: skip
    return to_table(rows, SAMPLE)


def test_a_registered_filter_and_layout_run_through_filtering_and_export(registered: None, tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    problem_rows = problems.build_shard(ToySource(), 0, store)
    verdicts = judging.judge_shard(problem_rows, _samples(problem_rows), JudgeConfig(), None)
    relabel = judging.relabel_shard(problem_rows, verdicts, RelabelConfig())

    config = ToyFilterConfig(drop_shouting=True)
    kept, rejected = filters.filter_shard(relabel, verdicts, filters.Plan(config))
    assert rejected.select(["problem_id", "sample_idx", "reason"]).to_pylist() == [
        {"problem_id": "toy-0", "sample_idx": 1, "reason": "shouting"}
    ]
    counts = funnel.shard_counts(relabel, verdicts, kept, rejected)["toy"]
    stages = [row["stage"] for row in counts.stages()]
    assert stages.index("undecided") < stages.index("shouting") < stages.index("duplicate")  # a row filter's place
    assert counts.stages()[-1]["rows_out"] == counts.kept == 5
    kept_off, _ = filters.filter_shard(relabel, verdicts, filters.Plan(ToyFilterConfig()))
    assert kept_off.num_rows == 6

    out = export.export_dir(store, "k" * 16, ToyExportConfig())
    marker = export.export_shard(kept, rejected, out, 0, ToyExportConfig())
    written = (Path(out.path) / marker["files"]["answers"]["file"]).read_text().splitlines()
    assert [json.loads(line) for line in written][:2] == [
        {"problem_id": "toy-0", "extracted": "2"},
        {"problem_id": "toy-1", "extracted": "3"},
    ]
    assert export.configs([marker])["answers"] == "answers.jsonl"  # merged and listed on the card like the others
    assert "answers/**" in export.jsonl_parts()
    off = export.export_dir(store, "k" * 16, ToyExportConfig(answers_only=False))
    assert "answers" not in export.export_shard(kept, rejected, off, 0, ToyExportConfig(answers_only=False))["files"]


# --- identity: derived from the config model ------------------------------------------------------------


def test_an_export_toggle_changes_the_fingerprint_and_the_card_wording_does_not(tmp_path: Path) -> None:
    store = Store(str(tmp_path))

    def fp(config: ExportConfig) -> str:
        return export.export_dir(store, "k" * 16, config).fingerprint

    assert fp(ToyExportConfig()) != fp(ExportConfig())  # a new layout is no silent reuse of old exports
    assert fp(ToyExportConfig(answers_only=False)) != fp(ToyExportConfig())
    assert fp(ToyExportConfig(pretty_name="Another title", hub_target="hub", histogram_bins=7)) == fp(ToyExportConfig())
    assert "pretty_name" not in identity_of(ToyExportConfig()) and "answers_only" in identity_of(ToyExportConfig())


class SpicyVllmTeacher(VllmTeacherConfig):
    """A teacher field that changes output."""

    top_k: int = Field(40, ge=1, description="Sample from the k likeliest tokens.")


class RoomyVllmTeacher(VllmTeacherConfig):
    """An engine-sizing field, on the exclude-list."""

    identity_exclude = VllmTeacherConfig.identity_exclude | {"swap_space_gb"}
    swap_space_gb: int = Field(4, ge=0, description="CPU swap space per GPU.")


def test_a_teacher_field_changes_the_samples_fingerprint_and_engine_sizing_does_not() -> None:
    def fp(teacher: VllmTeacherConfig) -> str:
        return sampling.samples_stage(SamplingConfig(teacher=teacher), "p" * 16).fingerprint

    base = fp(VllmTeacherConfig(model="m"))
    assert fp(SpicyVllmTeacher(model="m")) != base
    assert fp(SpicyVllmTeacher(model="m", top_k=5)) != fp(SpicyVllmTeacher(model="m"))
    assert fp(RoomyVllmTeacher(model="m", swap_space_gb=64)) == base
    assert fp(VllmTeacherConfig(model="m", max_num_seqs=7, gpu_memory_utilization=0.5)) == base
    assert teacher_identity(SpicyVllmTeacher(model="m"))["top_k"] == 40


def test_nested_configs_are_identified_by_their_own_exclude_lists() -> None:
    class Engine(FilterConfig):
        identity_exclude = frozenset({"threads"})
        threads: int = 4

    class Outer(FilterConfig):
        engine: Engine = Field(default_factory=Engine)

    assert identity_of(Outer(engine=Engine(threads=9))) == identity_of(Outer())
    assert identity_of(Outer(engine=Engine(correct_only=False))) != identity_of(Outer())
    assert identity_of(FilterConfig()) == FilterConfig().model_dump(mode="json")  # nothing excluded: the whole config


def _members(union: Any) -> list[Any]:
    from typing import get_args

    return list(get_args(get_args(union)[0]))
