"""What verifiers are worth: how well each one's score tells correct samples from wrong ones, on problems with a gold.

Per verifier: AUROC of its score against ``correct``; the accuracy of best-of-n selection by its score,
beside majority vote and the first sample (the baselines every verifier must beat); and how often it
picks a correct sample when the problem has one. Only samples with a decided verdict count, and only
problems whose gold is not ``none``; a sample the verifier gave no score is never picked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (the chance a correct sample outscores a wrong one, ties half); None without both."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):  # average ranks over ties
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    positive_ranks = sum(rank for rank, label in zip(ranks, labels, strict=True) if label)
    return (positive_ranks - positives * (positives + 1) / 2) / (positives * negatives)


def worth_table(problems: pa.Table, verdicts: pa.Table, scores: pa.Table) -> list[dict[str, Any]]:
    """One row per verifier (``verifier``, ``kind``, ``problems``, ``auroc``, ``best_of_n``, ``majority_vote``,
    ``first_sample``, ``picks_correct``): its AUROC, best-of-n, majority, first-sample and pick rates.

    ``problems`` needs ``problem_id`` and ``answer_trust``, ``verdicts`` ``problem_id``, ``sample_idx``,
    ``extracted`` and ``correct``, ``scores`` the SCORE fields ``problem_id``, ``sample_idx``, ``verifier``,
    ``kind`` and ``score``.
    """
    gold = {r["problem_id"] for r in problems.select(["problem_id", "answer_trust"]).to_pylist()
            if r["answer_trust"] != "none"}  # fmt: skip
    samples: dict[str, list[dict[str, Any]]] = {}
    for row in verdicts.select(["problem_id", "sample_idx", "extracted", "correct"]).to_pylist():
        if row["problem_id"] in gold and row["correct"] is not None:
            samples.setdefault(row["problem_id"], []).append(row)
    for rows in samples.values():
        rows.sort(key=lambda r: r["sample_idx"])
    majority = _rate([_majority_correct(rows) for rows in samples.values()])
    first = _rate([rows[0]["correct"] for rows in samples.values()])
    by_verifier: dict[tuple[str, str], dict[tuple[str, int], float]] = {}
    for row in scores.select(["problem_id", "sample_idx", "verifier", "kind", "score"]).to_pylist():
        entry = by_verifier.setdefault((row["verifier"], row["kind"]), {})
        if row["score"] is not None:
            entry[(row["problem_id"], row["sample_idx"])] = row["score"]
    table = []
    for (name, kind), scored in by_verifier.items():
        pairs = [(scored[(pid, r["sample_idx"])], r["correct"]) for pid, rows in samples.items() for r in rows
                 if (pid, r["sample_idx"]) in scored]  # fmt: skip
        picks, possible = [], []
        for pid, rows in samples.items():
            candidates = [r for r in rows if (pid, r["sample_idx"]) in scored]
            if not candidates:
                continue
            best = max(candidates, key=lambda r: (scored[(pid, r["sample_idx"])], -r["sample_idx"]))
            picks.append(best["correct"])
            if any(r["correct"] for r in rows):
                possible.append(best["correct"])
        table.append(
            {
                "verifier": name,
                "kind": kind,
                "problems": len(picks),
                "auroc": auroc([s for s, _ in pairs], [c for _, c in pairs]),
                "best_of_n": _rate(picks),
                "majority_vote": majority,
                "first_sample": first,
                "picks_correct": _rate(possible),
            }
        )
    return table


def _majority_correct(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the most common extracted answer (the first seen on a tie) is a correct one."""
    votes = Counter(r["extracted"] for r in rows if r["extracted"] is not None)
    if not votes:
        return False
    answer = votes.most_common(1)[0][0]
    return any(r["correct"] for r in rows if r["extracted"] == answer)


def _rate(values: Sequence[bool]) -> float | None:
    return sum(bool(v) for v in values) / len(values) if values else None


def display_rows(table: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The table for people (the card, the artifact): rates as percentages, AUROC to three places, '–' if undefined."""
    rates = {"best_of_n": "best-of-n", "majority_vote": "majority vote", "first_sample": "first sample",
             "picks_correct": "picks a correct one when there is one"}  # fmt: skip
    return [
        {
            "verifier": row["verifier"],
            "kind": row["kind"],
            "problems": str(row["problems"]),
            "AUROC": _fmt(row["auroc"], "{:.3f}"),
            **{label: _fmt(row[key], "{:.1%}") for key, label in rates.items()},
        }
        for row in table
    ]


def _fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)
