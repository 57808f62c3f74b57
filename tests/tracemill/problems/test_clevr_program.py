"""The program executor on small hand-built scenes whose answers can be read off by eye."""

from __future__ import annotations

from typing import Any

import pytest

from tracemill.problems.clevr_program import (
    ProgramError,
    execute,
    family_of,
    format_answer,
    normalize_program,
)


def obj(size: str, color: str, material: str, shape: str) -> dict[str, Any]:
    return {"size": size, "color": color, "material": material, "shape": shape}


# Left to right: 0, 1, 2, 3. Front to back: 2, 0, 3, 1.
SCENE: dict[str, Any] = {
    "objects": [
        obj("large", "red", "rubber", "cube"),
        obj("small", "red", "metal", "sphere"),
        obj("large", "blue", "metal", "cylinder"),
        obj("small", "green", "rubber", "cube"),
    ],
    "relationships": {
        "left": [[], [0], [0, 1], [0, 1, 2]],
        "right": [[1, 2, 3], [2, 3], [3], []],
        "front": [[2], [0, 2, 3], [], [0, 2]],
        "behind": [[1, 3], [], [0, 1, 3], [1]],
    },
}


def n(function: str, inputs: list[int] | None = None, values: list[str] | None = None) -> dict[str, Any]:
    return {"function": function, "inputs": inputs or [], "value_inputs": values or []}


def run(*nodes: dict[str, Any]) -> Any:
    return execute(list(nodes), SCENE)


def test_filters_and_count() -> None:
    assert run(n("scene"), n("count", [0])) == 4
    assert run(n("scene"), n("filter_color", [0], ["red"]), n("count", [1])) == 2
    assert (
        run(
            n("scene"),
            n("filter_size", [0], ["large"]),
            n("filter_material", [1], ["metal"]),
            n("count", [2]),
        )
        == 1
    )
    assert run(n("scene"), n("filter_shape", [0], ["cube"]), n("count", [1])) == 2
    assert run(n("scene"), n("filter_color", [0], ["yellow"]), n("count", [1])) == 0


def test_unique_and_relate() -> None:
    sphere = [n("scene"), n("filter_shape", [0], ["sphere"]), n("unique", [1])]
    assert run(*sphere, n("relate", [2], ["left"]), n("count", [3])) == 1
    assert run(*sphere, n("relate", [2], ["right"]), n("count", [3])) == 2
    assert run(*sphere, n("relate", [2], ["front"]), n("filter_shape", [3], ["cube"]), n("count", [4])) == 2
    assert run(*sphere, n("relate", [2], ["behind"]), n("count", [3])) == 0


def test_unique_fails_unless_exactly_one_object() -> None:
    with pytest.raises(ProgramError, match=r"node 2 \(unique\): 2 objects match"):
        run(
            n("scene"),
            n("filter_color", [0], ["red"]),
            n("unique", [1]),
            n("relate", [2], ["left"]),
            n("count", [3]),
        )
    with pytest.raises(ProgramError, match=r"0 objects match"):
        run(n("scene"), n("filter_color", [0], ["cyan"]), n("unique", [1]), n("query_shape", [2]))


def test_relate_needs_the_relation_in_the_scene() -> None:
    program = [n("scene"), n("filter_shape", [0], ["sphere"]), n("unique", [1]), n("relate", [2], ["above"])]
    with pytest.raises(ProgramError, match="above"):
        run(*program, n("count", [3]))


