"""OpenMathReasoning (nvidia/OpenMathReasoning): olympiad-style problems with an expected answer.

The dataset holds several generated solutions per problem, so de-duplication keeps one row per
problem; problems that were proofs (``converted_proof``) are left out unless asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracemill.problems.config import OpenMathReasoningSource
from tracemill.problems.hub import Mapped, extra_json, read_problems, text
from tracemill.problems.rows import RowReport

EXTRA_FIELDS = ("problem_type", "problem_source", "pass_rate_72b_tir", "used_in_kaggle")


def read_openmathreasoning(
    source: OpenMathReasoningSource, storage_options: dict[str, Any] | None = None, report: RowReport | None = None
) -> list[dict[str, Any]]:
    """Problem rows of OpenMathReasoning (``problem``, ``expected_answer``, ``problem_type``, …)."""
    keep = set(source.problem_types)

    def to_problem(row: Mapping[str, Any], where: str) -> Mapped | None:
        if text(row, "problem_type", where) not in keep:
            return None
        return None, {
            "question": text(row, "problem", where),
            "answer": text(row, "expected_answer", where),
            "answer_type": "math",
            "prompt_template": "math_boxed",
            "extra": extra_json({name: row.get(name) for name in EXTRA_FIELDS}),
        }

    return read_problems(source, source.kind, to_problem, storage_options=storage_options, report=report)
