"""CLEVR scenes as text, and counting problems from real CLEVR scene and question files.

R1-V turns each CLEVR image into a text scene description so a text-only teacher can answer its
counting questions; this module writes that description and the problem rows, once for both the
file reader and the procedural generator.
"""

from __future__ import annotations

import json
import posixpath
import random
from typing import Any, Literal

import fsspec

from tracemill.problems.clevr_program import ProgramError, execute, family_of, format_answer, normalize_program
from tracemill.problems.rows import RowError, RowReport
from tracemill.records import problem_id
from tracemill.seeds import derive_seed

COUNT_ALL_QUESTION = "How many items are there in the described scene?"
COUNT_ALL_PROGRAM = [
    {"function": "scene", "inputs": [], "value_inputs": []},
    {"function": "count", "inputs": [0], "value_inputs": []},
]


def describe_scene(scene: dict[str, Any], shuffle_seed: int | None = None) -> str:
    """R1-V's scene description: one line per object, in scene order unless shuffled with a seed."""
    lines = [_object_line(obj) for obj in scene["objects"]]
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(lines)
    return "Scene Description:\n" + "".join(lines)


def _object_line(obj: dict[str, Any]) -> str:
    x, y, z = obj["3d_coords"]
    px, py, depth = obj["pixel_coords"]
    return (
        f"A {obj['size']} {obj['color']} {obj['material']} {obj['shape']} rotated {obj['rotation']:.1f}° "
        f"located at 3D coordinates ({x:.2f}, {y:.2f}, {z:.2f}) "
        f"and pixel coordinates ({px}, {py}, {depth:.2f})\n"
    )


def scene_shuffle_seed(shuffle_seed: int | None, image_filename: str) -> int | None:
    """The shuffle seed of one scene's description, so scenes of equal size are not all permuted alike."""
    if shuffle_seed is None:
        return None
    return derive_seed(shuffle_seed, image_filename)


def scene_problems(
    scene: dict[str, Any],
    questions: list[dict[str, Any]],
    *,
    source: str,
    shuffle_seed: int | None = None,
    count_all: bool = True,
) -> list[dict[str, Any]]:
    """Problem rows of one scene: the count-all question first (with ``count_all``), then ``questions`` in order.

    Each question is a checked CLEVR-format dict with ``question``, ``program`` (normalised
    nodes), ``answer`` (string), ``family``, ``question_index`` and optionally
    ``question_family_index``. The description is shuffled with a per-image seed derived from
    ``shuffle_seed`` (see :func:`scene_shuffle_seed`).
    """
    filename = scene["image_filename"]
    description = describe_scene(scene, scene_shuffle_seed(shuffle_seed, filename))
    split = scene.get("split") or "train"

    def row(key: str, question: str, answer: str, family: str, program: list, extra: dict | None) -> dict:
        return {
            "problem_id": problem_id(source, f"{filename}#{key}"),
            "source": source,
            "split": split,
            "question": question,
            "answer": answer,
            "answer_type": "integer",
            "answer_trust": "verified",  # the program executor's answer, checked against the scene
            "prompt_template": "clevr_v2",
            "description": description,
            "img_filename": filename,
            "family": family,
            "program": json.dumps(program),
            "extra": json.dumps(extra) if extra else None,
        }

    count = str(len(scene["objects"]))
    rows = [row("count_all", COUNT_ALL_QUESTION, count, "count_all", COUNT_ALL_PROGRAM, None)] if count_all else []
    for q in questions:
        key = str(q.get("key", q["question_index"]))
        extra = {k: q[k] for k in ("question_index", "question_family_index") if q.get(k) is not None}
        rows.append(row(key, q["question"], str(q["answer"]), q["family"], q["program"], extra))
    return rows


