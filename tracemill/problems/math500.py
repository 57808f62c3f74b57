"""MATH-500 (HuggingFaceH4/MATH-500): competition math problems with a LaTeX answer.

The Hub's copy has ``problem``, ``solution``, ``answer``, ``subject``, ``level`` and ``unique_id``;
copies without ``unique_id`` key each problem on its text, and copies that call the problem
``question`` read the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracemill.problems.config import Math500Source
from tracemill.problems.hub import Mapped, column, extra_json, find_column, optional_text, read_problems, text
from tracemill.problems.rows import RowReport


def read_math500(
    source: Math500Source, storage_options: dict[str, Any] | None = None, report: RowReport | None = None
) -> list[dict[str, Any]]:
    """Problem rows of MATH-500 (``problem``, ``solution``, ``answer``, ``subject``, ``level``, ``unique_id``)."""
    return read_problems(source, source.kind, math500_problem, storage_options=storage_options, report=report)


def math500_problem(row: Mapping[str, Any], where: str) -> Mapped:
    """One MATH-500 row; ``unique_id`` (such as ``test/algebra/1.json``) is the stable key where there is one."""
    return optional_text(row, find_column(row, ("unique_id",)), where), {
        "question": text(row, column(row, ("problem", "question"), where, "the problem"), where),
        "answer": text(row, column(row, ("answer", "expected_answer"), where, "the gold"), where),
        "answer_type": "math",
        "prompt_template": "math_boxed",
        "subject": optional_text(row, find_column(row, ("subject", "type")), where),
        "level": optional_text(row, "level", where),
        "extra": extra_json({"solution": row.get("solution")}),
    }
