"""A verified gold never changes: CLEVR answers from our executor and procedural scenes keep their gold
under the default relabel settings even when every sample agrees on another answer, while a reference
gold in the same shard is relabelled (so the vote itself is live)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import yaml

from tracemill.judging import stage as judging
from tracemill.judging.config import JudgeConfig, RelabelConfig
from tracemill.problems.clevr import read_counting_problems
from tracemill.problems.clevr_questions import procedural_problems
from tracemill.problems.config import ClevrProceduralSource
from tracemill.records import PROBLEM, RELABEL, SAMPLE, to_table

from .problems.test_clevr_files import QUESTIONS, SCENES, write

ROOT = Path(__file__).resolve().parents[2]


def _with_a_reference_problem(rows: list[dict]) -> pa.Table:
    control = {**rows[0], "problem_id": "reference-control", "answer_trust": "reference"}
    return to_table([*rows, control], PROBLEM)


def _unanimous_wrong_samples(problems: pa.Table, n: int = 4) -> pa.Table:
    """Every sample of every problem answers the gold plus one: a clear majority against the gold."""
    rows = []
    for pid, gold in zip(problems["problem_id"].to_pylist(), problems["answer"].to_pylist(), strict=True):
        for i in range(n):
            rows.append({"problem_id": pid, "sample_idx": i, "teacher": "t", "prompt_version": "v", "prompt": "q",
                         "response": f"<think>count</think>\n**The answer is: **{int(gold) + 1}"})  # fmt: skip
    return to_table(rows, SAMPLE)


def _relabel(problems: pa.Table, config: RelabelConfig) -> list[dict]:
    verdicts = judging.judge_shard(problems, _unanimous_wrong_samples(problems), JudgeConfig(), None)
    return judging.relabel_shard(problems, verdicts, config).to_pylist()


def _assert_only_the_control_moved(problems: pa.Table, relabel: list[dict]) -> None:
    gold = dict(zip(problems["problem_id"].to_pylist(), problems["answer"].to_pylist(), strict=True))
    verified = [r for r in relabel if r["problem_id"] != "reference-control"]
    assert verified and all(r["answer_trust"] == "verified" for r in verified)
    assert [r["problem_id"] for r in verified if r["relabeled"] or r["answer"] != gold[r["problem_id"]]] == []
    (control,) = [r for r in relabel if r["problem_id"] == "reference-control"]
    assert control["relabeled"] and control["answer"] == str(int(control["original_answer"]) + 1)


def test_clevr_files_golds_are_verified_and_never_relabelled(tmp_path: Path) -> None:
    rows = read_counting_problems(write(tmp_path / "s.json", SCENES), write(tmp_path / "q.json", QUESTIONS))
    problems = _with_a_reference_problem(rows)
    _assert_only_the_control_moved(problems, _relabel(problems, RelabelConfig()))
    _assert_only_the_control_moved(problems, _relabel(problems, RelabelConfig(min_votes=1, min_share=0.01)))


def test_procedural_golds_are_verified_and_never_relabelled() -> None:
    problems = _with_a_reference_problem(procedural_problems(0, 0, 25, questions_per_scene=3))
    _assert_only_the_control_moved(problems, _relabel(problems, RelabelConfig()))


def test_the_demo_relabels_none_of_its_procedural_problems() -> None:
    """All the demo's problems, with its own source and relabel settings, against a unanimous wrong majority."""
    demo = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    source, config = ClevrProceduralSource(**demo["source"]), RelabelConfig(**demo["relabel"])
    rows = procedural_problems(source.seed, 0, source.num_scenes, questions_per_scene=source.questions_per_scene)
    relabel = _relabel(to_table(rows, PROBLEM), config)
    assert len(relabel) == len(rows) and not any(r["relabeled"] for r in relabel)
    stats = judging.relabel_stats(to_table(relabel, RELABEL))
    assert stats["by_source"] == {"clevr_procedural": {"problems": len(rows), "verified": len(rows), "relabeled": 0}}
