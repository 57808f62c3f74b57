"""``--set dotted.key=value`` overrides of a config file, applied before validation.

Values are read as YAML scalars (``8`` is an int, ``true`` a bool, ``[a, b]`` a list, ``null`` None), so
the validated model sees the same types as in a file, and a bad key or value fails with the field's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"sampling.n=8"`` → (["sampling", "n"], 8)."""
    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise ValueError(f"--set {text!r}: expected dotted.key=value, e.g. sampling.n=8")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ValueError(f"--set {text!r}: value is not valid YAML: {exc}") from exc
    return path, parsed


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Set each dotted key in a copy of ``data``, creating nested mappings where a key is new."""
    result = _copy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for depth, key in enumerate(path[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise ValueError(f"--set {text!r}: {where} is {type(child).__name__}, not a mapping")
            node = child
        node[path[-1]] = value
    return result


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _copy(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_copy(value) for value in data]
    return data
