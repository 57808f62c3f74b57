"""Procedural scenes and questions, checked against CLEVR's rules re-derived here from scratch.

Relationships, pixel coordinates and every answer are recomputed in this file from coordinates
and attributes (numpy for the camera, a small parser for the question text), never with the
library's own executor or relationship tables.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

import numpy as np
import pytest

from tracemill.problems import stage as problems
from tracemill.problems.clevr_questions import TEMPLATES, generate_counting_questions, procedural_problems
from tracemill.problems.clevr_scenes import derived_rng, generate_scene, project
from tracemill.problems.config import ClevrProceduralSource
from tracemill.records import PROBLEM, to_table
from tracemill.store import Store

SEED = 20240611
NUM_SCENES = 500

SIZES = {"large": 0.7, "small": 0.35}
COLORS = {"gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow"}
MATERIALS = {"rubber", "metal"}
SHAPES = {"cube", "sphere", "cylinder"}


def camera() -> tuple[np.ndarray, np.ndarray]:
    """CLEVR's Blender camera: location and rotation matrix from XYZ Euler angles."""
    location = np.array([7.358891487121582, -6.925790786743164, 4.958309173583984])
    ax, ay, az = np.radians([63.559, 0.620, 46.692])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return location, rz @ ry @ rx


def ground_directions() -> dict[str, np.ndarray]:
    _, rotation = camera()

    def flat(v: np.ndarray) -> np.ndarray:
        v = v.copy()
        v[2] = 0
        return v / np.linalg.norm(v)

    behind = flat(rotation @ np.array([0.0, 0.0, -1.0]))
    left = flat(rotation @ np.array([-1.0, 0.0, 0.0]))
    return {"behind": behind, "front": -behind, "left": left, "right": -left}


DIRECTIONS = ground_directions()


def pixels(points: np.ndarray) -> np.ndarray:
    """Blender's world_to_camera_view, scaled to a 480×320 image: columns px, py, depth."""
    location, rotation = camera()
    cam = (points - location) @ rotation  # rows are Rᵀ·(p - location)
    depth = -cam[:, 2]
    x = cam[:, 0] / depth * (35 / 32) + 0.5
    y = cam[:, 1] / depth * (35 / 32) * (480 / 320) + 0.5
    return np.stack([x * 480, 320 - y * 320, depth], axis=1)


def related(scene: dict[str, Any], i: int, relation: str) -> list[int]:
    coords = np.array([o["3d_coords"] for o in scene["objects"]])
    dots = (coords - coords[i]) @ DIRECTIONS[relation]
    return [j for j in range(len(coords)) if j != i and dots[j] > 0.2]


@pytest.fixture(scope="module")
def scenes() -> list[dict[str, Any]]:
    return [generate_scene(SEED, index) for index in range(NUM_SCENES)]


