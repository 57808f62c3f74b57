"""OpenMathReasoning from a local copy: one row per problem, proofs left out unless asked for."""

from __future__ import annotations

import json

import pytest

from tracemill.problems.config import OpenMathReasoningSource
from tracemill.problems.openmath import read_openmathreasoning
from tracemill.records import problem_id


def row(problem: str, answer: str, problem_type: str = "has_answer_extracted", solution: str = "...") -> dict:
    return {
        "problem": problem,
        "generated_solution": f"<think>{solution}</think> \\boxed{{{answer}}}",
        "generation_model": "DeepSeek-R1",
        "problem_type": problem_type,
        "expected_answer": answer,
        "problem_source": "aops_c4_high_school_math",
        "inference_mode": "cot",
        "used_in_kaggle": False,
        "pass_rate_72b_tir": "0.5",
    }


ROWS = [
    row("Find $n$ with $n^2 = 49$, $n > 0$.", "7", solution="one"),
    row("Find $n$ with $n^2 = 49$, $n > 0$.", "7", solution="two"),  # a second solution of the same problem
    row("Prove that $\\sqrt{2}$ is irrational; give $p^2/q^2$.", "2", "converted_proof"),
    row("Estimate $\\pi$ to two decimals.", "3.14", "no_answer_extracted"),
    row("Compute $1 + 1$.", "2"),
]


def test_one_row_per_problem_without_proofs(write_rows):
    path = write_rows("omr/cot.parquet", ROWS)
    rows = read_openmathreasoning(OpenMathReasoningSource(path=str(path)))
    assert [r["answer"] for r in rows] == ["7", "3.14", "2"]
    assert {(r["answer_type"], r["prompt_template"], r["split"]) for r in rows} == {("math", "math_boxed", "cot")}
    assert rows[0]["problem_id"] == problem_id("openmathreasoning", ROWS[0]["problem"])
    assert json.loads(rows[1]["extra"]) == {
        "problem_type": "no_answer_extracted",
        "problem_source": "aops_c4_high_school_math",
        "pass_rate_72b_tir": "0.5",
        "used_in_kaggle": False,
    }


def test_problem_types_and_max_rows(write_rows):
    path = str(write_rows("omr/cot.jsonl", ROWS))
    everything = read_openmathreasoning(
        OpenMathReasoningSource(path=path, problem_types=["has_answer_extracted", "converted_proof"])
    )
    assert [r["answer"] for r in everything] == ["7", "2", "2"]
    # Reading stops after max_rows kept problems; rows after it are never looked at.
    broken = [*ROWS[:2], ROWS[4], {"problem": "no answer", "problem_type": "has_answer_extracted"}]
    path = str(write_rows("broken.jsonl", broken))
    assert len(read_openmathreasoning(OpenMathReasoningSource(path=path, max_rows=2))) == 2
    with pytest.raises(ValueError, match=r"openmathreasoning \(.*\): row 3: field 'expected_answer' is null"):
        read_openmathreasoning(OpenMathReasoningSource(path=path, max_rows=3, on_bad_row="fail"))
