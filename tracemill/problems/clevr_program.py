"""CLEVR functional programs: read them in any of CLEVR's styles and execute them on a scene.

A stored CLEVR answer is trusted only after its program is re-executed on its scene, and the
procedural generator computes its answers with the same executor, so both sources agree on what
a program means.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

ATTRIBUTES = ("size", "color", "material", "shape")
VOCABULARY: dict[str, tuple[str, ...]] = {
    "size": ("large", "small"),
    "color": ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow"),
    "material": ("rubber", "metal"),
    "shape": ("cube", "sphere", "cylinder"),
}
RELATIONS = ("left", "right", "front", "behind")

Answer = int | bool | str


class ProgramError(ValueError):
    """A program that cannot be read or executed; the message names the node and what is wrong."""


# What flows between nodes: a set of objects, one object, a count, a yes/no, an attribute value.
OBJECTS, OBJECT, INTEGER, BOOLEAN, VALUE = "objects", "object", "integer", "boolean", "value"

# function -> (kinds of its inputs, kind of its output, number of value inputs)
SIGNATURES: dict[str, tuple[tuple[str, ...], str, int]] = {
    "scene": ((), OBJECTS, 0),
    "unique": ((OBJECTS,), OBJECT, 0),
    "relate": ((OBJECT,), OBJECTS, 1),
    "intersect": ((OBJECTS, OBJECTS), OBJECTS, 0),
    "union": ((OBJECTS, OBJECTS), OBJECTS, 0),
    "count": ((OBJECTS,), INTEGER, 0),
    "exist": ((OBJECTS,), BOOLEAN, 0),
    "equal_integer": ((INTEGER, INTEGER), BOOLEAN, 0),
    "less_than": ((INTEGER, INTEGER), BOOLEAN, 0),
    "greater_than": ((INTEGER, INTEGER), BOOLEAN, 0),
    **{f"filter_{a}": ((OBJECTS,), OBJECTS, 1) for a in ATTRIBUTES},
    **{f"query_{a}": ((OBJECT,), VALUE, 0) for a in ATTRIBUTES},
    **{f"same_{a}": ((OBJECT,), OBJECTS, 0) for a in ATTRIBUTES},
    **{f"equal_{a}": ((VALUE, VALUE), BOOLEAN, 0) for a in ATTRIBUTES},
}

# The question engine's compact template nodes: (starts with a relate?, function appended after the filters)
COMPACT: dict[str, tuple[bool, str | None]] = {
    "filter": (False, None),
    "filter_count": (False, "count"),
    "filter_exist": (False, "exist"),
    "filter_unique": (False, "unique"),
    "relate_filter": (True, None),
    "relate_filter_count": (True, "count"),
    "relate_filter_exist": (True, "exist"),
    "relate_filter_unique": (True, "unique"),
}

_ATTRIBUTE_OF = {value: attr for attr, values in VOCABULARY.items() for value in values}
# Values a compact filter ignores: unfilled slots, and CLEVR's words for "any shape".
_NO_FILTER = {"", "thing", "things", "object", "objects"}
_PLACEHOLDER = re.compile(r"<[A-Za-z]+\d*>")


def normalize_program(program: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nodes ``{"function", "inputs", "value_inputs"}`` from either CLEVR style, compact nodes expanded.

    Accepts ``function`` or ``type`` for the name and ``value_inputs`` or ``side_inputs`` for the
    values; checks every node's inputs (earlier nodes, the right number and kind) so a malformed
    program fails here with the index of the offending node, not halfway through execution.
    """
    if not isinstance(program, list) or not program:
        raise ProgramError(f"a program is a non-empty list of nodes, got {program!r:.80}")
    nodes: list[dict[str, Any]] = []
    kinds: list[str] = []
    output_of: list[int] = []  # original node index -> normalised node giving its output
    for index, raw in enumerate(program):
        function, inputs, values = _read_node(index, raw)
        inputs = [output_of[i] for i in inputs]
        if function in COMPACT:
            output_of.append(_expand(index, function, inputs, values, nodes, kinds))
        else:
            output_of.append(_append(index, function, inputs, values, nodes, kinds))
    return nodes


