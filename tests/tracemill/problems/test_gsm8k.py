"""GSM8K from local copies: the gold is the final '#### N' without separators, as a number."""

from __future__ import annotations

import json

import pytest

from tracemill.problems.config import Gsm8kSource
from tracemill.problems.gsm8k import read_gsm8k
from tracemill.records import problem_id

ROWS = [
    {
        "question": "A farm has 1,200 hens and buys 34 more. How many hens are there?",
        "answer": "1,200 + 34 = <<1200+34=1234>>1,234\n#### 1,234",
    },
    {"question": "Tom had 3 apples and ate 8. How many is he short?", "answer": "3 - 8 = -5\n#### -5"},
    {"question": "Half of 1.5 litres?", "answer": "1.5 / 2 = 0.75\n####0.75\n"},
    {"question": "A company earns $1,000,000 a year. Per month?", "answer": "Divide.\n#### 83,333.33"},
]


def test_gold_is_the_final_number_without_separators(write_rows):
    path = write_rows("gsm8k/test.jsonl", ROWS)
    rows = read_gsm8k(Gsm8kSource(path=str(path)))
    assert [r["answer"] for r in rows] == ["1234", "-5", "0.75", "83333.33"]
    assert {r["answer_type"] for r in rows} == {"number"}
    assert {r["prompt_template"] for r in rows} == {"math_boxed"}
    assert rows[0]["problem_id"] == problem_id("gsm8k", ROWS[0]["question"])
    assert json.loads(rows[0]["extra"]) == {"solution": "1,200 + 34 = <<1200+34=1234>>1,234"}
    assert (rows[0]["source"], rows[0]["split"]) == ("gsm8k", "test")


def test_a_hub_snapshot_folder_with_configs(write_rows, tmp_path):
    # The layout `huggingface-cli download openai/gsm8k --local-dir gsm8k` leaves: configs in the card.
    write_rows("gsm8k/main/test-00000-of-00001.parquet", ROWS[:2])
    write_rows("gsm8k/main/train-00000-of-00001.parquet", ROWS[2:])
    write_rows("gsm8k/socratic/test-00000-of-00001.parquet", [ROWS[3]])
    (tmp_path / "gsm8k" / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: main\n  data_files:\n  - split: train\n    path: main/train-*\n"
        "  - split: test\n    path: main/test-*\n"
        "- config_name: socratic\n  data_files:\n  - split: test\n    path: socratic/test-*\n---\n# GSM8K\n"
    )
    folder = str(tmp_path / "gsm8k")
    assert [r["answer"] for r in read_gsm8k(Gsm8kSource(path=folder))] == ["1234", "-5"]
    train = read_gsm8k(Gsm8kSource(path=folder, split="train"))
    assert [r["answer"] for r in train] == ["0.75", "83333.33"] and {r["split"] for r in train} == {"train"}
    assert [r["answer"] for r in read_gsm8k(Gsm8kSource(path=folder, config="socratic"))] == ["83333.33"]
    with pytest.raises(ValueError, match=r"gsm8k \(.*gsm8k\): .*nope"):
        read_gsm8k(Gsm8kSource(path=folder, config="nope"))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("12 + 3 = 15", r"row 1: field 'answer' has no final '#### N' line and is not a number"),
        ("#### 15\nThe answer is fifteen.", r"row 1: field 'answer' has no final '#### N' line"),
        ("So:\n#### fifteen", r"row 1: field 'answer': final line is not '#### N' with a number N: '#### fifteen'"),
        ("So:\n####", r"row 1: field 'answer': final line is not '#### N' with a number N: '####'"),
    ],
)
def test_malformed_answers_name_dataset_row_and_field(write_rows, answer, message):
    path = write_rows("test.jsonl", [ROWS[0], {"question": "Q?", "answer": answer}])
    with pytest.raises(ValueError, match=r"gsm8k \(.*test\.jsonl\): " + message):
        read_gsm8k(Gsm8kSource(path=str(path), on_bad_row="fail"))
