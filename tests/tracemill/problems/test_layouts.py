"""Every common public layout of each benchmark, read from fixtures with the real columns and quirks.

The fixtures in ``fixtures/`` are written by us in the layouts that circulate: GPQA's original CSV
(capitalised headers, multi-line quoted questions, the correct answer always first), copies with
one column per option letter or the options inside the question, MMLU's original release (headerless
CSV files per subject), MMLU-Pro's jsonl with a row whose answer letter and index disagree, GSM8K
copies with a bare number, MATH-500 without ``unique_id``.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tracemill.problems.choice import read_gpqa, read_mmlu, read_mmlu_pro, split_options
from tracemill.problems.config import (
    FileFields,
    FileSource,
    GpqaSource,
    Gsm8kSource,
    Math500Source,
    MmluProSource,
    MmluSource,
)
from tracemill.problems.files import read_files
from tracemill.problems.gsm8k import read_gsm8k
from tracemill.problems.math500 import read_math500
from tracemill.problems.rows import DUPLICATE, RowReport
from tracemill.problems.source import SOURCES
from tracemill.records import problem_id

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return str(FIXTURES / name)


def test_mmlu_pro_bad_rows_are_repaired_or_skipped_and_counted():
    report = RowReport()
    rows = read_mmlu_pro(MmluProSource(path=fixture("mmlu_pro_test.jsonl")), report=report)
    by_id = {r["problem_id"]: r for r in rows}
    assert list(by_id) == [problem_id("mmlu_pro", i) for i in ("70", "71", "3983", "73")]
    # The letter wins where it names an option; the index where the letter is missing.
    assert by_id[problem_id("mmlu_pro", "3983")]["answer"] == "C"
    assert by_id[problem_id("mmlu_pro", "73")]["answer"] == "C"
    assert dict(report.repaired) == {
        "answer letter and answer_index disagree (the letter is kept)": 1,
        "answer is not an option letter (answer_index is kept)": 1,
    }
    assert dict(report.skipped) == {DUPLICATE: 1, "field 'question' is empty": 1}
    # Rows are named by position and by the dataset's own id.
    example = report.to_dict()["examples"]["repaired: answer letter and answer_index disagree (the letter is kept)"]
    assert example.endswith("mmlu_pro_test.jsonl): row 2 (question_id 3983)")


def test_mmlu_pro_on_bad_row_skip_and_fail():
    report = RowReport()
    rows = read_mmlu_pro(MmluProSource(path=fixture("mmlu_pro_test.jsonl"), on_bad_row="skip"), report=report)
    assert [r["problem_id"] for r in rows] == [problem_id("mmlu_pro", i) for i in ("70", "71")]
    assert sum(report.skipped.values()) == 4 and not report.repaired
    message = (
        r"mmlu_pro \(.*mmlu_pro_test\.jsonl\): row 2 \(question_id 3983\): answer letter and answer_index "
        r"disagree \(the letter is kept\): answer 'C', answer_index 3$"
    )
    with pytest.raises(ValueError, match=message):
        read_mmlu_pro(MmluProSource(path=fixture("mmlu_pro_test.jsonl"), on_bad_row="fail"))


def test_mmlu_duplicates_under_another_subject_are_counted(write_rows):
    question = {"question": "What is 2 + 2?", "choices": ["3", "4", "5", "6"], "answer": 1}
    path = write_rows("mmlu/test.parquet", [{**question, "subject": "a"}, {**question, "subject": "b"}])
    report = RowReport()
    assert len(read_mmlu(MmluSource(path=str(path)), report=report)) == 1
    assert report.skipped == Counter({DUPLICATE: 1})
    assert len(read_mmlu(MmluSource(path=str(path), dedup=False))) == 2


def test_mmlu_options_as_letter_columns():
    rows = read_mmlu(MmluSource(path=fixture("mmlu_letters.csv")))
    assert [(r["question"], r["choices"], r["answer"]) for r in rows] == [
        ("Which gas do plants take in?", ["Oxygen", "Carbon dioxide", "Helium", "Neon"], "B"),
        ("What is 2 + 2?", ["3", "4", "5", "22"], "B"),
    ]


ORIGINAL_MMLU = FIXTURES / "mmlu_original" / "data"


def test_mmlu_original_csv_release(write_rows):
    # hendrycks/test's data/: headerless `{subject}_{split}.csv` files, fields quoted as pandas writes them.
    report = RowReport()
    rows = read_mmlu(MmluSource(path=str(ORIGINAL_MMLU)), report=report)
    by_question = {r["question"]: r for r in rows}
    assert [r["subject"] for r in rows] == ["elementary_mathematics"] * 3 + ["high_school_computer_science"] * 4
    # Quoted commas, doubled quotes, an option "None" that stays text, newlines inside a question and in options.
    quoted = by_question['In Python 3, which call turns the text "42" into a whole number?']
    assert quoted["choices"] == ["int(s)", "str(s, 10)", "list(s)", "None"] and quoted["answer"] == "A"
    assert "\n   ° Each score is a whole number\n" in rows[4]["question"]
    assert by_question["Which code segment displays the numbers 1, 2 and 3?"]["choices"][:2] == [
        "FOR i FROM 1 TO 3\n DISPLAY i",
        "FOR i FROM 0 TO 3\n DISPLAY i",
    ]
    assert by_question["What is 6 × 9?"]["choices"] == ["52", "54", "56", "63"]  # numbers stay text
    # The last field is a letter naming a position, even where the options are letters themselves.
    letters = by_question["Which letter comes right after A in the alphabet?"]
    assert letters["choices"] == ["B", "C", "D", "A"] and letters["answer"] == "A"
    # The question repeated under another subject and the row with an empty option are skipped, counted, named.
    assert report.skipped == Counter({DUPLICATE: 1, "field 'D' is empty": 1})
    assert report.examples["skipped: field 'D' is empty"].endswith(
        "data): row 8 (file high_school_computer_science_test.csv line 12)"
    )
    # The same problem ids as a Hub copy of the same rows, so switching copies keeps a build's problems.
    hub = {"question": "What is 6 × 9?", "subject": "elementary_mathematics", "choices": ["52", "54", "56", "63"]}
    hub_rows = read_mmlu(MmluSource(path=str(write_rows("hub/test.parquet", [{**hub, "answer": 1}]))))
    assert hub_rows[0]["problem_id"] == by_question["What is 6 × 9?"]["problem_id"]
    assert hub_rows[0]["answer"] == "B"


def test_mmlu_original_csv_split_subject_and_single_file(tmp_path):
    dev = read_mmlu(MmluSource(path=str(ORIGINAL_MMLU), split="dev"))
    assert [(r["question"], r["answer"], r["split"]) for r in dev] == [("What is 2 + 3?", "B", "dev")]
    # In a folder, `config` names one subject; `all` (the default) reads every one.
    one = read_mmlu(MmluSource(path=str(ORIGINAL_MMLU), config="elementary_mathematics"))
    assert len(one) == 3 and {r["subject"] for r in one} == {"elementary_mathematics"}
    # One file: the subject is its name less `_test.csv`.
    file = ORIGINAL_MMLU / "test" / "high_school_computer_science_test.csv"
    rows = read_mmlu(MmluSource(path=str(file)))
    assert len(rows) == 5 and {r["subject"] for r in rows} == {"high_school_computer_science"}
    assert len(read_mmlu(MmluSource(path=str(ORIGINAL_MMLU / "test" / "*_test.csv")))) == 7  # a glob
    # A row with a field too many or too few is a file error, by file and line.
    broken = tmp_path / "virology_test.csv"
    broken.write_text('"Which cell, of these, is a virus?",A,B,C,D,A\nWhat is a capsid?,a shell,a gene,C\n')
    with pytest.raises(ValueError, match=r"virology_test\.csv line 2: 4 fields; expected 6"):
        read_mmlu(MmluSource(path=str(broken)))


def test_mmlu_pro_options_called_choices(write_rows):
    row = {"question_id": 5, "question": "Pick B.", "choices": ["a", "b", "c"], "answer": "B", "answer_index": 1}
    rows = read_mmlu_pro(MmluProSource(path=str(write_rows("pro.jsonl", [row]))))
    assert rows[0]["choices"] == ["a", "b", "c"] and rows[0]["answer"] == "B"


def test_unknown_layout_names_expected_and_found_columns(write_rows):
    path = write_rows("odd.jsonl", [{"prompt": "Q?", "opts": ["a", "b"], "gold": 0}])
    with pytest.raises(ValueError, match=r"row 0: expected a column 'question' or 'input' or 'problem'.*'prompt'"):
        read_mmlu(MmluSource(path=str(path)))
    path = write_rows("odd2.jsonl", [{"question": "Q?", "opts": ["a", "b"], "answer": 0}])
    with pytest.raises(ValueError, match=r"expected the options in a column 'choices' or 'options'.*'opts'"):
        read_mmlu(MmluSource(path=str(path)))


def test_gpqa_original_csv_is_shuffled_and_the_order_recorded():
    rows = read_gpqa(GpqaSource(path=fixture("gpqa_diamond.csv")))
    assert [r["problem_id"] for r in rows] == [
        problem_id("gpqa", i) for i in ("recA1b2C3d4E5f6G7h", "recZ9y8X7w6V5u4T3s", "recM1n2O3p4Q5r6S7t")
    ]
    first = rows[0]
    assert first["question"].startswith("Two spin-1/2 particles are in a singlet state.\nWhat is")
    extra = json.loads(first["extra"])
    assert extra["domain"] == "Physics" and extra["record_id"] == "recA1b2C3d4E5f6G7h"
    original = ["0", "1", "1/2", "2"]
    assert first["choices"] == [original[i] for i in extra["option_order"]]
    assert first["choices"]["ABCD".index(first["answer"])] == "0"
    assert {r["subject"] for r in rows} == {"Quantum Mechanics", "Organic Chemistry", "Molecular Biology"}
    # Off, the file's order stands: the correct answer is A every time.
    plain = read_gpqa(GpqaSource(path=fixture("gpqa_diamond.csv"), shuffle_options=False))
    assert {r["answer"] for r in plain} == {"A"} and "option_order" not in json.loads(plain[0]["extra"])


def test_gpqa_lowercase_underscore_headers(write_rows):
    row = {"question": "Q?", "correct_answer": "yes", "incorrect_answer_1": "no", "incorrect_answer_2": "maybe",
           "incorrect_answer_3": "never", "record_id": "r1"}  # fmt: skip
    rows = read_gpqa(GpqaSource(path=str(write_rows("gpqa.jsonl", [row]))))
    assert rows[0]["problem_id"] == problem_id("gpqa", "r1")
    assert rows[0]["choices"]["ABCD".index(rows[0]["answer"])] == "yes"


def test_gpqa_letter_columns_copy():
    rows = read_gpqa(GpqaSource(path=fixture("gpqa_letters.csv"), shuffle_options=False))
    assert [(r["choices"], r["answer"]) for r in rows] == [
        (["1", "0", "2", "1/2"], "B"),
        (["Vacuole", "Golgi body", "Mitochondrion", "Chloroplast"], "D"),
    ]


def test_options_in_the_question_text():
    source = GpqaSource(path=fixture("gpqa_inline.jsonl"), shuffle_options=False, options_in_question=True)
    report = RowReport()
    rows = read_gpqa(source, report=report)
    spin = "Two spin-1/2 particles are in a singlet state. What is the total spin quantum number?"
    cell = "Which organelle holds most of a plant cell's chlorophyll?"
    assert [(r["question"], r["choices"], r["answer"]) for r in rows] == [
        (spin, ["1", "0", "2", "1/2"], "B"),
        (cell, ["Vacuole", "Golgi body", "Mitochondrion", "Chloroplast"], "D"),
    ]
    assert rows[0]["problem_id"] == problem_id("gpqa", "gpqa-0")
    assert report.skipped == Counter({"no options '(A) …' found in the question text": 1})
    # Without the flag, the layout error says how to read such a file.
    with pytest.raises(ValueError, match="options_in_question: true"):
        read_gpqa(GpqaSource(path=fixture("gpqa_inline.jsonl")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Pick one.\nA. red\nB. blue\nC. green", ("Pick one.", ["red", "blue", "green"])),
        ("Pick one: (A) red (B) blue", ("Pick one:", ["red", "blue"])),
        ("Is (A) a letter? Yes.", None),
        ("No options here.", None),
    ],
)
def test_split_options(text, expected):
    assert split_options(text) == expected


def test_files_source_options_in_question_and_shuffle():
    source = FileSource(
        path=fixture("gpqa_inline.jsonl"),
        name="mine",
        answer_type="choice",
        options_in_question=True,
        shuffle_options=True,
        fields=FileFields(id="id"),
    )
    rows = read_files(source)
    assert len(rows) == 2
    for row, correct in zip(rows, ["0", "Chloroplast"], strict=True):
        assert row["choices"]["ABCD".index(row["answer"])] == correct
        assert sorted(json.loads(row["extra"])["option_order"]) == [0, 1, 2, 3]


def test_gsm8k_bare_number_copies():
    report = RowReport()
    rows = read_gsm8k(Gsm8kSource(path=fixture("gsm8k_bare_number.jsonl")), report=report)
    assert [r["answer"] for r in rows] == ["84", "1000", "4.5"]
    assert report.skipped == Counter({"field 'answer' has no final '#### N' line and is not a number": 1})
    rows = read_gsm8k(Gsm8kSource(path=fixture("gsm8k_solution_column.jsonl")))
    assert rows[0]["answer"] == "84" and json.loads(rows[0]["extra"]) == {"solution": "12 * 7 = 84 loaves."}


def test_math500_without_unique_id_keys_on_the_problem():
    rows = read_math500(Math500Source(path=fixture("math500_no_unique_id.jsonl")))
    assert [r["answer"] for r in rows] == ["55", "7"] and rows[0]["level"] == "1"
    assert rows[0]["problem_id"] == problem_id("math500", "Compute $1+2+\\cdots+10$.")
    rows = read_math500(Math500Source(path=fixture("math500_question_column.jsonl")))
    assert rows[0]["question"] == "Compute $1+2+\\cdots+10$."


def test_snapshot_folder_with_a_loading_script_reads_its_data_files(tmp_path):
    # Idavidrein/gpqa as `huggingface-cli download` leaves it: a loading script beside the CSVs.
    folder = tmp_path / "gpqa"
    folder.mkdir()
    (folder / "gpqa.py").write_text("# a datasets loading script\n")
    shutil.copy(FIXTURES / "gpqa_diamond.csv", folder / "gpqa_diamond.csv")
    shutil.copy(FIXTURES / "gpqa_letters.csv", folder / "gpqa_main.csv")
    rows = read_gpqa(GpqaSource(path=str(folder)))
    assert len(rows) == 3 and rows[0]["problem_id"] == problem_id("gpqa", "recA1b2C3d4E5f6G7h")
    with pytest.raises(ValueError, match=r"no longer runs loading scripts \(gpqa\.py\).*gpqa_diamond\.csv"):
        read_gpqa(GpqaSource(path=str(folder), config="gpqa_extended"))


def test_every_source_takes_a_seeded_max_problems():
    # A trial build of 50 problems works on any source: each has max_problems with its sample_seed.
    lacking = [kind for kind, cls in SOURCES.items() if not {"max_problems", "sample_seed"} <= set(cls.model_fields)]
    assert lacking == []
