"""MMLU, MMLU-Pro and GPQA from local copies: options in `choices`, the gold as a letter."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tracemill.problems.choice import read_gpqa, read_mmlu, read_mmlu_pro
from tracemill.problems.config import GpqaSource, MmluProSource, MmluSource
from tracemill.records import PROBLEM, problem_id, to_table

MMLU = [
    {"question": "Which gas do plants take in?", "subject": "biology",
     "choices": ["Oxygen", "Carbon dioxide", "Helium", "Neon"], "answer": 1},
    {"question": "2 + 2 = ?", "subject": "elementary_mathematics", "choices": ["3", "4", "5", "22"], "answer": 3},
]  # fmt: skip

TEN = [f"option {i}" for i in range(10)]
MMLU_PRO = [
    {"question_id": 70, "question": "Pick the ninth.", "options": TEN, "answer": "I", "answer_index": 8,
     "cot_content": "", "category": "math", "src": "ori_mmlu-high_school_mathematics"},
    {"question_id": 71, "question": "Pick the last.", "options": TEN, "answer": "J", "answer_index": 9,
     "cot_content": "", "category": "physics", "src": "stemez-Physics"},
    {"question_id": 72, "question": "Only three here.", "options": ["x", "y", "z"], "answer": "B", "answer_index": 1,
     "cot_content": "", "category": "law", "src": "ori_mmlu-professional_law"},
]  # fmt: skip


def gpqa_row(i: int) -> dict:
    return {
        "Record ID": f"rec{i:04d}",
        "Question": f"Which particle is number {i}?",
        "Correct Answer": f"right {i}",
        "Incorrect Answer 1": f"wrong a{i}",
        "Incorrect Answer 2": f"wrong b{i}",
        "Incorrect Answer 3": f"wrong c{i}",
        "Explanation": "Because.",
        "Subdomain": "Quantum Mechanics",
        "High-level domain": "Physics",
    }


def test_mmlu_index_becomes_a_letter(write_rows):
    path = write_rows("mmlu/all/test.parquet", MMLU)
    rows = read_mmlu(MmluSource(path=str(path)))
    assert [(r["answer"], r["choices"]) for r in rows] == [("B", MMLU[0]["choices"]), ("D", MMLU[1]["choices"])]
    assert {(r["answer_type"], r["prompt_template"], r["source"]) for r in rows} == {("choice", "choice", "mmlu")}
    assert rows[0]["subject"] == "biology" and rows[0]["question"] == MMLU[0]["question"]
    assert to_table(rows, PROBLEM).column("choices").to_pylist()[1] == ["3", "4", "5", "22"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {**MMLU[1], "answer": 4},
            r"row 1: field 'answer' is not a letter A-D, an index 0\.\.3 or the text of an option: 4",
        ),
        ({**MMLU[1], "answer": "E"}, r"row 1: field 'answer' is not a letter A-D, .*: 'E'"),
        ({**MMLU[1], "choices": ["only"]}, r"row 1: field 'choices' is not a list of 2 to 26 options"),
        ({k: v for k, v in MMLU[1].items() if k != "question"}, r"row 1: field 'question' is null"),
    ],
)
def test_mmlu_errors_name_dataset_row_and_field(write_rows, row, message):
    path = write_rows("test.jsonl", [MMLU[0], row])
    with pytest.raises(ValueError, match=r"mmlu \(.*test\.jsonl\): " + message):
        read_mmlu(MmluSource(path=str(path), on_bad_row="fail"))
    assert len(read_mmlu(MmluSource(path=str(path)))) == 1  # by default the row is skipped, and counted


def test_mmlu_pro_ten_options_and_fewer(write_rows):
    path = write_rows("mmlu_pro/test.parquet", MMLU_PRO)
    rows = read_mmlu_pro(MmluProSource(path=str(path)))
    assert [r["answer"] for r in rows] == ["I", "J", "B"]
    assert [len(r["choices"]) for r in rows] == [10, 10, 3]
    assert rows[0]["problem_id"] == problem_id("mmlu_pro", "70")
    assert rows[1]["subject"] == "physics" and json.loads(rows[1]["extra"]) == {"src": "stemez-Physics"}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**MMLU_PRO[2], "answer": "D"}, r"row 1 \(question_id 72\): answer is not an option letter .*: answer 'D'"),
        (
            {**MMLU_PRO[2], "answer_index": 2},
            r"row 1 \(question_id 72\): answer letter and answer_index disagree .*: answer 'B', answer_index 2",
        ),
        (
            {**MMLU_PRO[2], "options": [*TEN, "eleven"]},
            r"row 1 \(question_id 72\): field 'options' is not a list of 2 to 10 options",
        ),
    ],
)
def test_mmlu_pro_errors(write_rows, row, message):
    path = write_rows("test.jsonl", [MMLU_PRO[0], row])
    with pytest.raises(ValueError, match=r"mmlu_pro \(.*test\.jsonl\): " + message):
        read_mmlu_pro(MmluProSource(path=str(path), on_bad_row="fail"))


def test_gpqa_shuffle_is_deterministic_and_uniform(write_rows):
    rows_in = [gpqa_row(i) for i in range(400)]
    path = write_rows("gpqa/gpqa_diamond.csv", rows_in)
    rows = read_gpqa(GpqaSource(path=str(path)))
    assert len(rows) == 400
    for row, original in zip(rows, rows_in, strict=True):
        assert row["choices"]["ABCD".index(row["answer"])] == original["Correct Answer"]
        assert sorted(row["choices"]) == sorted(original[k] for k in original if "Answer" in k)
    assert rows[0]["problem_id"] == problem_id("gpqa", "rec0000")
    assert rows[0]["subject"] == "Quantum Mechanics" and rows[0]["split"] == "train"
    extra = json.loads(rows[0]["extra"])
    assert extra == {"domain": "Physics", "record_id": "rec0000", "option_order": extra["option_order"]}
    # The correct letter is spread evenly over A-D, not always A as in the file.
    counts = Counter(r["answer"] for r in rows)
    assert set(counts) == set("ABCD") and all(70 <= n <= 130 for n in counts.values()), counts
    # The same seed gives the same options on every run; another seed another order.
    assert read_gpqa(GpqaSource(path=str(path))) == rows
    other = read_gpqa(GpqaSource(path=str(path), shuffle_seed=1))
    assert [r["problem_id"] for r in other] == [r["problem_id"] for r in rows]
    assert sum(a["answer"] != b["answer"] for a, b in zip(rows, other, strict=True)) > 200


def test_gpqa_missing_option_names_the_field(write_rows):
    broken = {**gpqa_row(1), "Incorrect Answer 2": None}
    path = write_rows("gpqa.jsonl", [gpqa_row(0), broken])
    message = r"gpqa \(.*gpqa\.jsonl\): row 1 \(Record ID rec0001\): field 'Incorrect Answer 2' is null"
    with pytest.raises(ValueError, match=message):
        read_gpqa(GpqaSource(path=str(path), on_bad_row="fail"))
