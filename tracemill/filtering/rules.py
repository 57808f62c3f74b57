"""The filters: each returns ``None`` (keep) or the reason a row is rejected.

Row filters look at one sample; group filters look at the samples of one problem that passed
everything before them (the duplicate filters live in :mod:`tracemill.filtering.dedup`). A new row
filter is a :class:`RowFilter` registered here (:func:`register_row_filter`) with its toggle on
``FilterConfig``: the stage and the funnel pick it up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracemill.filtering.config import REASONS, LengthOutlierConfig
from tracemill.filtering.dedup import NgramIndex
from tracemill.judging.answers import boxed_answers
from tracemill.judging.grading import compare

# --- row filters: keep (None) or a reason ---------------------------------------------------------


def sampling_failed(row: Mapping[str, Any]) -> str | None:
    return "sampling_failed" if row["error"] is not None else None


def truncated(row: Mapping[str, Any]) -> str | None:
    return "truncated" if row["finish_reason"] == "length" else None


def no_reasoning(row: Mapping[str, Any]) -> str | None:
    reasoning = row["reasoning"]
    return "no_reasoning" if reasoning is None or not reasoning.strip() else None


def multiple_answers(row: Mapping[str, Any]) -> str | None:
    """More than one distinct ``\\boxed{}`` answer in the response (the reasoning may try several)."""
    found = list(dict.fromkeys("".join(a.split()) for a in boxed_answers(row["response"] or "")))
    if len(found) <= 1:
        return None
    same = all(compare(other, found[0], row["answer_type"]).correct is True for other in found[1:])
    return None if same else "multiple_answers"


def too_long(row: Mapping[str, Any], limit: float | None) -> str | None:
    tokens = row["completion_tokens"]
    return "too_long" if limit is not None and tokens is not None and tokens > limit else None


def label(row: Mapping[str, Any]) -> str | None:
    """Correct-only: a wrong sample is ``incorrect``, one the judge could not decide ``undecided``."""
    correct = row["correct"]
    return None if correct is True else "incorrect" if correct is False else "undecided"


def contaminated(question: str | None, index: NgramIndex) -> str | None:
    return "contaminated" if index.overlaps(question) else None


# --- registered row filters -----------------------------------------------------------------------


@dataclass(frozen=True)
class RowFilter:
    """A row filter on while the FilterConfig field ``toggle`` is set: it rejects a sample with ``reason`` when
    ``drops(row)`` is true. ``row`` holds problem_id, sample_idx, reasoning, response, finish_reason,
    completion_tokens, error, correct and answer_type."""

    reason: str
    toggle: str
    drops: Callable[[Mapping[str, Any]], bool]


# Registered row filters, in the order they run: after the built-in row filters, before the group filters.
ROW_FILTERS: dict[str, RowFilter] = {}


def register_row_filter(row_filter: RowFilter) -> RowFilter:
    if row_filter.reason in REASONS or row_filter.reason in ROW_FILTERS:
        raise ValueError(f"filter reason {row_filter.reason!r} is taken")
    ROW_FILTERS[row_filter.reason] = row_filter
    return row_filter


def reasons() -> tuple[str, ...]:
    """Every reason in filter order (a row gets the first that applies; the funnel's rows): the built-in row
    filters, the registered ones, then the group filters."""
    groups = REASONS.index("duplicate")
    return (*REASONS[:groups], *ROW_FILTERS, *REASONS[groups:])


# --- group filters: one problem's surviving samples, in sample order ------------------------------


def over_limit(rows: Sequence[dict[str, Any]], limit: int) -> list[str | None]:
    return [None if i < limit else "over_limit" for i in range(len(rows))]


# --- length bounds --------------------------------------------------------------------------------


def length_bound(tokens: np.ndarray, config: LengthOutlierConfig) -> float | None:
    """The token count above which a sample is an outlier; None without measurements."""
    if tokens.size == 0:
        return None
    if config.method == "percentile":
        return float(np.percentile(tokens, config.percentile))
    return float(tokens.mean() + config.k * tokens.std())


def measured_tokens(verdicts: pa.Table) -> np.ndarray:
    """completion_tokens of the samples that have them (failed requests excluded): the length statistics."""
    mask = pc.and_(pc.is_null(verdicts["error"]), pc.is_valid(verdicts["completion_tokens"]))
    return verdicts["completion_tokens"].filter(mask).to_numpy().astype(np.float64)


LENGTH_COLUMNS = ("completion_tokens", "error")  # all the global first pass reads
