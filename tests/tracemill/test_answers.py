"""Answer extraction: the final text, boxed answers, markers in priority order, choice letters."""

from __future__ import annotations

import pytest

from tracemill.judging.answers import (
    boxed_answers,
    choice_letter,
    extract,
    final_text,
    normalize,
    normalize_unicode,
    parse_number_text,
)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<think>a</think>b", "b"),
        ("<think>a</think>b</think>c", "c"),
        ("<think>never closed \\boxed{5}", None),
        ("plain text", "plain text"),
        ("", ""),
        (None, None),
        ("reasoning without an opening tag</think>\\boxed{2}", "\\boxed{2}"),
    ],
)
def test_final_text(response, expected) -> None:
    assert final_text(response) == expected


def test_boxed_answers_are_brace_matched_and_in_order() -> None:
    text = "\\boxed{\\frac{1}{2}} then \\fbox{3} and \\boxed{\\{1,2\\}} and \\boxed{unclosed"
    assert boxed_answers(text) == ["\\frac{1}{2}", "3", "\\{1,2\\}"]


def test_boxed_answers_lets_filters_spot_several_distinct_answers() -> None:
    assert len(set(boxed_answers("\\boxed{3} or maybe \\boxed{5}"))) == 2
    assert boxed_answers("no box here") == []


@pytest.mark.parametrize(
    ("response", "answer_type", "expected"),
    [
        ("**The answer is: **\\frac{1}{2}", "math", "\\frac{1}{2}"),
        ("The answer is 7.\n\\boxed{8}", "integer", "7"),
        ("\\boxed{8}\n<answer>9</answer>\nAnswer: 10", "integer", "8"),
        ("<answer>9</answer>\nAnswer: 10", "integer", "9"),
        ("Final answer: *10*", "integer", "10"),
        ("Final Answer: $\\sqrt{2}$.", "math", "\\sqrt{2}"),
        ("We got 3, then 4, then 12 apples", "integer", "12"),
        ("We got 3, then 4, then 12 apples", "math", None),
        ("It costs \\$1,200.50 in total", "number", "1,200.50"),
        ("<think>The answer is 5", "integer", None),
        ("The answer is $\\boxed{(1, 2]}$", "math", "(1, 2]"),
        ("Answer: \\text{Monday}", "text", "\\text{Monday}"),
    ],
)
def test_extract_priority_and_types(response, answer_type, expected) -> None:
    assert extract(response, answer_type) == expected


@pytest.mark.parametrize(
    ("answer", "num_choices", "expected"),
    [
        ("C", 4, "C"),
        ("(c)", 4, "C"),
        ("c", 4, "C"),
        ("\\text{(D)}", 4, "D"),
        ("**B**", 4, "B"),
        ("B. 42 joules", 4, "B"),
        ("option A", 4, "A"),
        ("E", 4, None),
        ("J", None, "J"),
        ("K", None, "K"),
        ("K", 11, "K"),
        ("(k)", 12, "K"),
        ("K", 10, None),
        ("Z", 26, "Z"),
        ("\\Delta E", 5, None),
        ("E = mc^2", 5, None),
        ("A total of 5", 4, None),
        ("a prime", 4, None),
        ("C_2", 4, None),
        ("42", 4, None),
    ],
)
def test_choice_letter(answer, num_choices, expected) -> None:
    assert choice_letter(answer, num_choices) == expected


def test_extract_rejects_unknown_types() -> None:
    with pytest.raises(ValueError, match="answer_type"):
        extract("\\boxed{1}", "float")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("$\\left( 1, 2 \\right]$", "(1,2]"),
        ("30^{\\circ}", "30"),
        ("\\text{Evelyn}", "Evelyn"),
        ("10{,}000", "10,000"),
    ],
)
def test_normalize(a, b) -> None:
    assert normalize(a) == normalize(b)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("1,000", ("1000", False)),
        ("\\$1,234.50", ("1234.50", False)),
        ("25\\%", ("25", True)),
        ("-\\frac{3}{4}", ("-3/4", False)),
        ("\\frac12", ("1/2", False)),
        ("1,2", None),
        ("2^{10}", None),
        ("x", None),
    ],
)
def test_parse_number_text(answer, expected) -> None:
    assert parse_number_text(answer) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\frac{3}{2}√{3}", "\\frac{3}{2}\\sqrt{3}"),
        ("√3 + √(x+1)", "\\sqrt{3} + \\sqrt{x+1}"),
        ("2π", "2\\pi "),
        ("x ≤ 3", "x \\le  3"),
        ("6 × 7 ÷ 2", "6 \\times  7 \\div  2"),
        ("½", "\\frac{1}{2}"),
    ],
)
def test_unicode_math_becomes_latex(text, expected) -> None:
    assert normalize_unicode(text) == expected


@pytest.mark.parametrize(
    ("response", "answer_type", "expected"),
    [
        ("Final Answer: The final answer is 7. I hope it is correct.", "math", "7"),
        ("The answer is: <answer>27</answer>", "math", "27"),
        ("Answer $ 9 $", "math", "9"),
        ("So the total area is $6\\sqrt{2}$.", "math", "6\\sqrt{2}"),
        ("If $x = 3$, the equation balances.", "math", None),  # a discussed value
        ("It is either $2$ or $3$.", "math", None),  # a hedge
        ("The integers are \\boxed{-2} and \\boxed{1}.", "math", "-2, 1"),
        ("\\boxed{3} or \\boxed{5}", "integer", "3 \\text{ or } 5"),
        ("\\boxed{\\sqrt{5}}", "integer", "\\sqrt{5}"),  # an expression, never its first number
        ("The answer is 3 or 5.", "integer", "3 or 5"),  # kept whole: the grader leaves it undecided
        ("So the probability is 2/3.", "number", "2/3"),
        ("It could be 3 or 5", "integer", None),  # the last number of a hedged sentence
        ("The answer is 12 apples.", "integer", "12"),
        ("The answer is half of 12.", "integer", "half of 12"),
        ("The answer is (B) or (C).", "choice", "(B) or (C)"),
        ("So P = 2/3. <|im_start|>user\nNext question: the answer is 5", "number", "2/3"),
    ],
)
def test_extract_reads_one_answer_whole(response, answer_type, expected) -> None:
    assert extract(response, answer_type) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("32,349", ("32349", False)),
        ("32,\\! 349", ("32349", False)),
        ("1 000", ("1000", False)),
        ("4 4/9", ("40/9", False)),
        ("28 percent", ("28", True)),
        ("\\frac1{2}", ("1/2", False)),
        ("32, 349", None),
        ("1 2", None),
        ("11 7/6", None),
    ],
)
def test_parse_number_text_tells_numbers_from_lists(answer, expected) -> None:
    assert parse_number_text(answer) == expected
