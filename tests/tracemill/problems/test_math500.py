"""MATH-500 from a local copy in the Hub's schema: math answers, subject and level, ids from unique_id."""

from __future__ import annotations

import json

import pytest

from tracemill.problems.config import Math500Source
from tracemill.problems.math500 import read_math500
from tracemill.records import PROBLEM, problem_id, to_table

ROWS = [
    {
        "problem": "What is $\\frac{1}{2} + \\frac{1}{3}$?",
        "solution": "Common denominator: $\\frac{3}{6} + \\frac{2}{6} = \\boxed{\\frac{5}{6}}$.",
        "answer": "\\frac{5}{6}",
        "subject": "Prealgebra",
        "level": 2,
        "unique_id": "test/prealgebra/101.json",
    },
    {
        "problem": "Find all real $x$ with $x^2 = 4$.",
        "solution": "$x = \\pm 2$, so $\\boxed{-2, 2}$.",
        "answer": "-2, 2",
        "subject": "Algebra",
        "level": 3,
        "unique_id": "test/algebra/7.json",
    },
]


def test_rows_from_a_local_file(write_rows):
    path = write_rows("math500/test.jsonl", ROWS)
    rows = read_math500(Math500Source(path=str(path)))
    assert [r["question"] for r in rows] == [r["problem"] for r in ROWS]
    first = rows[0]
    assert first["problem_id"] == problem_id("math500", "test/prealgebra/101.json")
    assert (first["source"], first["split"], first["answer"]) == ("math500", "test", "\\frac{5}{6}")
    assert (first["answer_type"], first["prompt_template"]) == ("math", "math_boxed")
    assert (first["subject"], first["level"]) == ("Prealgebra", "2")
    assert json.loads(first["extra"]) == {"solution": ROWS[0]["solution"]}
    assert to_table(rows, PROBLEM).num_rows == 2


def test_a_snapshot_folder_reads_like_the_file_and_ids_are_stable(write_rows):
    path = write_rows("MATH-500/test.jsonl", ROWS)
    from_file = read_math500(Math500Source(path=str(path)))
    from_folder = read_math500(Math500Source(path=str(path.parent)))
    assert from_folder == from_file
    assert read_math500(Math500Source(path=str(path), streaming=True)) == from_file


def test_missing_field_names_dataset_row_and_field(write_rows):
    path = write_rows("test.jsonl", [ROWS[0], {k: v for k, v in ROWS[1].items() if k != "answer"}])
    message = r"math500 \(.*test\.jsonl\): row 1 \(unique_id .*\): field 'answer' is null"
    with pytest.raises(ValueError, match=message):
        read_math500(Math500Source(path=str(path), on_bad_row="fail"))
