"""The grading cascade against the labelled set, the false-positive guards, explosions, threads."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tracemill.judging.grade_pool import SymbolicPool
from tracemill.judging.grading import Verdict, compare, compare_many, explodes, grade, grade_many

from .grading_cases import CASES, r1

DECIDED_BY = {"exact", "numeric", "symbolic", "choice", "ambiguous", "unparsed", "timeout"}


@pytest.fixture(scope="module")
def graded() -> dict[str, Verdict]:
    """The whole labelled set in one batch, as the judging stage grades a shard."""
    items = [(case.response, case.gold, case.answer_type, case.num_choices) for case in CASES]
    return {case.id: verdict for case, verdict in zip(CASES, grade_many(items), strict=True)}


def test_the_labelled_set_is_large_and_unique() -> None:
    assert len(CASES) >= 150
    assert len({case.id for case in CASES}) == len(CASES)
    assert {case.label for case in CASES} == {True, False}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_grader_agrees_with_label(case, graded) -> None:
    verdict = graded[case.id]
    assert verdict.correct is case.label, verdict
    assert verdict.decided_by in DECIDED_BY
    if case.extracted != "<any>":
        assert verdict.extracted == case.extracted


@pytest.mark.parametrize("case", CASES[::10], ids=[case.id for case in CASES[::10]])
def test_grade_one_matches_the_batch(case, graded) -> None:
    assert grade(case.response, case.gold, case.answer_type, num_choices=case.num_choices) == graded[case.id]


@pytest.mark.parametrize(
    ("response", "gold", "answer_type", "decided_by"),
    [
        (r1("\\boxed{42}"), "42", "integer", "exact"),
        (r1("\\boxed{42.0}"), "42", "integer", "numeric"),
        (r1("\\boxed{\\sqrt{8}}"), "2\\sqrt{2}", "math", "numeric"),  # k\\sqrt{m}: compared exactly
        (r1("\\boxed{\\frac{\\sqrt{8}}{2}}"), "\\sqrt{2}", "math", "symbolic"),
        (r1("\\boxed{3 \\text{ or } 5}"), "3", "integer", "ambiguous"),
        (r1("Answer: C"), "C", "choice", "choice"),
        (r1("no marker at all"), "x+1", "math", "unparsed"),
        ("<think>cut off", "5", "integer", "unparsed"),
    ],
)
def test_decided_by_names_the_tier(response, gold, answer_type, decided_by) -> None:
    assert grade(response, gold, answer_type).decided_by == decided_by


def test_unparsable_math_is_undecided_not_false() -> None:
    verdict = compare("\\frac{", "\\frac{1}{2}", "math")
    assert verdict.correct is None
    assert verdict.decided_by == "unparsed"


def test_compare_is_used_for_equivalence_classes() -> None:
    verdicts = compare_many([("0.5", "\\frac12", "math"), ("\\frac{2}{4}", "0.5", "math"), ("0.5", "0.25", "math")])
    assert [v.correct for v in verdicts] == [True, True, False]
    assert verdicts[0].extracted == "0.5"


def test_unknown_answer_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="answer_type"):
        grade("\\boxed{1}", "1", "float")


EXPLOSIONS = [
    ("9^{9^{9^{9}}}", "3"),
    ("3", "9^{9^{9^{9}}}"),
    ("10^{10^{10}}", "10^{10^{10}}+1"),
    ("2^{2^{2^{2^{2^{2}}}}}", "4"),
    ("(10^{10})^{10^{10}}", "1"),
    ("100000!", "5"),
    ("+".join(["x"] * 12000), "12000x"),
    ("(" * 3000 + "1" + ")" * 3000, "1"),
    ("\\frac{1}{" * 500 + "2" + "}" * 500, "2"),
    ("1" * 30000, "1" * 30000 + "1"),
    ("(10^{9})!", "1"),
    ("(x+1)^{2000}", "(x-1)^{2000}"),  # passes the screen: the worker's time limit ends it
    ("\\sqrt{" * 400 + "2" + "}" * 400, "2"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("pred", "gold"), EXPLOSIONS, ids=[f"explosion-{i}" for i in range(len(EXPLOSIONS))])
def test_explosions_are_never_true(pred, gold) -> None:
    verdict = compare(pred, gold, "math", timeout_s=2.0)
    assert verdict.correct is not True
    if verdict.correct is None:
        assert verdict.decided_by in ("timeout", "unparsed")


@pytest.mark.timeout(60)
def test_explosions_in_a_response_are_never_true() -> None:
    responses = [(r1(f"\\boxed{{{pred}}}"), gold, "math", None) for pred, gold in EXPLOSIONS]
    assert all(v.correct is not True for v in grade_many(responses, timeout_s=2.0))


def test_explosion_screen_lets_ordinary_powers_through() -> None:
    assert not explodes("2^{100}")
    assert not explodes("2^{2^{10}}")
    assert not explodes("\\frac{1}{2006!}")
    assert explodes("10^{10^{10}}")
    assert explodes("9^{9^{9^{9}}}")
    assert explodes("x" * 5000)


@pytest.mark.timeout(60)
def test_a_hung_worker_is_killed_and_replaced() -> None:
    """A worker stuck where its own alarm cannot reach (C code, frozen) is killed at the hard limit."""
    pool = SymbolicPool(1)
    try:
        assert pool.run([("1", "1")], timeout_s=5.0) == ["true"]  # start the worker
        (worker,) = pool._idle
        os.kill(worker.proc.pid, signal.SIGSTOP)
        start = time.monotonic()
        assert pool.run([("\\sqrt{8}", "2\\sqrt{2}")], timeout_s=1.0) == ["timeout"]
        assert time.monotonic() - start < 30  # a hang guard, not a timing test
        assert worker.proc.poll() is not None
        assert pool.run([("\\sqrt{8}", "2\\sqrt{2}"), ("1/2^{99}", "1/2^{98}")], timeout_s=5.0) == ["true", "false"]
        assert pool._idle[0] is not worker
    finally:
        pool.close()


@pytest.mark.timeout(60)
def test_an_item_over_its_time_is_a_timeout_and_the_worker_lives_on() -> None:
    pool = SymbolicPool(1)
    try:
        assert pool.run([("7^{7^{10}}", "3"), ("x+x", "2x")], timeout_s=1.0) == ["timeout", "true"]
    finally:
        pool.close()


@pytest.mark.timeout(120)
def test_grading_from_a_thread_pool() -> None:
    cases = [case for case in CASES if case.answer_type == "math"][:40]
    expected = [case.label for case in cases]

    def one(case):
        return grade(case.response, case.gold, case.answer_type, num_choices=case.num_choices).correct

    with ThreadPoolExecutor(max_workers=8) as executor:
        assert list(executor.map(one, cases)) == expected
