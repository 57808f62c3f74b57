"""GSM8K (openai/gsm8k): grade-school word problems whose solution ends in a ``#### N`` line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracemill.config import Gsm8kSource
from tracemill.sources.hub import Mapped, extra_json, plain_number, read_problems, text


def read_gsm8k(source: Gsm8kSource, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Problem rows of GSM8K (``question``, ``answer``): the gold is the final ``#### N``, as a number."""
    return read_problems(source, source.kind, gsm8k_problem, storage_options=storage_options)


def gsm8k_problem(row: Mapping[str, Any], where: str) -> Mapped:
    """One GSM8K row; the worked solution before ``####`` is kept in ``extra``."""
    question = text(row, "question", where)
    solution, _, final = text(row, "answer", where).rpartition("\n")
    if not final.strip().startswith("####"):
        raise ValueError(f"{where}: field 'answer' has no final '#### N' line")
    gold = plain_number(final.strip().removeprefix("####"))
    if gold is None:
        raise ValueError(f"{where}: field 'answer': final line {final.strip()!r} is not '#### N' with a number N")
    return None, {
        "question": question,
        "answer": gold,
        "answer_type": "number",
        "prompt_template": "math_boxed",
        "extra": extra_json({"solution": solution.strip() or None}),
    }
