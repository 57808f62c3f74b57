"""Rows a source leaves out or repairs, and why: real benchmark files hold a few rows that do not fit.

A row that does not fit (a null question, an answer outside its options, an answer letter that
disagrees with its index) raises :class:`RowError` with a short reason, and a repaired version
where a stated rule gives one. The source's ``on_bad_row`` decides: repair (or skip when no rule
repairs it), skip, or fail. Every row left out or repaired is counted per reason in a
:class:`RowReport`, which the problems manifest, the funnel and the dataset card show.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

LOG = logging.getLogger("tracemill.problems")

OnBadRow = Literal["repair", "skip", "fail"]
DUPLICATE = "duplicate question (de-duplication)"

T = TypeVar("T")


class RowError(ValueError):
    """One row that does not fit; ``reason`` is the short cause it is counted under, ``repaired`` its fixed fields."""

    def __init__(self, where: str, reason: str, detail: str = "", repaired: Any = None):
        super().__init__(f"{where}: {reason}{f': {detail}' if detail else ''}")
        self.where = where
        self.reason = reason
        self.repaired = repaired


@dataclass
class RowReport:
    """Rows skipped and rows repaired, per reason, with the first row of each reason as an example."""

    skipped: Counter[str] = field(default_factory=Counter)
    repaired: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(f"skipped: {reason}", where)

    def repair(self, reason: str, where: str) -> None:
        self.repaired[reason] += 1
        self.examples.setdefault(f"repaired: {reason}", where)

    def handle(self, error: RowError, on_bad_row: OnBadRow) -> Any:
        """The repaired fields of a bad row, or None when it is skipped; raises it when ``on_bad_row`` is fail."""
        if on_bad_row == "fail":
            raise error
        if on_bad_row == "repair" and error.repaired is not None:
            self.repair(error.reason, error.where)
            return error.repaired
        self.skip(error.reason, error.where)
        return None

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``rows`` entry: counts per reason, and the first row of each."""
        return {"skipped": dict(self.skipped), "repaired": dict(self.repaired), "examples": dict(self.examples)}

    def log(self, what: str) -> None:
        for action, counts in (("skipped", self.skipped), ("repaired", self.repaired)):
            for reason, count in sorted(counts.items()):
                example = self.examples[f"{action}: {reason}"]
                LOG.warning("%s: %s %d row(s): %s (first: %s)", what, action, count, reason, example)


def seeded_sample(rows: list[T], size: int | None, seed: int) -> list[T]:
    """A seeded random sample of ``size`` rows in their original order; all rows when ``size`` is None or larger."""
    if size is None or size >= len(rows):
        return rows
    picked = random.Random(seed).sample(range(len(rows)), size)
    return [rows[i] for i in sorted(picked)]
