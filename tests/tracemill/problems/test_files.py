"""The user's own files: any format, any fsspec URL, a column mapping, answers checked by type."""

from __future__ import annotations

import json

import fsspec
import pytest
from pydantic import ValidationError

from tracemill.problems.config import FileFields, FileSource
from tracemill.problems.files import read_files
from tracemill.problems.rows import RowReport
from tracemill.records import PROBLEM, problem_id, to_table

ROWS = [
    {"id": "q-1", "prompt": "What is 6 * 7?", "gold": "42", "topic": "arithmetic", "grade": 1, "origin": "made-up"},
    {"id": "q-2", "prompt": "Simplify $\\frac{2}{4}$.", "gold": "\\frac{1}{2}", "topic": "fractions", "grade": 2,
     "origin": "made-up"},
]  # fmt: skip
MAPPING = FileFields(question="prompt", answer="gold", id="id", subject="topic", level="grade", extra=["origin"])


@pytest.mark.parametrize("name", ["mine.jsonl", "mine.json", "mine.parquet", "mine.csv"])
def test_every_format_reads_the_same_rows(write_rows, name):
    path = write_rows(name, ROWS)
    rows = read_files(FileSource(path=str(path), name="homework", fields=MAPPING))
    assert [r["question"] for r in rows] == ["What is 6 * 7?", "Simplify $\\frac{2}{4}$."]
    assert [r["answer"] for r in rows] == ["42", "\\frac{1}{2}"]
    first = rows[0]
    assert first["problem_id"] == problem_id("homework", "q-1")
    assert (first["source"], first["split"], first["answer_type"], first["prompt_template"]) == (
        "homework",
        "train",
        "math",
        "math_boxed",
    )
    assert (first["subject"], first["level"]) == ("arithmetic", "1")
    assert json.loads(first["extra"]) == {"origin": "made-up"}
    assert to_table(rows, PROBLEM).num_rows == 2


def test_any_fsspec_url_and_a_glob(write_rows):
    with fsspec.open("memory://user-files/part-0.jsonl", "w") as f:
        f.write(json.dumps({"question": "1 + 1?", "answer": "2"}) + "\n")
    with fsspec.open("memory://user-files/part-1.jsonl", "w") as f:
        f.write(json.dumps({"question": "2 + 2?", "answer": "4"}) + "\n")
    rows = read_files(FileSource(path="memory://user-files/*.jsonl", name="mem", answer_type="integer"))
    assert [r["answer"] for r in rows] == ["2", "4"]
    assert rows[0]["problem_id"] == problem_id("mem", "1 + 1?")


def test_choices_from_a_list_column_or_one_column_per_option(write_rows):
    listed = [
        {"q": "Colour of the sky?", "options": ["green", "blue", "red"], "gold": "B"},
        {"q": "Largest?", "options": ["1", "10", "100"], "gold": "100"},
        {"q": "Smallest?", "options": ["1", "10", "100"], "gold": "a"},
    ]
    fields = FileFields(question="q", answer="gold", choices=["options"])
    path = write_rows("listed.jsonl", listed)
    rows = read_files(FileSource(path=str(path), name="quiz", answer_type="choice", fields=fields))
    assert [r["answer"] for r in rows] == ["B", "C", "A"]
    assert {(r["answer_type"], r["prompt_template"]) for r in rows} == {("choice", "choice")}
    assert rows[0]["choices"] == ["green", "blue", "red"]
    path = write_rows("indexed.parquet", [{**row, "gold": i} for i, row in enumerate(listed)])
    rows = read_files(FileSource(path=str(path), name="quiz", answer_type="choice", fields=fields))
    assert [r["answer"] for r in rows] == ["A", "B", "C"]

    columns = [{"q": "Capital of France?", "A": "Lyon", "B": "Paris", "C": "Nice", "D": "Lille", "gold": "b"}]
    path = write_rows("columns.csv", columns)
    fields = FileFields(question="q", answer="gold", choices=["A", "B", "C", "D"])
    source = FileSource(path=str(path), name="quiz", answer_type="choice", fields=fields, prompt_template="mcq_v2")
    (row,) = read_files(source)
    assert (row["answer"], row["choices"], row["prompt_template"]) == (
        "B",
        ["Lyon", "Paris", "Nice", "Lille"],
        "mcq_v2",
    )


def test_a_list_column_in_csv_is_json(write_rows):
    path = write_rows("quiz.csv", [{"question": "Pick b", "choices": json.dumps(["a", "b"]), "answer": "b"}])
    source = FileSource(path=str(path), name="quiz", answer_type="choice", fields=FileFields(choices=["choices"]))
    assert read_files(source)[0]["answer"] == "B"


def test_a_one_letter_option_text_is_read_as_text_before_a_letter(write_rows):
    """A GPQA-like row whose options are letters: the gold "c" is the text of option A, not letter C."""
    rows = [{"question": "Which letter comes first?", "choices": ["c", "a", "b", "d"], "answer": "c"}]
    path = write_rows("letters.jsonl", rows)
    source = FileSource(path=str(path), name="quiz", answer_type="choice", fields=FileFields(choices=["choices"]))
    assert read_files(source)[0]["answer"] == "A"


