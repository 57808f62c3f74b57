"""Counting questions on a scene from our own templates, one per CLEVR counting family.

CLEVR's question engine needs its template files and a depth-first search; these templates cover
the same counting families (zero to three hops, and, or, same-attribute) with a few lines each.
Every answer comes from executing the question's program, and the choice among candidates
balances answers so a dataset is not dominated by small counts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tracemill.problems.clevr import scene_problems
from tracemill.problems.clevr_program import (
    ATTRIBUTES,
    RELATIONS,
    VOCABULARY,
    ProgramError,
    execute,
    format_answer,
)
from tracemill.problems.clevr_scenes import derived_rng, generate_scene

RELATION_PHRASES = {"left": "left of", "right": "right of", "front": "in front of", "behind": "behind"}
PLURALS = {"cube": "cubes", "sphere": "spheres", "cylinder": "cylinders"}

# A filter: (attribute, value) pairs in ATTRIBUTES order; empty selects everything.
Spec = tuple[tuple[str, str], ...]
Node = dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """One instantiated template; ``key`` says what it asks, so two phrasings of one question collide."""

    family: str
    question: str
    program: list[Node]
    answer: str
    key: tuple


# -- noun phrases and programs --------------------------------------------------------------------


def _noun_phrase(spec: Spec, rng: random.Random, *, plural: bool) -> str:
    values = dict(spec)
    shape = values.get("shape")
    if shape is not None:
        noun = PLURALS[shape] if plural else shape
    else:
        noun = rng.choice(("things", "objects") if plural else ("thing", "object"))
    return " ".join([*(value for attr, value in spec if attr != "shape"), noun])


def _ask(rng: random.Random) -> str:
    return rng.choice(("How many", "What number of"))


def _add(nodes: list[Node], function: str, inputs: list[int], values: Sequence[str] = ()) -> int:
    nodes.append({"function": function, "inputs": inputs, "value_inputs": list(values)})
    return len(nodes) - 1


def _add_filters(nodes: list[Node], current: int, spec: Spec) -> int:
    for attr, value in spec:
        current = _add(nodes, f"filter_{attr}", [current], [value])
    return current


def _matches(obj: dict[str, Any], spec: Spec) -> bool:
    return all(obj[attr] == value for attr, value in spec)


def _matching(objects: list[dict[str, Any]], pool: Sequence[int], spec: Spec) -> int:
    """How many objects of ``pool`` the filter selects, counting no further than two."""
    found = 0
    for j in pool:
        obj = objects[j]
        for attr, value in spec:
            if obj[attr] != value:
                break
        else:
            found += 1
            if found == 2:
                break
    return found


def _refer(
    objects: list[dict[str, Any]], pool: Sequence[int], rng: random.Random, exclude: str | None = None
) -> tuple[int, Spec] | None:
    """An object of ``pool`` and attributes that pick out only it there, or None.

    Starts from a random subset of the object's attributes and adds more until the filter is
    unique; an object that even all its attributes cannot single out is not picked.
    """
    for _ in range(3):
        target = rng.choice(pool)
        attrs = [a for a in ATTRIBUTES if a != exclude]
        rng.shuffle(attrs)
        for size in range(rng.randint(0, 2), len(attrs) + 1):
            chosen = set(attrs[:size])
            spec = tuple((a, objects[target][a]) for a in ATTRIBUTES if a in chosen)
            if _matching(objects, pool, spec) == 1:
                return target, spec
    return None


def _count_spec(
    objects: list[dict[str, Any]],
    pool: Sequence[int],
    rng: random.Random,
    *,
    allow_empty: bool,
    exclude: str | None = None,
) -> Spec:
    """A filter for the objects being counted: often one that some object of ``pool`` matches."""
    draw = rng.random()
    if allow_empty and draw < 0.25:
        return ()
    attrs = rng.sample([a for a in ATTRIBUTES if a != exclude], rng.randint(1, 2))
    if pool and draw < 0.85:
        template = objects[rng.choice(pool)]
        chosen = {a: template[a] for a in attrs}
    else:  # values no object need have, so zero is a possible answer
        chosen = {a: rng.choice(VOCABULARY[a]) for a in attrs}
    return tuple((a, chosen[a]) for a in ATTRIBUTES if a in chosen)


def _finish(
    family: str,
    question: str,
    nodes: list[Node],
    scene: dict[str, Any],
    key: tuple,
) -> Candidate | None:
    try:
        answer = format_answer(execute(nodes, scene, normalized=True))
    except ProgramError:  # ill-posed: a "the …" that does not pick out one object
        return None
    return Candidate(family, question, nodes, answer, key)


# -- the families ---------------------------------------------------------------------------------


def zero_hop(scene: dict[str, Any], rng: random.Random) -> Candidate | None:
    """How many large red metal cubes are there?"""
    objects = scene["objects"]
    spec = _count_spec(objects, range(len(objects)), rng, allow_empty=False)
    nodes: list[Node] = []
    _add(nodes, "count", [_add_filters(nodes, _add(nodes, "scene", []), spec)])
    question = f"{_ask(rng)} {_noun_phrase(spec, rng, plural=True)} are there?"
    return _finish("zero_hop", question, nodes, scene, ("zero_hop", spec))


def _hops(scene: dict[str, Any], rng: random.Random, hops: int, family: str) -> Candidate | None:
    """How many cubes are behind the large rubber thing that is in front of the green sphere?"""
    objects, related = scene["objects"], scene["relationships"]
    nodes: list[Node] = []
    current = _add(nodes, "scene", [])
    pool: Sequence[int] = range(len(objects))
    phrases: list[str] = []
    steps: list[tuple[int, str]] = []
    for hop in range(hops):
        picked = _refer(objects, pool, rng)
        if picked is None:
            return None
        target, spec = picked
        relation = rng.choice(RELATIONS)
        pool = related[relation][target]
        if not pool and hop < hops - 1:
            return None
        current = _add(nodes, "unique", [_add_filters(nodes, current, spec)])
        current = _add(nodes, "relate", [current], [relation])
        phrases.append(f"{RELATION_PHRASES[relation]} the {_noun_phrase(spec, rng, plural=False)}")
        steps.append((target, relation))
    spec = _count_spec(objects, pool, rng, allow_empty=True)
    _add(nodes, "count", [_add_filters(nodes, current, spec)])
    # The first reference is the innermost clause: "… the Y that is <rel> the X".
    clauses = " that is ".join(reversed(phrases))
    question = f"{_ask(rng)} {_noun_phrase(spec, rng, plural=True)} are {clauses}?"
    return _finish(family, question, nodes, scene, (family, tuple(steps), spec))


def one_hop(scene: dict[str, Any], rng: random.Random) -> Candidate | None:
    """How many cylinders are left of the small cyan sphere?"""
    return _hops(scene, rng, 1, "one_hop")


def two_hop(scene: dict[str, Any], rng: random.Random) -> Candidate | None:
    """How many cubes are behind the large rubber thing that is in front of the green sphere?"""
    return _hops(scene, rng, 2, "two_hop")


def three_hop(scene: dict[str, Any], rng: random.Random) -> Candidate | None:
    """How many things are left of the cube that is behind the red thing that is right of the metal sphere?"""
    return _hops(scene, rng, 3, "three_hop")


def single_and(scene: dict[str, Any], rng: random.Random) -> Candidate | None:
    """How many things are both right of the blue cube and left of the purple sphere?"""
    objects, related = scene["objects"], scene["relationships"]
    everything = range(len(objects))
    first, second = _refer(objects, everything, rng), _refer(objects, everything, rng)
    if first is None or second is None or first[0] == second[0]:
        return None
    branches = sorted([(*first, rng.choice(RELATIONS)), (*second, rng.choice(RELATIONS))])
    nodes: list[Node] = []
    outputs = []
    phrases = []
    for _, spec, relation in branches:
        unique = _add(nodes, "unique", [_add_filters(nodes, _add(nodes, "scene", []), spec)])
        outputs.append(_add(nodes, "relate", [unique], [relation]))
        phrases.append(f"{RELATION_PHRASES[relation]} the {_noun_phrase(spec, rng, plural=False)}")
    both = _add(nodes, "intersect", outputs)
    (t1, _, r1), (t2, _, r2) = branches
    pool = sorted(set(related[r1][t1]) & set(related[r2][t2]))
    spec = _count_spec(objects, pool, rng, allow_empty=True)
    _add(nodes, "count", [_add_filters(nodes, both, spec)])
    question = f"{_ask(rng)} {_noun_phrase(spec, rng, plural=True)} are both {phrases[0]} and {phrases[1]}?"
    return _finish("single_and", question, nodes, scene, ("single_and", (t1, r1), (t2, r2), spec))


def single_or(scene: dict[str, Any], rng: random.Random) -> Candidate | None:
    """How many objects are either small cylinders or metal things?"""
    objects = scene["objects"]
    everything = range(len(objects))
    specs = sorted(
        [
            _count_spec(objects, everything, rng, allow_empty=False),
            _count_spec(objects, everything, rng, allow_empty=False),
        ]
    )
    if set(specs[0]) <= set(specs[1]) or set(specs[1]) <= set(specs[0]):
        return None  # "cubes or red cubes" is just "cubes"
    if all(_matches(obj, specs[0]) or _matches(obj, specs[1]) for obj in objects):
        return None  # "rubber things or metal things" is every object: the count-all question again
    nodes: list[Node] = []
    branches = [_add_filters(nodes, _add(nodes, "scene", []), spec) for spec in specs]
    _add(nodes, "count", [_add(nodes, "union", branches)])
    first, second = (_noun_phrase(spec, rng, plural=True) for spec in specs)
    question = f"{_ask(rng)} {rng.choice(('things', 'objects'))} are either {first} or {second}?"
    return _finish("single_or", question, nodes, scene, ("single_or", tuple(specs)))


def same_relate(scene: dict[str, Any], rng: random.Random) -> Candidate | None:
    """How many other things are the same color as the large metal cube?"""
    objects = scene["objects"]
    attribute = rng.choice(ATTRIBUTES)
    # The compared attribute is left out of both filters: naming it would give the answer away.
    picked = _refer(objects, range(len(objects)), rng, exclude=attribute)
    if picked is None:
        return None
    target, spec = picked
    value = objects[target][attribute]
    pool = [j for j, obj in enumerate(objects) if j != target and obj[attribute] == value]
    count_spec = _count_spec(objects, pool, rng, allow_empty=True, exclude=attribute)
    nodes: list[Node] = []
    unique = _add(nodes, "unique", [_add_filters(nodes, _add(nodes, "scene", []), spec)])
    same = _add(nodes, f"same_{attribute}", [unique])
    _add(nodes, "count", [_add_filters(nodes, same, count_spec)])
    question = (
        f"{_ask(rng)} other {_noun_phrase(count_spec, rng, plural=True)} are the same {attribute} "
        f"as the {_noun_phrase(spec, rng, plural=False)}?"
    )
    return _finish("same_relate", question, nodes, scene, ("same_relate", attribute, target, count_spec))


TEMPLATES: dict[str, Callable[[dict[str, Any], random.Random], Candidate | None]] = {
    "zero_hop": zero_hop,
    "one_hop": one_hop,
    "two_hop": two_hop,
    "three_hop": three_hop,
    "single_and": single_and,
    "single_or": single_or,
    "same_relate": same_relate,
}


# -- choosing questions ---------------------------------------------------------------------------


def generate_counting_questions(
    scene: dict[str, Any], rng: random.Random, n: int, answer_counts: Counter[str] | None = None
) -> list[dict[str, Any]]:
    """Up to ``n`` distinct counting questions on ``scene``, CLEVR-format dicts with normalised programs.

    Draws several candidates of every family, then repeatedly takes the one whose answer has
    been chosen least so far (then the least used family in this scene). ``answer_counts`` is
    updated in place, so passing one Counter across scenes balances answers across all of them.
    ``question_index`` is the candidate's position among this scene's candidates, which depend
    on ``rng`` alone, so a question keeps its index whatever else was chosen.
    """
    if n <= 0:
        return []
    counts = answer_counts if answer_counts is not None else Counter()
    candidates: list[Candidate] = []
    keys: set[tuple] = set()
    texts: set[str] = set()
    for _ in range(max(3, n)):
        for make in TEMPLATES.values():
            candidate = make(scene, rng)
            if candidate is None or candidate.key in keys or candidate.question in texts:
                continue
            keys.add(candidate.key)
            texts.add(candidate.question)
            candidates.append(candidate)
    order = list(range(len(candidates)))
    rng.shuffle(order)

    chosen: list[int] = []
    families: Counter[str] = Counter()
    while order and len(chosen) < n:
        best = min(order, key=lambda i: (counts[candidates[i].answer], families[candidates[i].family]))
        order.remove(best)
        chosen.append(best)
        counts[candidates[best].answer] += 1
        families[candidates[best].family] += 1
    return [
        {
            "question": candidates[i].question,
            "program": candidates[i].program,
            "answer": candidates[i].answer,
            "family": candidates[i].family,
            "question_index": i,
        }
        for i in chosen
    ]


def procedural_problems(
    seed: int,
    start: int,
    stop: int,
    *,
    questions_per_scene: int = 4,
    min_objects: int = 3,
    max_objects: int = 10,
    shuffle_seed: int | None = None,
    source: str = "clevr_procedural",
) -> list[dict[str, Any]]:
    """Problem rows for scenes ``start`` .. ``stop - 1`` of ``seed``: count-all plus generated questions.

    Each scene and its candidate questions come from generators derived from (seed, index)
    alone. Answer balancing shares one Counter across this call, so which candidates a scene
    keeps depends on the range it was generated in: a fixed shard size gives the same rows on
    every run, a different one may pick different questions.
    """
    counts: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    for index in range(start, stop):
        scene = generate_scene(seed, index, min_objects=min_objects, max_objects=max_objects)
        questions = generate_counting_questions(
            scene, derived_rng(seed, index, "questions"), questions_per_scene, counts
        )
        rows.extend(scene_problems(scene, questions, source=source, shuffle_seed=shuffle_seed))
    return rows
