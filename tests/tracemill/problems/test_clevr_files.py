"""Reading real CLEVR files: only checked counting questions survive, plus one count-all per image."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import fsspec
import pytest

from tracemill.problems.clevr import COUNT_ALL_QUESTION, read_counting_problems
from tracemill.problems.rows import RowReport
from tracemill.records import PROBLEM, to_table


def obj(size: str, color: str, material: str, shape: str, x: float, y: float) -> dict[str, Any]:
    radius = 0.7 if size == "large" else 0.35
    return {
        "size": size,
        "color": color,
        "material": material,
        "shape": shape,
        "rotation": 12.5,
        "3d_coords": [x, y, radius],
        "pixel_coords": [100, 120, 10.5],
    }


SCENES = {
    "info": {"split": "val"},
    "scenes": [
        {
            "image_index": 0,
            "image_filename": "CLEVR_val_000000.png",
            "split": "val",
            # left to right: 0, 1, 2
            "objects": [
                obj("large", "red", "rubber", "cube", -2.0, 0.0),
                obj("small", "red", "metal", "sphere", 0.0, 0.0),
                obj("large", "blue", "metal", "cube", 2.0, 0.0),
            ],
            "relationships": {
                "left": [[], [0], [0, 1]],
                "right": [[1, 2], [2], []],
                "front": [[], [], []],
                "behind": [[], [], []],
            },
        },
        {
            "image_index": 1,
            "image_filename": "CLEVR_val_000001.png",
            # no split: defaults to "train"
            "objects": [
                obj("small", "green", "rubber", "cylinder", 0.0, -1.0),
                obj("small", "gray", "metal", "cylinder", 0.0, 1.0),
            ],
            "relationships": {"left": [[], []], "right": [[], []], "front": [[], [0]], "behind": [[1], []]},
        },
    ],
}


def f(function: str, inputs: list[int], values: list[str] | None = None) -> dict[str, Any]:
    return {"function": function, "inputs": inputs, "value_inputs": values or []}


def t(kind: str, inputs: list[int], values: list[str] | None = None) -> dict[str, Any]:
    return {"type": kind, "inputs": inputs, "side_inputs": values or []}


def question(
    index: int,
    image: str,
    text: str,
    program: list,
    answer: Any,
    family: int = 0,
) -> dict[str, Any]:
    return {
        "question_index": index,
        "image_index": int(image[-5]),
        "image_filename": image,
        "question": text,
        "program": program,
        "answer": answer,
        "question_family_index": family,
        "split": "val",
    }


A, B = "CLEVR_val_000000.png", "CLEVR_val_000001.png"
SCENE = f("scene", [])
RED_COUNT = [SCENE, f("filter_color", [0], ["red"]), f("count", [1])]
CUBE_COUNT = [SCENE, f("filter_shape", [0], ["cube"]), f("count", [1])]
CUBES_VS_RED = [*CUBE_COUNT, SCENE, f("filter_color", [3], ["red"]), f("count", [4])]
FEWER_CUBES = [*CUBES_VS_RED, f("less_than", [2, 5])]
SPHERE = [SCENE, f("filter_shape", [0], ["sphere"]), f("unique", [1])]
RIGHT_OF_RED_SPHERE = [
    t("scene", []),
    t("filter_color", [0], ["red"]),
    t("filter_shape", [1], ["sphere"]),
    t("unique", [2]),
    t("relate", [3], ["right"]),
    t("count", [4]),
]
BEHIND_GREEN_CYLINDER = [
    t("scene", []),
    t("filter_unique", [0], ["", "green", "", "cylinder"]),
    t("relate_filter_count", [1], ["behind", "<Z>", "<C>", "<M>", "<S>"]),
]

QUESTIONS = {
    "info": {"split": "val"},
    "questions": [
        # kept: counting, "function"/"value_inputs" style
        question(0, A, "How many red things are there?", RED_COUNT, "2", 12),
        # dropped quietly: compare-integer questions mention counts but answer yes/no
        question(1, A, "Are there fewer cubes than red things?", FEWER_CUBES, "no"),
        question(
            2,
            A,
            "Is the number of cubes the same as the number of red things?",
            [*CUBES_VS_RED, f("equal_integer", [2, 5])],
            "yes",
        ),
        # dropped quietly: exist and query questions
        question(
            3,
            A,
            "Are there any spheres?",
            [SCENE, f("filter_shape", [0], ["sphere"]), f("exist", [1])],
            "yes",
        ),
        question(4, A, "What color is the sphere?", [*SPHERE, f("query_color", [2])], "red"),
        # dropped with a warning: a counting question whose stored answer is wrong (2 cubes)
        question(5, A, "How many cubes are there?", CUBE_COUNT, "3"),
        # kept: "type"/"side_inputs" style, one hop, a numeric stored answer
        question(6, A, "How many things are right of the red sphere?", RIGHT_OF_RED_SPHERE, 1, 30),
        # kept: the question engine's compact nodes
        question(7, B, "How many things are behind the green cylinder?", BEHIND_GREEN_CYLINDER, "1"),
        # no program (CLEVR's test split): skipped
        {"question_index": 8, "image_filename": B, "question": "How many cylinders are there?"},
    ],
}


def write(path: Path, data: Any) -> str:
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    return write(tmp_path / "scenes.json", SCENES), write(tmp_path / "questions.json", QUESTIONS)


def test_keeps_only_checked_counting_questions(
    files: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    report = RowReport()
    with caplog.at_level(logging.WARNING, logger="tracemill.problems"):
        rows = read_counting_problems(*files, report=report)
    assert [(r["img_filename"], r["question"], r["answer"]) for r in rows] == [
        (A, COUNT_ALL_QUESTION, "3"),
        (A, "How many red things are there?", "2"),
        (A, "How many things are right of the red sphere?", "1"),
        (B, COUNT_ALL_QUESTION, "2"),
        (B, "How many things are behind the green cylinder?", "1"),
    ]
    assert report.skipped == Counter(
        {
            "stored answer disagrees with the re-executed program": 1,
            "no program: the answer cannot be checked (CLEVR's test split)": 1,
        }
    )
    assert report.to_dict()["examples"]["skipped: stored answer disagrees with the re-executed program"] == (
        f"{files[1]}: question 5"
    )
    warnings = [r.getMessage() for r in caplog.records if r.name == "tracemill.problems"]
    assert len(warnings) == 2 and all(files[1] in w for w in warnings)
    assert any("skipped 1 row(s): stored answer disagrees" in w for w in warnings)


def test_rows_are_complete_problem_records(files: tuple[str, str]) -> None:
    rows = read_counting_problems(*files)
    required = {"problem_id", "source", "split", "question", "answer", "answer_type", "description"}
    required |= {"img_filename", "family", "program", "extra"}
    for row in rows:
        assert required <= set(row)
        assert isinstance(row["answer"], str) and row["answer"].isdigit()
        assert row["answer_type"] == "integer"
        assert row["source"] == "clevr"
        assert row["description"].startswith("Scene Description:\nA ")
        program = json.loads(row["program"])
        assert program[-1]["function"] == "count"
        assert all(set(node) == {"function", "inputs", "value_inputs"} for node in program)
    table = to_table(rows, PROBLEM)
    assert table.num_rows == 5
    assert [r["split"] for r in rows] == ["val", "val", "val", "train", "train"]
    assert [r["family"] for r in rows] == ["count_all", "zero_hop", "one_hop", "count_all", "one_hop"]
    assert rows[0]["extra"] is None
    assert json.loads(rows[2]["extra"]) == {"question_index": 6, "question_family_index": 30}
    compact = json.loads(rows[4]["program"])
    assert [node["function"] for node in compact] == [
        "scene",
        "filter_color",
        "filter_shape",
        "unique",
        "relate",
        "count",
    ]
    assert json.loads(rows[3]["program"]) == [
        {"function": "scene", "inputs": [], "value_inputs": []},
        {"function": "count", "inputs": [0], "value_inputs": []},
    ]


def test_problem_ids_are_stable_and_distinct(files: tuple[str, str]) -> None:
    first = [r["problem_id"] for r in read_counting_problems(*files)]
    assert first == [r["problem_id"] for r in read_counting_problems(*files)]
    assert len(set(first)) == len(first)
    other_source = [r["problem_id"] for r in read_counting_problems(*files, source="clevr_val")]
    assert not set(first) & set(other_source)


def without_description(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "description"}


def test_shuffle_seed_permutes_descriptions(files: tuple[str, str]) -> None:
    plain = read_counting_problems(*files)
    shuffled = read_counting_problems(*files, shuffle_seed=3)
    assert shuffled == read_counting_problems(*files, shuffle_seed=3)
    for a, b in zip(plain, shuffled, strict=True):
        assert sorted(a["description"].splitlines()) == sorted(b["description"].splitlines())
        assert without_description(a) == without_description(b)


def test_reads_fsspec_urls() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/clevr-test/scenes.json", json.dumps(SCENES).encode())
    fs.pipe("/clevr-test/questions.json", json.dumps(QUESTIONS).encode())
    try:
        rows = read_counting_problems("memory://clevr-test/scenes.json", "memory://clevr-test/questions.json")
    finally:
        fs.rm("/clevr-test", recursive=True)
    assert len(rows) == 5


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes.json"
    scenes.write_text("{not json")
    questions = write(tmp_path / "questions.json", QUESTIONS)
    with pytest.raises(ValueError, match=f"{scenes}: not valid JSON"):
        read_counting_problems(str(scenes), questions)


@pytest.mark.parametrize(
    ("which", "data"), [("scenes", {"info": {}}), ("questions", {"questions": {}}), ("scenes", [])]
)
def test_missing_key_names_the_file(tmp_path: Path, which: str, data: Any) -> None:
    paths = {
        "scenes": write(tmp_path / "scenes.json", SCENES),
        "questions": write(tmp_path / "q.json", QUESTIONS),
    }
    paths[which] = write(tmp_path / "bad.json", data)
    with pytest.raises(ValueError, match=rf"{tmp_path / 'bad.json'}: not a CLEVR {which} file"):
        read_counting_problems(paths["scenes"], paths["questions"])


def test_unknown_image_is_skipped_and_counted_or_fails(tmp_path: Path) -> None:
    scenes = write(tmp_path / "scenes.json", SCENES)
    orphan = question(41, "CLEVR_val_000009.png", "How many things are there?", [SCENE, f("count", [0])], "3")
    questions = write(tmp_path / "questions.json", {"questions": [*QUESTIONS["questions"], orphan]})
    report = RowReport()
    assert len(read_counting_problems(scenes, questions, report=report)) == 5
    assert report.skipped["image not in the scenes file"] == 1
    message = r"questions\.json: question 41: image not in the scenes file: 'CLEVR_val_000009\.png' is not in"
    with pytest.raises(ValueError, match=message):
        read_counting_problems(scenes, questions, on_bad_row="fail")


def test_questions_file_of_another_layout_names_the_missing_field(tmp_path: Path) -> None:
    scenes = write(tmp_path / "scenes.json", SCENES)
    # A GQA-style file: the image is `imageId`, not CLEVR's `image_filename`.
    other = write(tmp_path / "gqa.json", {"questions": [{"imageId": "n123", "question": "How many?", "answer": "2"}]})
    message = r"gqa\.json: question 0: not a CLEVR question: field 'image_filename' \(or 'image_index'\) is missing"
    with pytest.raises(ValueError, match=message + r"; its fields: answer, imageId, question"):
        read_counting_problems(scenes, other)


def test_image_index_stands_for_a_missing_filename(tmp_path: Path) -> None:
    scenes = write(tmp_path / "scenes.json", SCENES)
    by_index = question(0, A, "How many red things are there?", RED_COUNT, "2")
    del by_index["image_filename"]
    rows = read_counting_problems(scenes, write(tmp_path / "q.json", {"questions": [by_index]}), count_all=False)
    assert [(r["img_filename"], r["answer"]) for r in rows] == [(A, "2")]


def test_several_questions_files_and_no_count_all(tmp_path: Path) -> None:
    # CLOSURE ships one questions file per family, each numbering its questions from 0.
    scenes = write(tmp_path / "scenes.json", SCENES)
    first = write(
        tmp_path / "and_mat_spa_val.json", {"questions": [question(0, A, "How many red things?", RED_COUNT, "2")]}
    )
    family = [
        question(0, A, "How many cubes?", CUBE_COUNT, "2"),
        question(1, B, "How many?", [SCENE, f("count", [0])], "2"),
    ]
    second = write(tmp_path / "or_mat_val.json", {"questions": family})
    rows = read_counting_problems(scenes, [first, second], count_all=False)
    assert [(r["img_filename"], r["question"]) for r in rows] == [
        (A, "How many red things?"),
        (A, "How many cubes?"),
        (B, "How many?"),
    ]
    assert len({r["problem_id"] for r in rows}) == 3  # question 0 of each file is its own problem
    with_count_all = read_counting_problems(scenes, [first, second])
    assert [r["question"] for r in with_count_all].count(COUNT_ALL_QUESTION) == 2


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_counting_problems(str(tmp_path / "nope.json"), str(tmp_path / "nope2.json"))


def test_empty_file_names_the_file(tmp_path: Path) -> None:
    scenes = tmp_path / "scenes.json"
    scenes.write_text("")
    with pytest.raises(ValueError, match=f"^{scenes}: the file is empty$"):
        read_counting_problems(str(scenes), write(tmp_path / "questions.json", QUESTIONS))
