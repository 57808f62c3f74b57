"""GSM8K (openai/gsm8k): grade-school word problems whose solution ends in a ``#### N`` line.

Copies differ: the Hub's ``question`` and ``answer`` (a worked solution ending ``#### N``); copies
whose ``answer`` is the bare number, with the solution, if any, in ``solution``; and copies that
call the question ``problem`` or ``input``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracemill.problems.config import Gsm8kSource
from tracemill.problems.hub import (
    Mapped,
    column,
    extra_json,
    find_column,
    optional_text,
    plain_number,
    read_problems,
    text,
)
from tracemill.problems.rows import RowError, RowReport

QUESTION_COLUMNS = ("question", "problem", "input")
ANSWER_COLUMNS = ("answer", "final_answer", "target")


def read_gsm8k(
    source: Gsm8kSource, storage_options: dict[str, Any] | None = None, report: RowReport | None = None
) -> list[dict[str, Any]]:
    """Problem rows of GSM8K (``question``, ``answer``): the gold is the final ``#### N``, or a bare number."""
    return read_problems(source, source.kind, gsm8k_problem, storage_options=storage_options, report=report)


def gsm8k_problem(row: Mapping[str, Any], where: str) -> Mapped:
    """One GSM8K row; the worked solution before ``####`` (or a ``solution`` column) is kept in ``extra``."""
    question = text(row, column(row, QUESTION_COLUMNS, where, "the question"), where)
    name = column(row, ANSWER_COLUMNS, where, "the gold")
    answer = text(row, name, where)
    solution, _, final = answer.rpartition("\n")
    if final.strip().startswith("####"):
        gold = plain_number(final.strip().removeprefix("####"))
        if gold is None:
            raise RowError(where, f"field {name!r}: final line is not '#### N' with a number N", repr(final.strip()))
    else:
        gold = plain_number(answer)
        if gold is None:
            raise RowError(where, f"field {name!r} has no final '#### N' line and is not a number", repr(answer[-80:]))
        solution = optional_text(row, find_column(row, ("solution", "rationale")), where) or ""
    return None, {
        "question": question,
        "answer": gold,
        "answer_type": "number",
        "prompt_template": "math_boxed",
        "extra": extra_json({"solution": solution.strip() or None}),
    }