def test_intersect_and_union() -> None:
    # both right of the red cube (1, 2, 3) and in front of the green cube (0, 2) -> {2}
    program = [
        n("scene"),
        n("filter_color", [0], ["red"]),
        n("filter_shape", [1], ["cube"]),
        n("unique", [2]),
        n("relate", [3], ["right"]),
        n("scene"),
        n("filter_color", [5], ["green"]),
        n("unique", [6]),
        n("relate", [7], ["front"]),
        n("intersect", [4, 8]),
        n("count", [9]),
    ]
    assert run(*program) == 1
    # either metal things (1, 2) or cubes (0, 3) -> 4; either red (0, 1) or large (0, 2) -> 3
    metal_or_cube = [
        n("scene"),
        n("filter_material", [0], ["metal"]),
        n("scene"),
        n("filter_shape", [2], ["cube"]),
    ]
    assert run(*metal_or_cube, n("union", [1, 3]), n("count", [4])) == 4
    red_or_large = [n("scene"), n("filter_color", [0], ["red"]), n("scene"), n("filter_size", [2], ["large"])]
    assert run(*red_or_large, n("union", [1, 3]), n("count", [4])) == 3


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [("color", 1), ("shape", 1), ("size", 1), ("material", 1)],
)
def test_same_attribute_excludes_the_object_itself(attribute: str, expected: int) -> None:
    large_red_cube = [
        n("scene"),
        n("filter_size", [0], ["large"]),
        n("filter_shape", [1], ["cube"]),
        n("unique", [2]),
    ]
    assert run(*large_red_cube, n(f"same_{attribute}", [3]), n("count", [4])) == expected


def test_same_attribute_then_filter() -> None:
    blue = [n("scene"), n("filter_color", [0], ["blue"]), n("unique", [1])]
    assert run(*blue, n("same_material", [2]), n("count", [3])) == 1
    assert run(*blue, n("same_size", [2]), n("filter_shape", [3], ["cube"]), n("count", [4])) == 1
    assert run(*blue, n("same_color", [2]), n("count", [3])) == 0


def test_exist_query_equal_and_compare() -> None:
    assert run(n("scene"), n("filter_color", [0], ["green"]), n("exist", [1])) is True
    assert run(n("scene"), n("filter_color", [0], ["gray"]), n("exist", [1])) is False
    sphere = [n("scene"), n("filter_shape", [0], ["sphere"]), n("unique", [1])]
    assert run(*sphere, n("query_color", [2])) == "red"
    assert run(*sphere, n("query_size", [2])) == "small"
    assert run(*sphere, n("query_material", [2])) == "metal"
    assert run(*sphere, n("query_shape", [2])) == "sphere"
    cylinder = [n("scene"), n("filter_shape", [3], ["cylinder"]), n("unique", [4])]
    materials = [n("query_material", [2]), n("query_material", [5])]
    assert run(*sphere, *cylinder, *materials, n("equal_material", [6, 7])) is True
    sizes = [n("query_size", [2]), n("query_size", [5])]
    assert run(*sphere, *cylinder, *sizes, n("equal_size", [6, 7])) is False
    # Are there fewer cubes (2) than metal things (2)? Is the number of cubes the same as of metal things?
    cubes_metal = [n("scene"), n("filter_shape", [0], ["cube"]), n("count", [1]), n("scene")]
    cubes_metal += [n("filter_material", [3], ["metal"]), n("count", [4])]
    assert run(*cubes_metal, n("less_than", [2, 5])) is False
    assert run(*cubes_metal, n("greater_than", [2, 5])) is False
    assert run(*cubes_metal, n("equal_integer", [2, 5])) is True


def test_question_engine_key_style() -> None:
    program = [
        {"type": "scene", "inputs": []},
        {"type": "filter_color", "inputs": [0], "side_inputs": ["red"]},
        {"type": "count", "inputs": [1]},
    ]
    assert execute(program, SCENE) == 2
    assert normalize_program(program) == [n("scene"), n("filter_color", [0], ["red"]), n("count", [1])]


def test_compact_nodes_expand_into_primitives() -> None:
    program = [
        {"type": "scene", "inputs": []},
        {"type": "filter_unique", "inputs": [0], "side_inputs": ["<Z>", "<C>", "<M>", "sphere"]},
        {"type": "relate_filter_count", "inputs": [1], "side_inputs": ["right", "", "", "", "thing"]},
    ]
    assert normalize_program(program) == [
        n("scene"),
        n("filter_shape", [0], ["sphere"]),
        n("unique", [1]),
        n("relate", [2], ["right"]),
        n("count", [3]),
    ]
    assert execute(program, SCENE) == 2


