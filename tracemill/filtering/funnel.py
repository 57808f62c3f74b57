"""The funnel: how many problems and samples each source had, and where the samples went.

Counts are taken per shard from the relabel, verdict, kept and rejected tables (a few columns each)
and added up. Every sample is kept or rejected with exactly one reason, so at every filter
``rows_in == rows_out + dropped`` and the last ``rows_out`` is the number kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tracemill.filtering.rules import reasons

# Pass rate (correct / samples that did not fail) per problem, in these buckets.
PASS_BINS = ("0%", "1-25%", "26-50%", "51-75%", "76-99%", "100%", "no samples")
ALL = "all"

RELABEL_COLUMNS = ("problem_id", "source", "relabeled", "answer_trust")
VERDICT_COLUMNS = ("problem_id", "error", "extracted", "correct")
KEPT_COLUMNS = ("source",)
REJECTED_COLUMNS = ("source", "reason")


@dataclass
class Counts:
    """One source's numbers (or all sources')."""

    problems: int = 0
    relabeled: int = 0
    verified: int = 0  # problems whose gold is verified, so never relabelled
    samples: int = 0
    failed: int = 0
    parsed: int = 0  # an answer was extracted
    correct: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    kept: int = 0
    pass_rates: Counter[str] = field(default_factory=Counter)

    def add(self, other: Counts) -> Counts:
        for name in ("problems", "relabeled", "verified", "samples", "failed", "parsed", "correct", "kept"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.dropped.update(other.dropped)
        self.pass_rates.update(other.pass_rates)
        return self

    def stages(self) -> list[dict[str, Any]]:
        """One row per filter, in filter order: rows in, dropped, rows out."""
        rows, remaining = [], self.samples
        for reason in reasons():
            dropped = self.dropped.get(reason, 0)
            rows.append({"stage": reason, "rows_in": remaining, "dropped": dropped, "rows_out": remaining - dropped})
            remaining -= dropped
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "dropped": dict(self.dropped), "pass_rates": dict(self.pass_rates)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counts:
        return cls(
            **{k: v for k, v in data.items() if k not in ("dropped", "pass_rates")},
            dropped=Counter(data["dropped"]),
            pass_rates=Counter(data["pass_rates"]),
        )


Funnel = dict[str, Counts]


def pass_bin(correct: int, samples: int) -> str:
    if samples == 0:
        return PASS_BINS[-1]
    if correct == samples:
        return PASS_BINS[5]
    if correct == 0:
        return PASS_BINS[0]
    return PASS_BINS[min(4, 1 + int((correct / samples - 1e-12) * 4))]


def shard_counts(relabel: pa.Table, verdicts: pa.Table, kept: pa.Table, rejected: pa.Table) -> Funnel:
    """Per-source counts of one shard (only the *_COLUMNS of each table are read)."""
    funnel: Funnel = {}
    source_of = {}
    for pid, source, relabeled, trust in zip(*(relabel[c].to_pylist() for c in RELABEL_COLUMNS), strict=True):
        counts = funnel.setdefault(source, Counts())
        counts.problems += 1
        counts.relabeled += bool(relabeled)
        counts.verified += trust == "verified"
        source_of[pid] = source
    per_problem: dict[str, list[int]] = {pid: [0, 0] for pid in source_of}  # [correct, samples]
    for pid, error, extracted, correct in zip(*(verdicts[c].to_pylist() for c in VERDICT_COLUMNS), strict=True):
        counts = funnel[source_of[pid]]
        counts.samples += 1
        if error is not None:
            counts.failed += 1
            continue
        counts.parsed += extracted is not None
        counts.correct += correct is True
        per_problem[pid][0] += correct is True
        per_problem[pid][1] += 1
    for pid, (correct, samples) in per_problem.items():
        funnel[source_of[pid]].pass_rates[pass_bin(correct, samples)] += 1
    for source in kept["source"].to_pylist():
        funnel[source].kept += 1
    for source, reason in zip(rejected["source"].to_pylist(), rejected["reason"].to_pylist(), strict=True):
        funnel[source].dropped[reason] += 1
    return funnel


def merge(funnels: Iterable[Mapping[str, Counts]]) -> Funnel:
    """Add shard funnels up, with an ``all`` entry over every source."""
    merged: Funnel = {}
    for funnel in funnels:
        for source, counts in funnel.items():
            if source != ALL:
                merged.setdefault(source, Counts()).add(counts)
    total = Counts()
    for counts in merged.values():
        total.add(counts)
    return {**dict(sorted(merged.items())), ALL: total}


def stage_table(funnel: Funnel) -> list[dict[str, Any]]:
    """The funnel as rows (source, stage, rows_in, dropped, rows_out), ending in each source's kept row."""
    rows = []
    for source, counts in funnel.items():
        rows += [{"source": source, **row} for row in counts.stages()]
        rows.append({"source": source, "stage": "kept", "rows_in": counts.kept, "dropped": 0, "rows_out": counts.kept})
    return rows


def summary_table(funnel: Funnel) -> list[dict[str, Any]]:
    """Per source: problems, verified golds, relabelled golds, samples, failed, parsed, correct, kept."""
    return [
        {
            "source": source,
            "problems": c.problems,
            "verified_golds": c.verified,
            "relabeled": c.relabeled,
            "samples": c.samples,
            "failed": c.failed,
            "parsed": c.parsed,
            "correct": c.correct,
            "kept": c.kept,
        }
        for source, c in funnel.items()
    ]


def source_rows_table(report: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The rows the source skipped or repaired (the problems manifest's ``rows``), one line per reason."""
    if not report:
        return []
    examples = report.get("examples", {})
    return [
        {"action": action, "reason": reason, "rows": count, "first": examples.get(f"{action}: {reason}", "")}
        for action in ("skipped", "repaired")
        for reason, count in sorted(report.get(action, {}).items())
    ]


def to_json(funnel: Funnel) -> dict[str, Any]:
    return {source: counts.to_dict() for source, counts in funnel.items()}


def from_json(data: Mapping[str, Any]) -> Funnel:
    return {source: Counts.from_dict(counts) for source, counts in data.items()}