@pytest.mark.parametrize(
    ("answer_type", "fields", "good", "bad", "message"),
    [
        ("integer", FileFields(), {"answer": "4"}, {"answer": "4.5"}, r"field 'answer' is not an integer: '4\.5'$"),
        ("number", FileFields(), {"answer": "4.5"}, {"answer": "four"}, r"field 'answer' is not a number: 'four'"),
        (
            "math",
            FileFields(),
            {"answer": "x"},
            {"answer": None},
            r"field 'answer' is null",
        ),
        (
            "choice",
            FileFields(choices=["options"]),
            {"options": ["x", "y"], "answer": "x"},
            {"options": ["x", "y"], "answer": "z"},
            r"field 'answer' is not a letter A-B, an index 0\.\.1 or the text of an option: 'z'",
        ),
    ],
)
def test_errors_name_the_file_row_and_field(write_rows, answer_type, fields, good, bad, message):
    path = write_rows("mine.jsonl", [{"question": "fine", **good}, {"question": "bad", **bad}])
    source = FileSource(path=str(path), name="mine", answer_type=answer_type, fields=fields, on_bad_row="fail")
    with pytest.raises(ValueError, match=r"mine \(.*mine\.jsonl\): row 1: " + message):
        read_files(source)
    report = RowReport()  # by default the row is skipped, and counted under its reason
    assert len(read_files(source.model_copy(update={"on_bad_row": "repair"}), report=report)) == 1
    assert sum(report.skipped.values()) == 1


def test_a_mapped_column_the_file_lacks(write_rows):
    path = write_rows("mine.jsonl", [{"question": "Q", "answer": "1"}])
    source = FileSource(path=str(path), name="mine", fields=FileFields(extra=["origin"]))
    with pytest.raises(
        ValueError, match=r"mine \(.*\): row 0: field 'origin' is missing \(the row has: answer, question\)"
    ):
        read_files(source)


def test_config_checks_choices_and_answer_type():
    with pytest.raises(ValidationError, match="answer_type 'choice' and fields.choices go together"):
        FileSource(path="x.jsonl", name="x", answer_type="choice")
    with pytest.raises(ValidationError, match="answer_type 'choice' and fields.choices go together"):
        FileSource(path="x.jsonl", name="x", fields=FileFields(choices=["options"]))


def test_unknown_extension_needs_a_format(write_rows, tmp_path):
    path = tmp_path / "rows.txt"
    path.write_text(json.dumps({"question": "Q", "answer": "1"}) + "\n")
    with pytest.raises(ValueError, match=r"mine \(.*rows\.txt\): .*not a folder, and its format is not one of"):
        read_files(FileSource(path=str(path), name="mine"))
    assert read_files(FileSource(path=str(path), name="mine", format="json"))[0]["answer"] == "1"


GOOD_LINE = json.dumps({"question": "1 + 1?", "answer": "2"}) + "\n"


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", r"the file is empty: no rows"),
        ("blank.jsonl", "\n  \n", r"the file is empty: no rows"),
        ("empty.csv", "", r"the file is empty: no header and no rows"),
        ("header.csv", "question,answer\n", r"the file has a header but no rows"),
        ("bad.jsonl", GOOD_LINE + '{"question": "2 + 2?" "answer": "4"}\n' + GOOD_LINE,
         r"line 2: not valid JSON \(Expecting ',' delimiter at column 23\)"),
        ("list.jsonl", GOOD_LINE + "[1, 2]\n", r"line 2: a row must be a JSON object, not list"),
        ("bad.json", '[\n  {"question": "1 + 1?", "answer": "2"},\n  {"question": "2 + 2?", "answer": }\n]\n',
         r"line 3: not valid JSON \(Expecting value at column 36\)"),
        ("fields.csv", "question,answer\n1 + 1?,2\n2 + 2?,4,extra\n",
         r"line 3: 3 fields, but the header \(line 1\) names 2"),
        ("latin1.jsonl", GOOD_LINE + '{"question": "caf\xe9?", "answer": "4"}\n', r"line 2: not UTF-8 text"),
    ],
)  # fmt: skip
def test_data_errors_name_the_file_and_the_line(tmp_path, name, content, message, streaming):
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1"))
    source = FileSource(path=str(path), name="mine", answer_type="integer", streaming=streaming)
    with pytest.raises(ValueError, match=rf"^mine \({path}\): {message}"):
        read_files(source)


def test_a_data_error_in_a_glob_names_the_file(tmp_path):
    (tmp_path / "part-0.jsonl").write_text(GOOD_LINE)
    (tmp_path / "part-1.jsonl").write_text(GOOD_LINE + GOOD_LINE + "{oops\n")
    source = FileSource(path=str(tmp_path / "part-*.jsonl"), name="mine", answer_type="integer")
    with pytest.raises(ValueError, match=rf"mine \(.*part-\*\.jsonl\): {tmp_path / 'part-1.jsonl'}: line 3: not valid"):
        read_files(source)