def read_counting_problems(
    scenes_path: str,
    questions_path: str | list[str],
    *,
    storage_options: dict[str, Any] | None = None,
    shuffle_seed: int | None = None,
    source: str = "clevr",
    count_all: bool = True,
    on_bad_row: Literal["skip", "fail"] = "skip",
    report: RowReport | None = None,
) -> list[dict[str, Any]]:
    """Counting problems from a CLEVR scenes file and one or more questions files (local paths or fsspec URLs).

    Keeps the questions whose program ends in ``count`` and re-executes each on its scene: one
    whose program cannot be read or fails, or whose stored answer disagrees, is skipped.
    Questions without a program (CLEVR's test split) cannot be checked and are skipped; so is a
    question whose image is not in the scenes file, unless ``on_bad_row`` is fail. Every skipped
    question is counted in ``report`` by reason. With ``count_all`` every scene also gets the
    count-all question. Rows follow scene order, then file and question order; with several
    questions files, a question's key carries its file's name. Files that do not fit raise
    ``ValueError`` naming the file and the field.
    """
    options = storage_options or {}
    report = report if report is not None else RowReport()
    paths = [questions_path] if isinstance(questions_path, str) else list(questions_path)
    scenes = _read_list(scenes_path, "scenes", options)

    kept: dict[str, list[dict[str, Any]]] = {}
    by_index: dict[int, str] = {}
    for position, scene in enumerate(scenes):
        name = scene.get("image_filename") if isinstance(scene, dict) else None
        if not isinstance(name, str):
            raise ValueError(f"{scenes_path}: scene {position} has no image_filename")
        if name in kept:
            raise ValueError(f"{scenes_path}: image {name!r} appears twice")
        kept[name] = []
        if isinstance(scene.get("image_index"), int):
            by_index[scene["image_index"]] = name
    by_name = {scene["image_filename"]: scene for scene in scenes}

    for path in paths:
        stem = posixpath.basename(path).rsplit(".", 1)[0]
        for position, q in enumerate(_read_list(path, "questions", options)):
            if not isinstance(q, dict):
                raise ValueError(f"{path}: question {position} is not a JSON object")
            index = q.get("question_index", position)
            where = f"{path}: question {index}"
            name = _image_of(q, by_index, where)
            if name not in kept:
                error = RowError(where, "image not in the scenes file", f"{name!r} is not in {scenes_path}")
                report.handle(error, on_bad_row)
                continue
            if q.get("program") is None:
                report.skip("no program: the answer cannot be checked (CLEVR's test split)", where)
                continue
            try:
                program = _counting_program(q)
                if program is None:
                    continue
                answer = format_answer(execute(program, by_name[name], normalized=True))
            except ProgramError:
                report.skip("program does not run on its scene", where)
                continue
            if str(q.get("answer")) != answer:
                report.skip("stored answer disagrees with the re-executed program", where)
                continue
            if not isinstance(q.get("question"), str):
                raise ValueError(f"{where}: field 'question' (the question text) is missing; its fields: {sorted(q)}")
            kept[name].append(
                {
                    "question": q["question"],
                    "program": program,
                    "answer": answer,
                    "family": family_of(program),
                    "question_index": index,
                    "question_family_index": q.get("question_family_index"),
                    **({"key": f"{stem}:{index}"} if len(paths) > 1 else {}),
                }
            )
    report.log(", ".join(paths))

    rows: list[dict[str, Any]] = []
    for scene in scenes:
        name = scene["image_filename"]
        rows.extend(scene_problems(scene, kept[name], source=source, shuffle_seed=shuffle_seed, count_all=count_all))
    return rows


def _image_of(q: dict[str, Any], by_index: dict[int, str], where: str) -> str:
    """The question's image: its ``image_filename``, or the scene of its ``image_index``."""
    if isinstance(q.get("image_filename"), str):
        return q["image_filename"]
    if isinstance(q.get("image_index"), int) and q["image_index"] in by_index:
        return by_index[q["image_index"]]
    if "image_filename" in q or "image_index" in q:
        return str(q.get("image_filename", q.get("image_index")))
    raise ValueError(
        f"{where}: not a CLEVR question: field 'image_filename' (or 'image_index') is missing; "
        f"its fields: {', '.join(sorted(q))}"
    )


def _counting_program(q: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The normalised program of a counting question; None for any other question or none at all."""
    if q.get("program") is None:
        return None
    program = normalize_program(q["program"])
    return program if program[-1]["function"] == "count" else None


def _read_list(path: str, key: str, storage_options: dict[str, Any]) -> list[Any]:
    try:
        with fsspec.open(path, "rb", **storage_options) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if isinstance(exc, json.JSONDecodeError) and not exc.doc.strip():
            raise ValueError(f"{path}: the file is empty") from exc
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ValueError(f"{path}: not a CLEVR {key} file: expected a JSON object with a {key!r} list")
    return data[key]
