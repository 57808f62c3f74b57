"""The grader against cases derived from other projects' grader suites, and our adversarial cases.

Zero false positives on everything; agreement with the peers' non-debatable labels of at least
97 % (for a peer's False, any verdict but True agrees: undecided is never credited).
"""

from __future__ import annotations

from collections import Counter

import pytest

from tracemill.judging.grading import Verdict, grade_many

from .peer_cases import ADVERSARIAL, PEER_CASES, SOURCES

MIN_AGREEMENT = 0.97


@pytest.fixture(scope="module")
def peer_verdicts() -> list[Verdict]:
    return grade_many([(case.response, case.gold, case.answer_type, None) for case in PEER_CASES])


def _agrees(verdict: Verdict, label: bool) -> bool:
    return verdict.correct is True if label else verdict.correct is not True


def test_the_peer_set_is_large_unique_and_cited() -> None:
    assert len(PEER_CASES) >= 250
    assert len({case.id for case in PEER_CASES}) == len(PEER_CASES)
    assert {case.source for case in PEER_CASES} == set(SOURCES)
    assert all(case.why for case in PEER_CASES if case.ours is not None)
    assert len(ADVERSARIAL) >= 60
    assert {case.answer_type for case in ADVERSARIAL} == {"integer", "number", "math", "choice", "text"}


def test_no_false_positive_on_the_peer_set(peer_verdicts) -> None:
    wrong = [
        (case.id, case.gold, verdict)
        for case, verdict in zip(PEER_CASES, peer_verdicts, strict=True)
        if verdict.correct is True and not case.expected
    ]
    assert wrong == []


def test_agreement_with_the_peers(peer_verdicts) -> None:
    plain = [(case, verdict) for case, verdict in zip(PEER_CASES, peer_verdicts, strict=True) if case.ours is None]
    disagreements = [
        (case.id, case.gold, case.label, verdict) for case, verdict in plain if not _agrees(verdict, case.label)
    ]
    for disagreement in disagreements:
        print("disagrees:", *disagreement)
    agreement = 1 - len(disagreements) / len(plain)
    print(f"agreement with the peers: {agreement:.3f} on {len(plain)} cases; by source:",
          dict(Counter(case.source for case, _ in plain)))  # fmt: skip
    assert agreement >= MIN_AGREEMENT


def test_debatable_cases_get_our_label(peer_verdicts) -> None:
    debatable = [(case, v) for case, v in zip(PEER_CASES, peer_verdicts, strict=True) if case.ours is not None]
    assert [(case.id, v) for case, v in debatable if not _agrees(v, case.ours)] == []


def test_no_adversarial_case_is_ever_correct() -> None:
    verdicts = grade_many([(case.response, case.gold, case.answer_type, case.num_choices) for case in ADVERSARIAL])
    assert [(case.id, v) for case, v in zip(ADVERSARIAL, verdicts, strict=True) if v.correct is True] == []