@pytest.fixture(scope="module")
def questions(scenes: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    counts: Counter[str] = Counter()
    return [
        (scene, generate_counting_questions(scene, derived_rng(SEED, i, "questions"), 4, counts))
        for i, scene in enumerate(scenes)
    ]


# -- scenes ---------------------------------------------------------------------------------------


def test_scene_layout(scenes: list[dict[str, Any]]) -> None:
    for index, scene in enumerate(scenes[:200]):
        assert set(scene) == {
            "split",
            "image_index",
            "image_filename",
            "objects",
            "directions",
            "relationships",
        }
        assert scene["image_index"] == index
        assert scene["image_filename"] == f"CLEVR_synth_{SEED}_{index:06d}.png"
        assert scene["split"] == "train"
        assert 3 <= len(scene["objects"]) <= 10
        for obj in scene["objects"]:
            assert obj["size"] in SIZES and obj["color"] in COLORS
            assert obj["material"] in MATERIALS and obj["shape"] in SHAPES
            x, y, z = obj["3d_coords"]
            assert -3 <= x <= 3 and -3 <= y <= 3
            assert z == SIZES[obj["size"]]
            assert 0 <= obj["rotation"] < 360
    assert {len(s["objects"]) for s in scenes} == set(range(3, 11))


def test_objects_keep_clevr_distances_and_margins(scenes: list[dict[str, Any]]) -> None:
    for scene in scenes[:200]:
        objects = scene["objects"]
        for j, new in enumerate(objects):
            xj, yj, _ = new["3d_coords"]
            for old in objects[:j]:
                xi, yi, _ = old["3d_coords"]
                # CLEVR: placed cubes keep others clear of radius/sqrt(2); a new object uses its full radius.
                old_radius = SIZES[old["size"]] / (math.sqrt(2) if old["shape"] == "cube" else 1)
                assert math.hypot(xj - xi, yj - yi) - SIZES[new["size"]] - old_radius >= 0.25
                for direction in DIRECTIONS.values():
                    margin = (xj - xi) * direction[0] + (yj - yi) * direction[1]
                    assert not 0 < margin < 0.4


def test_directions_follow_the_camera(scenes: list[dict[str, Any]]) -> None:
    for name, vector in DIRECTIONS.items():
        assert np.allclose(scenes[0]["directions"][name], vector, atol=1e-9)
    assert scenes[0]["directions"]["above"] == [0.0, 0.0, 1.0]
    assert scenes[0]["directions"]["below"] == [0.0, 0.0, -1.0]


def test_relationships_match_coordinates(scenes: list[dict[str, Any]]) -> None:
    for scene in scenes[:200]:
        assert set(scene["relationships"]) == {"left", "right", "front", "behind"}
        for relation, table in scene["relationships"].items():
            assert table == [related(scene, i, relation) for i in range(len(scene["objects"]))]


def test_pixel_coordinates_match_an_independent_projection(scenes: list[dict[str, Any]]) -> None:
    for scene in scenes[:200]:
        expected = pixels(np.array([o["3d_coords"] for o in scene["objects"]]))
        got = np.array([o["pixel_coords"] for o in scene["objects"]], dtype=float)
        assert np.all(np.abs(got[:, :2] - expected[:, :2]) <= 1)
        assert np.allclose(got[:, 2], expected[:, 2], atol=1e-6)
        assert all(isinstance(o["pixel_coords"][0], int) for o in scene["objects"])
        assert np.all((got[:, 0] >= 0) & (got[:, 0] < 480) & (got[:, 1] >= 0) & (got[:, 1] < 320))


def test_camera_matches_the_r1v_example_within_clevr_camera_jitter() -> None:
    # seeds/000: CLEVR jitters its camera by up to 0.5 per axis, so a few pixels apart is expected.
    example = [
        ((-0.89, -2.73, 0.70), (101, 152, 10.04)),
        ((2.93, 0.87, 0.35), (379, 183, 9.66)),
        ((-2.40, 2.23, 0.70), (246, 82, 13.94)),
        ((-0.95, 1.77, 0.35), (270, 113, 12.83)),
        ((-0.12, -0.74, 0.35), (209, 153, 10.82)),
        ((-2.71, -2.21, 0.70), (84, 119, 11.59)),
        ((2.88, -0.12, 0.35), (342, 200, 9.12)),
        ((0.79, 0.98, 0.35), (299, 145, 11.19)),
        ((-1.78, -0.31, 0.70), (180, 110, 12.05)),
    ]
    errors = []
    for point, (px, py, depth) in example:
        gx, gy, gdepth = project(point)
        errors.append(math.hypot(gx - px, gy - py))
        assert abs(gdepth - depth) < 0.3
    assert max(errors) <= 12 and sum(errors) / len(errors) <= 6


def test_scenes_are_deterministic_and_independent() -> None:
    assert generate_scene(5, 17) == generate_scene(5, 17)
    assert generate_scene(5, 17) != generate_scene(5, 18)
    assert generate_scene(5, 17)["objects"] != generate_scene(6, 17)["objects"]
    five = generate_scene(5, 3, min_objects=5, max_objects=5, split="val")
    assert len(five["objects"]) == 5 and five["split"] == "val"
    with pytest.raises(ValueError, match="min_objects"):
        generate_scene(5, 3, min_objects=6, max_objects=5)


# -- questions ------------------------------------------------------------------------------------

VALUES = {v: a for a, values in (("size", SIZES), ("color", COLORS), ("material", MATERIALS)) for v in values}
NOUNS = {"thing": None, "object": None, "cube": "cube", "sphere": "sphere", "cylinder": "cylinder"}
NOUNS |= {"things": None, "objects": None, "cubes": "cube", "spheres": "sphere", "cylinders": "cylinder"}
RELATIONS = {"left of": "left", "right of": "right", "in front of": "front", "behind": "behind"}
REFERENCE = re.compile(r"(left of|right of|in front of|behind) the (.+)")


def select(scene: dict[str, Any], pool: list[int], phrase: str) -> list[int]:
    *adjectives, noun = phrase.split()
    wanted = {VALUES[word]: word for word in adjectives}
    assert len(wanted) == len(adjectives), phrase
    if NOUNS[noun] is not None:
        wanted["shape"] = NOUNS[noun]
    return [i for i in pool if all(scene["objects"][i][a] == v for a, v in wanted.items())]


def the(scene: dict[str, Any], pool: list[int], phrase: str) -> int:
    found = select(scene, pool, phrase)
    assert len(found) == 1, f"'the {phrase}' is {len(found)} objects"
    return found[0]


def resolve(scene: dict[str, Any], reference: str) -> list[int]:
    """The objects that stand in a relation: 'behind the X that is left of the Y …'."""
    clauses = reference.split(" that is ")
    pool = list(range(len(scene["objects"])))
    for clause in reversed(clauses):
        match = REFERENCE.fullmatch(clause)
        assert match, clause
        pool = related(scene, the(scene, pool, match[2]), RELATIONS[match[1]])
    return pool


def answer_text(scene: dict[str, Any], question: str) -> tuple[str, int]:
    """The family and the answer of a generated question, read from its words alone."""
    match = re.fullmatch(r"(?:How many|What number of) (.+)\?", question)
    assert match, question
    body = match[1]
    everything = list(range(len(scene["objects"])))
    if m := re.fullmatch(r"other (.+?) are the same (size|color|material|shape) as the (.+)", body):
        target = the(scene, everything, m[3])
        value = scene["objects"][target][m[2]]
        others = [j for j in everything if j != target and scene["objects"][j][m[2]] == value]
        return "same_relate", len(select(scene, others, m[1]))
    if m := re.fullmatch(r"(.+) are there", body):
        return "zero_hop", len(select(scene, everything, m[1]))
    if m := re.fullmatch(r"(?:things|objects) are either (.+) or (.+)", body):
        return "single_or", len(set(select(scene, everything, m[1])) | set(select(scene, everything, m[2])))
    if m := re.fullmatch(r"(.+?) are both (.+) and (.+)", body):
        both = sorted(set(resolve(scene, m[2])) & set(resolve(scene, m[3])))
        return "single_and", len(select(scene, both, m[1]))
    m = re.fullmatch(r"(.+?) are (.+)", body)
    assert m, question
    hops = m[2].count(" that is ") + 1
    return ("one_hop", "two_hop", "three_hop")[hops - 1], len(select(scene, resolve(scene, m[2]), m[1]))


def test_every_answer_rederived_from_the_question_text(questions: list) -> None:
    total = 0
    for scene, generated in questions:
        for q in generated:
            family, answer = answer_text(scene, q["question"])
            assert (family, str(answer)) == (q["family"], q["answer"]), q["question"]
            total += 1
    assert total >= 1900


def test_question_format(questions: list) -> None:
    for _, generated in questions:
        for q in generated:
            assert set(q) == {"question", "program", "answer", "family", "question_index"}
            assert isinstance(q["answer"], str) and q["answer"].isdigit()
            assert q["program"][0] == {"function": "scene", "inputs": [], "value_inputs": []}
            assert q["program"][-1]["function"] == "count"
            assert all(set(node) == {"function", "inputs", "value_inputs"} for node in q["program"])
        texts = [q["question"] for q in generated]
        assert len(set(texts)) == len(texts)
        assert len({q["question_index"] for q in generated}) == len(generated)


def test_every_family_appears(questions: list) -> None:
    families = Counter(q["family"] for _, generated in questions for q in generated)
    assert set(families) == set(TEMPLATES)
    assert min(families.values()) >= 50


def test_answers_are_balanced(questions: list) -> None:
    answers = Counter(q["answer"] for _, generated in questions for q in generated)
    total = sum(answers.values())
    assert total >= 1900
    assert max(answers.values()) <= 0.25 * total
    assert len(answers) >= 6


def test_generation_is_deterministic(scenes: list[dict[str, Any]]) -> None:
    scene = scenes[3]
    first = generate_counting_questions(scene, derived_rng(1, 3, "questions"), 5)
    assert first == generate_counting_questions(scene, derived_rng(1, 3, "questions"), 5)
    assert generate_counting_questions(scene, derived_rng(1, 3, "questions"), 0) == []


def test_shared_counter_is_updated(scenes: list[dict[str, Any]]) -> None:
    counts: Counter[str] = Counter()
    generated = generate_counting_questions(scenes[0], derived_rng(2, 0, "questions"), 4, counts)
    assert sum(counts.values()) == len(generated) == 4
    assert counts == Counter(q["answer"] for q in generated)


# -- problem rows ---------------------------------------------------------------------------------


def test_procedural_problems_rows() -> None:
    rows = procedural_problems(SEED, 10, 30, questions_per_scene=3)
    assert to_table(rows, PROBLEM).num_rows == len(rows)
    assert len({r["problem_id"] for r in rows}) == len(rows)
    count_all = [r for r in rows if r["family"] == "count_all"]
    assert len(count_all) == 20
    assert len(rows) >= 20 * 4 - 3
    for row in count_all:
        scene = generate_scene(SEED, int(row["img_filename"][-10:-4]))
        assert row["answer"] == str(len(scene["objects"]))
        assert row["description"].count("\n") == len(scene["objects"]) + 1
    for row in rows:
        assert row["source"] == "clevr_procedural" and row["split"] == "train"
        assert row["answer_type"] == "integer" and row["answer"].isdigit()
        assert json.loads(row["program"])[-1]["function"] == "count"
    assert rows == procedural_problems(SEED, 10, 30, questions_per_scene=3)


def count_all_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["family"] == "count_all"]