def test_compact_nodes_renumber_later_inputs() -> None:
    # Are there more large things than things right of the red metal sphere?
    program = [
        {"type": "scene", "inputs": []},
        {"type": "filter_count", "inputs": [0], "side_inputs": ["large", "", "", ""]},
        {"type": "scene", "inputs": []},
        {"type": "filter", "inputs": [2], "side_inputs": ["red", "metal"]},
        {"type": "unique", "inputs": [3]},
        {"type": "relate_filter", "inputs": [4], "side_inputs": ["right", "<Z2>", "<C2>", "<M2>", "<S2>"]},
        {"type": "count", "inputs": [5]},
        {"type": "greater_than", "inputs": [1, 6]},
    ]
    nodes = normalize_program(program)
    assert [node["function"] for node in nodes] == [
        "scene",
        "filter_size",
        "count",
        "scene",
        "filter_color",
        "filter_material",
        "unique",
        "relate",
        "count",
        "greater_than",
    ]
    assert nodes[-1]["inputs"] == [2, 8]
    assert nodes[6]["inputs"] == [5]
    assert execute(program, SCENE) is False  # 2 large things, 2 things right of the sphere
    exist = [
        {"type": "scene", "inputs": []},
        {"type": "filter_unique", "inputs": [0], "side_inputs": ["green"]},
        {
            "type": "relate_filter_exist",
            "inputs": [1],
            "side_inputs": ["left", "large", "blue", "metal", "cylinder"],
        },
    ]
    assert execute(exist, SCENE) is True


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ([], "non-empty list"),
        ([n("scene"), "count"], r"node 1: not an object"),
        ([n("scene"), {"inputs": [0]}], r"node 1: no function name"),
        ([n("scene"), n("frobnicate", [0])], r"node 1: unknown function 'frobnicate'"),
        ([n("scene"), n("count", [1])], r"node 1 \(count\): input 1 is not the index of an earlier node"),
        ([n("scene"), n("count", [0, 0])], r"node 1 \(count\): takes 1 input"),
        ([n("scene"), n("filter_color", [0])], r"node 1 \(filter_color\): takes 1 value input"),
        (
            [n("scene"), n("unique", [0]), n("count", [1])],
            r"node 2 \(count\): input 0 gives object, expected objects",
        ),
        ([n("scene"), {"function": "count", "inputs": "0"}], r"node 1 \(count\): inputs must be a list"),
        ([n("scene"), {"type": "filter_count", "inputs": [0], "side_inputs": ["huge"]}], r"node 1.*'huge'"),
        (
            [n("scene"), {"type": "relate_filter", "inputs": [0], "side_inputs": ["<R>"]}],
            r"node 1.*relation|one of",
        ),
    ],
)
def test_malformed_programs_name_the_node(program: list, message: str) -> None:
    with pytest.raises(ProgramError, match=message):
        normalize_program(program)
    assert issubclass(ProgramError, ValueError)


def test_a_program_must_end_in_an_answer() -> None:
    with pytest.raises(ProgramError, match="gives objects"):
        run(n("scene"), n("filter_color", [0], ["red"]))


def test_family_of() -> None:
    count = [n("scene"), n("filter_color", [0], ["red"]), n("count", [1])]
    assert family_of(count) == "zero_hop"
    hop = [n("scene"), n("filter_shape", [0], ["sphere"]), n("unique", [1]), n("relate", [2], ["left"])]
    assert family_of([*hop, n("count", [3])]) == "one_hop"
    two = [*hop, n("filter_shape", [3], ["cube"]), n("unique", [4]), n("relate", [5], ["front"])]
    assert family_of([*two, n("count", [6])]) == "two_hop"
    three = [*two, n("unique", [6]), n("relate", [7], ["right"])]
    assert family_of([*three, n("count", [8])]) == "three_hop"
    second = [n("scene"), n("unique", [4]), n("relate", [5], ["right"])]
    assert family_of([*hop, *second, n("intersect", [3, 6]), n("count", [7])]) == "single_and"
    assert family_of([n("scene"), n("scene"), n("union", [0, 1]), n("count", [2])]) == "single_or"
    assert family_of([*hop[:3], n("same_color", [2]), n("count", [3])]) == "same_relate"


def test_format_answer() -> None:
    assert format_answer(5) == "5"
    assert format_answer(0) == "0"
    assert format_answer(True) == "yes"
    assert format_answer(False) == "no"
    assert format_answer("red") == "red"