def _read_node(index: int, raw: Any) -> tuple[str, list[int], list[str]]:
    if not isinstance(raw, dict):
        raise ProgramError(f"node {index}: not an object: {raw!r:.80}")
    function = raw.get("function", raw.get("type"))
    if not isinstance(function, str) or not function:
        raise ProgramError(f"node {index}: no function name under 'function' or 'type'")
    where = f"node {index} ({function})"
    inputs = raw.get("inputs", [])
    if not isinstance(inputs, list):
        raise ProgramError(f"{where}: inputs must be a list of node indices, got {inputs!r}")
    for i in inputs:
        if type(i) is not int or not 0 <= i < index:
            raise ProgramError(f"{where}: input {i!r} is not the index of an earlier node")
    values = raw.get("value_inputs", raw.get("side_inputs", []))
    if not isinstance(values, list) or any(type(v) is not str for v in values):
        raise ProgramError(f"{where}: value inputs must be a list of strings, got {values!r}")
    return function, inputs, values


def _append(
    index: int,
    function: str,
    inputs: list[int],
    values: list[str],
    nodes: list[dict[str, Any]],
    kinds: list[str],
) -> int:
    """Append one primitive node after checking its inputs and values; its position."""
    signature = SIGNATURES.get(function)
    if signature is None:
        raise ProgramError(f"node {index}: unknown function {function!r}")
    where = f"node {index} ({function})"
    input_kinds, output_kind, value_count = signature
    if len(inputs) != len(input_kinds):
        raise ProgramError(f"{where}: takes {len(input_kinds)} input(s), got {len(inputs)}")
    if len(values) != value_count:
        raise ProgramError(f"{where}: takes {value_count} value input(s), got {values!r}")
    for position, (i, expected) in enumerate(zip(inputs, input_kinds, strict=True)):
        if kinds[i] != expected:
            raise ProgramError(f"{where}: input {position} gives {kinds[i]}, expected {expected}")
    nodes.append({"function": function, "inputs": list(inputs), "value_inputs": list(values)})
    kinds.append(output_kind)
    return len(nodes) - 1


def _expand(
    index: int,
    function: str,
    inputs: list[int],
    values: list[str],
    nodes: list[dict[str, Any]],
    kinds: list[str],
) -> int:
    """Append the primitive nodes of one compact node; the position of the last."""
    where = f"node {index} ({function})"
    starts_with_relate, tail = COMPACT[function]
    if len(inputs) != 1:
        raise ProgramError(f"{where}: takes 1 input, got {len(inputs)}")
    current = inputs[0]
    if starts_with_relate:
        if not values or values[0] not in RELATIONS:
            raise ProgramError(f"{where}: first value must be one of {RELATIONS}, got {values!r}")
        current = _append(index, "relate", [current], values[:1], nodes, kinds)
        values = values[1:]
    for value in values:
        if value in _NO_FILTER or _PLACEHOLDER.fullmatch(value):
            continue
        attribute = _ATTRIBUTE_OF.get(value)
        if attribute is None:
            raise ProgramError(f"{where}: {value!r} is no CLEVR attribute value")
        current = _append(index, f"filter_{attribute}", [current], [value], nodes, kinds)
    if tail is not None:
        current = _append(index, tail, [current], [], nodes, kinds)
    elif kinds[current] != OBJECTS:
        raise ProgramError(f"{where}: input gives {kinds[current]}, expected {OBJECTS}")
    return current


Handler = Callable[[dict[str, Any], list[Any], list[str]], Any]


def _scene(scene: dict[str, Any], args: list[Any], values: list[str]) -> frozenset[int]:
    return frozenset(range(len(scene["objects"])))


def _filter(attribute: str) -> Handler:
    def run(scene: dict[str, Any], args: list[Any], values: list[str]) -> frozenset[int]:
        objects = scene["objects"]
        return frozenset(i for i in args[0] if objects[i][attribute] == values[0])

    return run


def _unique(scene: dict[str, Any], args: list[Any], values: list[str]) -> int:
    if len(args[0]) != 1:
        raise ProgramError(f"{len(args[0])} objects match, expected exactly one")
    return next(iter(args[0]))


