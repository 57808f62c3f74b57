"""MATH-500 (HuggingFaceH4/MATH-500): competition math problems with a LaTeX answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracemill.config import Math500Source
from tracemill.sources.hub import Mapped, extra_json, optional_text, read_problems, text


def read_math500(source: Math500Source, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Problem rows of MATH-500 (``problem``, ``solution``, ``answer``, ``subject``, ``level``, ``unique_id``)."""
    return read_problems(source, source.kind, math500_problem, storage_options=storage_options)


def math500_problem(row: Mapping[str, Any], where: str) -> Mapped:
    """One MATH-500 row; ``unique_id`` (such as ``test/algebra/1.json``) is the stable key."""
    return text(row, "unique_id", where), {
        "question": text(row, "problem", where),
        "answer": text(row, "answer", where),
        "answer_type": "math",
        "prompt_template": "math_boxed",
        "subject": optional_text(row, "subject", where),
        "level": optional_text(row, "level", where),
        "extra": extra_json({"solution": row.get("solution")}),
    }