def test_rows_do_not_depend_on_how_scenes_are_sharded() -> None:
    whole = procedural_problems(SEED, 0, 12)
    parts = procedural_problems(SEED, 0, 5) + procedural_problems(SEED, 5, 12)
    # Scenes and count-all rows are identical; a question id always means the same question.
    assert count_all_rows(whole) == count_all_rows(parts)
    by_id = {r["problem_id"]: r for r in whole}
    shared = [r for r in parts if r["problem_id"] in by_id]
    assert len(shared) > len(whole) // 2
    assert all(by_id[r["problem_id"]] == r for r in shared)


def test_shuffled_descriptions() -> None:
    plain = procedural_problems(SEED, 0, 5, shuffle_seed=None)
    shuffled = procedural_problems(SEED, 0, 5, shuffle_seed=1)
    assert shuffled == procedural_problems(SEED, 0, 5, shuffle_seed=1)
    assert any(a["description"] != b["description"] for a, b in zip(plain, shuffled, strict=True))
    for a, b in zip(plain, shuffled, strict=True):
        assert sorted(a["description"].splitlines()) == sorted(b["description"].splitlines())
        assert a["question"] == b["question"] and a["problem_id"] == b["problem_id"]


def test_max_problems_is_a_seeded_sample_of_the_full_build(tmp_path) -> None:
    store = Store(str(tmp_path))
    full = ClevrProceduralSource(num_scenes=30, scenes_per_shard=8, questions_per_scene=2, seed=5)

    def build(source: ClevrProceduralSource) -> list[list[dict[str, Any]]]:
        return [problems.build_shard(source, i, store).to_pylist() for i in range(problems.num_shards(source, store))]

    every = [row for shard in build(full) for row in shard]
    assert len(every) > 50
    trial = full.model_copy(update={"max_problems": 50, "sample_seed": 1})
    shards = build(trial)
    # Cut into shards of a full shard's most problems (8 scenes x 3 questions); the same rows as the full build.
    assert [len(shard) for shard in shards] == [24, 24, 2]
    picked = [row for shard in shards for row in shard]
    assert [every.index(row) for row in picked] == sorted(every.index(row) for row in picked)
    other = [row["problem_id"] for shard in build(trial.model_copy(update={"sample_seed": 2})) for row in shard]
    assert len(other) == 50 and set(other) != {row["problem_id"] for row in picked}
    assert build(trial) == shards  # read again (only the latest source is kept): the same seed, the same problems
    assert [row for shard in build(full.model_copy(update={"max_problems": 1000})) for row in shard] == every

    # Not set, the new fields leave the fingerprint of existing builds as it was; set, they make a new dataset.
    assert problems.stage_fingerprint(full.model_copy(update={"sample_seed": 0}), store) == problems.stage_fingerprint(
        full, store
    )
    assert problems.stage_fingerprint(trial, store) != problems.stage_fingerprint(full, store)
    assert problems.row_report(trial, store)["skipped"] == {}