def _relate(scene: dict[str, Any], args: list[Any], values: list[str]) -> frozenset[int]:
    table = scene["relationships"].get(values[0])
    if table is None:
        raise ProgramError(f"the scene has no {values[0]!r} relationships")
    return frozenset(table[args[0]])


def _same(attribute: str) -> Handler:
    def run(scene: dict[str, Any], args: list[Any], values: list[str]) -> frozenset[int]:
        objects, me = scene["objects"], args[0]
        value = objects[me][attribute]
        return frozenset(j for j, other in enumerate(objects) if j != me and other[attribute] == value)

    return run


def _query(attribute: str) -> Handler:
    def run(scene: dict[str, Any], args: list[Any], values: list[str]) -> str:
        return scene["objects"][args[0]][attribute]

    return run


def _equal(scene: dict[str, Any], args: list[Any], values: list[str]) -> bool:
    return args[0] == args[1]


HANDLERS: dict[str, Handler] = {
    "scene": _scene,
    "unique": _unique,
    "relate": _relate,
    "intersect": lambda scene, args, values: args[0] & args[1],
    "union": lambda scene, args, values: args[0] | args[1],
    "count": lambda scene, args, values: len(args[0]),
    "exist": lambda scene, args, values: len(args[0]) > 0,
    "equal_integer": _equal,
    "less_than": lambda scene, args, values: args[0] < args[1],
    "greater_than": lambda scene, args, values: args[0] > args[1],
    **{f"filter_{a}": _filter(a) for a in ATTRIBUTES},
    **{f"query_{a}": _query(a) for a in ATTRIBUTES},
    **{f"same_{a}": _same(a) for a in ATTRIBUTES},
    **{f"equal_{a}": _equal for a in ATTRIBUTES},
}


def execute(program: list[dict[str, Any]], scene: dict[str, Any], *, normalized: bool = False) -> Answer:
    """The answer of ``program`` on ``scene``: a count, a yes/no or an attribute value.

    Object sets are sets of indices into ``scene["objects"]``; ``relate`` reads the scene's own
    ``relationships`` table. Raises :class:`ProgramError` (naming the normalised node) when a
    ``unique`` does not select exactly one object or the scene lacks what the program needs.
    ``normalized=True`` skips :func:`normalize_program` for a program already in that form (the
    generator builds thousands a second); nodes are then trusted as they are.
    """
    nodes = program if normalized else normalize_program(program)
    last = nodes[-1]["function"]
    if last not in SIGNATURES:
        raise ProgramError(f"node {len(nodes) - 1}: unknown function {last!r}")
    if SIGNATURES[last][1] in (OBJECTS, OBJECT):
        raise ProgramError(f"the program ends in {last}, which gives objects, not an answer")
    outputs: list[Any] = []
    for index, node in enumerate(nodes):
        function = node["function"]
        handler = HANDLERS.get(function)
        if handler is None:
            raise ProgramError(f"node {index}: unknown function {function!r}")
        try:
            outputs.append(handler(scene, [outputs[i] for i in node["inputs"]], node["value_inputs"]))
        except ProgramError as exc:
            raise ProgramError(f"node {index} ({function}): {exc}") from None
        except (KeyError, IndexError, TypeError) as exc:
            raise ProgramError(f"node {index} ({function}): the scene does not fit: {exc!r}") from None
    return outputs[-1]


_HOP_FAMILIES = ("zero_hop", "one_hop", "two_hop", "three_hop")


def family_of(program: list[dict[str, Any]]) -> str:
    """The CLEVR question family of a program, from the functions it uses."""
    functions = [node["function"] for node in normalize_program(program)]
    if any(f.startswith("same_") for f in functions):
        return "same_relate"
    if "intersect" in functions:
        return "single_and"
    if "union" in functions:
        return "single_or"
    hops = functions.count("relate")
    return _HOP_FAMILIES[hops] if hops < len(_HOP_FAMILIES) else f"{hops}_hop"


def format_answer(value: Answer) -> str:
    """An answer as CLEVR writes it: ``"5"``, ``"yes"``/``"no"``, ``"red"``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
