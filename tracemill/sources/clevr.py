"""CLEVR scenes as text, and counting problems from real CLEVR scene and question files.

R1-V turns each CLEVR image into a text scene description so a text-only teacher can answer its
counting questions; this module writes that description and the problem rows, once for both the
file reader and the procedural generator.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from typing import Any

import fsspec

from tracemill.records import problem_id
from tracemill.sources.clevr_program import ProgramError, execute, family_of, format_answer, normalize_program

LOG = logging.getLogger("tracemill.sources.clevr")

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
    digest = hashlib.sha256(f"{shuffle_seed}\x1f{image_filename}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def scene_problems(
    scene: dict[str, Any], questions: list[dict[str, Any]], *, source: str, shuffle_seed: int | None = None
) -> list[dict[str, Any]]:
    """Problem rows of one scene: the count-all question first, then ``questions`` in order.

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
            "prompt_template": "clevr_v2",
            "description": description,
            "img_filename": filename,
            "family": family,
            "program": json.dumps(program),
            "extra": json.dumps(extra) if extra else None,
        }

    count = str(len(scene["objects"]))
    rows = [row("count_all", COUNT_ALL_QUESTION, count, "count_all", COUNT_ALL_PROGRAM, None)]
    for q in questions:
        key = str(q["question_index"])
        extra = {k: q[k] for k in ("question_index", "question_family_index") if q.get(k) is not None}
        rows.append(row(key, q["question"], str(q["answer"]), q["family"], q["program"], extra))
    return rows


def read_counting_problems(
    scenes_path: str,
    questions_path: str,
    *,
    storage_options: dict[str, Any] | None = None,
    shuffle_seed: int | None = None,
    source: str = "clevr",
) -> list[dict[str, Any]]:
    """Counting problems from a CLEVR scenes file and questions file (local paths or fsspec URLs).

    Keeps the questions whose program ends in ``count`` and re-executes each on its scene: one
    whose program cannot be read or fails, or whose stored answer disagrees, is dropped, with one
    warning giving the number dropped. Questions without a program (CLEVR's test split) cannot
    be checked and are skipped. Every scene of the scenes file also gets the count-all question.
    Rows follow scene order, then question order. Files that do not fit raise ``ValueError``
    naming the file.
    """
    options = storage_options or {}
    scenes = _read_list(scenes_path, "scenes", options)
    questions = _read_list(questions_path, "questions", options)

    kept: dict[str, list[dict[str, Any]]] = {}
    for position, scene in enumerate(scenes):
        name = scene.get("image_filename") if isinstance(scene, dict) else None
        if not isinstance(name, str):
            raise ValueError(f"{scenes_path}: scene {position} has no image_filename")
        if name in kept:
            raise ValueError(f"{scenes_path}: image {name!r} appears twice")
        kept[name] = []
    by_name = {scene["image_filename"]: scene for scene in scenes}

    dropped = 0
    for position, q in enumerate(questions):
        index = q.get("question_index", position) if isinstance(q, dict) else position
        name = q.get("image_filename") if isinstance(q, dict) else None
        if name not in kept:
            raise ValueError(f"{questions_path}: question {index}: image {name!r} is not in {scenes_path}")
        try:
            program = _counting_program(q)
            if program is None:
                continue
            answer = format_answer(execute(program, by_name[name], normalized=True))
        except ProgramError:
            dropped += 1
            continue
        if str(q.get("answer")) != answer:
            dropped += 1
            continue
        if not isinstance(q.get("question"), str):
            raise ValueError(f"{questions_path}: question {index} has no question text")
        kept[name].append(
            {
                "question": q["question"],
                "program": program,
                "answer": answer,
                "family": family_of(program),
                "question_index": index,
                "question_family_index": q.get("question_family_index"),
            }
        )
    if dropped:
        LOG.warning(
            "%s: dropped %d counting question(s) whose program failed or whose stored answer disagreed "
            "with the re-executed program",
            questions_path,
            dropped,
        )

    rows: list[dict[str, Any]] = []
    for scene in scenes:
        name = scene["image_filename"]
        rows.extend(scene_problems(scene, kept[name], source=source, shuffle_seed=shuffle_seed))
    return rows


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
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ValueError(f"{path}: not a CLEVR {key} file: expected a JSON object with a {key!r} list")
    return data[key]
