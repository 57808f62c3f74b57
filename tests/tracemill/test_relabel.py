"""Majority relabel with the real grader: equivalent answers vote together, thresholds hold, audit is kept."""

from __future__ import annotations

from tracemill.judging.relabel import Decision, decide, vote

WRONG = [False] * 8


def test_equivalent_answers_vote_together():
    classes = vote(["0.5", "\\frac12", "1/2", "0.25", None, "\\frac{1}{2}", ""], "math")
    assert classes == [("0.5", 4), ("0.25", 1)]  # the earliest spelling represents a class of equal counts


def test_the_most_common_spelling_represents_its_class():
    assert vote(["1/2", "0.5", "0.5", "7"], "math") == [("0.5", 3), ("7", 1)]
    assert vote(["1,000", "1000", "1000", "999"], "integer") == [("1000", 3), ("999", 1)]


def test_choice_letters_vote_by_letter():
    assert vote(["B", "C", "B", "B"], "choice") == [("B", 3), ("C", 1)]


def test_a_clear_majority_replaces_the_gold_and_keeps_the_audit():
    decision = decide("3", "integer", ["7", "7", "2", "7", None], WRONG[:5], min_votes=3, min_share=0.5)
    assert decision == Decision("7", True, {"7": 3, "2": 1})


def test_equivalent_spellings_reach_the_threshold_together():
    extracted = ["\\frac{3}{2}", "1.5", "3/2", "2"]
    decision = decide("2.5", "math", extracted, WRONG[:4], min_votes=3, min_share=0.5)
    assert decision == Decision("\\frac{3}{2}", True, {"\\frac{3}{2}": 3, "2": 1})


def test_too_few_votes_change_nothing():
    decision = decide("3", "integer", ["7", "7", "2"], WRONG[:3], min_votes=3, min_share=0.5)
    assert decision == Decision("3", False, {"7": 2, "2": 1})


def test_too_small_a_share_changes_nothing():
    extracted = ["7", "7", "7", "1", "2", "4", "5"]
    decision = decide("3", "integer", extracted, WRONG[:7], min_votes=3, min_share=0.5)
    assert decision == Decision("3", False, {"7": 3, "1": 1, "2": 1, "4": 1, "5": 1})
    assert decide("3", "integer", extracted, WRONG[:7], min_votes=3, min_share=0.4).relabeled  # 3/7 ≥ 0.4


def test_the_share_counts_parsed_answers_only():
    extracted = ["7", "7", "7", None, None, None, None]
    assert decide("3", "integer", extracted, WRONG[:7], min_votes=3, min_share=0.9) == Decision("7", True, {"7": 3})


def test_a_tie_changes_nothing():
    extracted = ["7", "8", "7", "8", "7", "8"]
    decision = decide("3", "integer", extracted, WRONG[:6], min_votes=3, min_share=0.5)
    assert decision == Decision("3", False, {"7": 3, "8": 3})


def test_a_problem_with_a_correct_sample_is_not_put_to_a_vote():
    decision = decide("3", "integer", ["7", "7", "7", "3"], [False, False, False, True], min_votes=1, min_share=0.1)
    assert decision == Decision("3", False, None)


def test_a_majority_equal_to_the_gold_keeps_the_gold():
    # The samples were undecided (say a timeout), but the majority is the gold in another spelling.
    decision = decide("\\frac{1}{2}", "math", ["0.5", "0.5", "0.5"], [None] * 3, min_votes=3, min_share=0.5)
    assert decision == Decision("\\frac{1}{2}", False, {"0.5": 3})


def test_no_parsed_answer_changes_nothing():
    assert decide("3", "integer", [None, None], [None, None], min_votes=1, min_share=0.1) == Decision("3", False, {})
