"""Multiple-choice benchmarks: MMLU, MMLU-Pro and GPQA, as ``choice`` problems answered by a letter.

The options go in ``choices`` in the order shown to the teacher, and the gold is the letter of
the correct one. GPQA lists the correct answer first, so its options are shuffled with a seed
derived from each problem: the correct letter is uniform over A–D and the same on every run.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from typing import Any

from tracemill.config import GpqaSource, MmluProSource, MmluSource
from tracemill.sources.hub import Mapped, extra_json, field, index, optional_text, read_problems, text

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
GPQA_OPTIONS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def options(row: Mapping[str, Any], name: str, where: str, most: int = len(LETTERS)) -> list[str]:
    """A list field of 2..``most`` option texts (numbers are written as text)."""
    value = field(row, name, where)
    if isinstance(value, str) or not isinstance(value, list | tuple) or not 2 <= len(value) <= most:
        raise ValueError(f"{where}: field {name!r} is not a list of 2 to {most} options")
    for letter, option in zip(LETTERS, value, strict=False):
        if isinstance(option, bool) or not isinstance(option, str | int | float):
            raise ValueError(f"{where}: field {name!r}: option {letter} is not text: {option!r}")
    return [str(option).strip() for option in value]


def choice_problem(question: str, choices: list[str], answer: str, **fields: Any) -> dict[str, Any]:
    """The problem fields every choice source writes."""
    return {
        "question": question,
        "answer": answer,
        "answer_type": "choice",
        "prompt_template": "choice",
        "choices": choices,
        **fields,
    }


def read_mmlu(source: MmluSource, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Problem rows of MMLU (``question``, ``subject``, ``choices``, ``answer`` as an index)."""
    return read_problems(source, source.kind, mmlu_problem, storage_options=storage_options)


def mmlu_problem(row: Mapping[str, Any], where: str) -> Mapped:
    choices = options(row, "choices", where)
    answer = LETTERS[index(row, "answer", where, len(choices))]
    question = text(row, "question", where)
    return None, choice_problem(question, choices, answer, subject=optional_text(row, "subject", where))


def read_mmlu_pro(source: MmluProSource, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Problem rows of MMLU-Pro (``question``, ``options``, ``answer`` letter, ``answer_index``, ``category``)."""
    return read_problems(source, source.kind, mmlu_pro_problem, storage_options=storage_options)


def mmlu_pro_problem(row: Mapping[str, Any], where: str) -> Mapped:
    choices = options(row, "options", where, most=10)
    letter = text(row, "answer", where)
    if letter not in LETTERS[: len(choices)]:
        raise ValueError(f"{where}: field 'answer' is not a letter A-{LETTERS[len(choices) - 1]}: {letter!r}")
    if row.get("answer_index") is not None and LETTERS[index(row, "answer_index", where, len(choices))] != letter:
        raise ValueError(f"{where}: field 'answer_index' ({row['answer_index']}) disagrees with answer {letter!r}")
    own_id = optional_text(row, "question_id", where)
    problem = choice_problem(
        text(row, "question", where),
        choices,
        letter,
        subject=optional_text(row, "category", where),
        extra=extra_json({"src": row.get("src")}),
    )
    return own_id, problem


def read_gpqa(source: GpqaSource, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Problem rows of GPQA (``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``), options shuffled."""

    def to_problem(row: Mapping[str, Any], where: str) -> Mapped:
        return gpqa_problem(row, where, source.shuffle_seed)

    return read_problems(source, source.kind, to_problem, storage_options=storage_options)


def gpqa_problem(row: Mapping[str, Any], where: str, shuffle_seed: int) -> Mapped:
    question = text(row, "Question", where)
    texts = [text(row, name, where) for name in GPQA_OPTIONS]
    own_id = optional_text(row, "Record ID", where)
    order = shuffled_order(len(texts), shuffle_seed, own_id or question)
    problem = choice_problem(
        question,
        [texts[i] for i in order],
        LETTERS[order.index(0)],
        subject=optional_text(row, "Subdomain", where),
        extra=extra_json({"domain": row.get("High-level domain"), "record_id": own_id}),
    )
    return own_id, problem


def shuffled_order(size: int, seed: int, key: str) -> list[int]:
    """A permutation of ``range(size)`` that depends only on ``seed`` and the problem's ``key``."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    order = list(range(size))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order
