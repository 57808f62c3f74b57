"""Majority relabel: where the teacher never agrees with the gold answer, the gold is often wrong.

For a problem none of whose samples is correct, the extracted answers vote: answers the grader
finds equivalent (``0.5``, ``1/2`` and ``\\frac12``) form one class, and the largest class becomes
the new gold only when it is a clear majority: at least ``min_votes`` votes, at least ``min_share``
of the parsed answers, and no tie. The original answer and the vote table are kept for audit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tracemill.judging.grading import compare


@dataclass(frozen=True)
class Decision:
    """The gold after the vote; ``votes`` is None where no vote was held (a sample was correct)."""

    answer: str
    relabeled: bool
    votes: dict[str, int] | None


def vote(answers: Sequence[str | None], answer_type: str, *, timeout_s: float = 5.0) -> list[tuple[str, int]]:
    """Equivalence classes of the parsed answers as (representative, votes), largest first.

    Identical strings are counted first; each distinct answer, most frequent first, then joins the
    first class whose representative the grader finds equivalent, or starts its own. The
    representative is the class's most frequent spelling (the earliest one on a tie). A comparison
    that times out counts as different, so a hard expression never merges classes.
    """
    reps: list[str] = []
    sizes: list[int] = []
    for answer, count in Counter(a for a in answers if a is not None and a.strip()).most_common():
        for index, rep in enumerate(reps):
            if compare(answer, rep, answer_type, timeout_s=timeout_s).correct is True:
                sizes[index] += count
                break
        else:
            reps.append(answer)
            sizes.append(count)
    return sorted(zip(reps, sizes, strict=True), key=lambda c: -c[1])  # stable: ties keep first-seen order


def decide(
    gold: str,
    answer_type: str,
    extracted: Sequence[str | None],
    correct: Sequence[bool | None],
    *,
    min_votes: int,
    min_share: float,
    timeout_s: float = 5.0,
) -> Decision:
    """Relabel one problem from its samples' extracted answers and verdicts, or keep its gold."""
    if any(c is True for c in correct):
        return Decision(gold, False, None)
    classes = vote(extracted, answer_type, timeout_s=timeout_s)
    votes = dict(classes)
    if not classes:
        return Decision(gold, False, votes)
    top, count = classes[0]
    parsed = sum(votes.values())
    tied = len(classes) > 1 and classes[1][1] == count
    if tied or count < min_votes or count / parsed < min_share:
        return Decision(gold, False, votes)
    if compare(top, gold, answer_type, timeout_s=timeout_s).correct is True:
        return Decision(gold, False, votes)  # the majority is the gold after all (its samples were undecided)
    return Decision(top, True, votes)
