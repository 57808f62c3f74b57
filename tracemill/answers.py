"""Answer extraction: the final answer a response commits to, as a string.

Only the text after the reasoning counts, and only explicit final markers give an answer: a
letter or number that the model merely discusses must never become its answer, since a false
extraction can turn a wrong trace correct. Markers, in priority order: a ``The answer is X``
line, the last ``\\boxed{X}``, ``<answer>X</answer>``, an ``Answer: X`` line, and for integer and
number answers the last number in the text.
"""

from __future__ import annotations

import re

from tracemill.records import ANSWER_TYPES

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
LETTERS = "ABCDEFGHIJ"  # up to ten options (MMLU-Pro)

_ANSWER_IS = re.compile(r"\bthe\s+(?:final\s+|correct\s+)?answer\s+is\b[\s:*_]*(?P<x>[^\n]*)", re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<answer>(?P<x>.*?)</answer>", re.IGNORECASE | re.DOTALL)
_ANSWER_LINE = re.compile(
    r"(?<![A-Za-z])(?:final\s+)?answer\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?(?P<x>[^\n]*)", re.IGNORECASE
)
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
# A number as written in an answer: sign, thousands separators, decimals, a simple fraction.
NUMBER = (
    r"(?<![\w.])[-−+]?(?:\\[dt]?frac\{\d+\}\{\d+\}|\\[dt]?frac\d\d"
    r"|(?:\d{1,3}(?:(?:,|\{,\})\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?![\d.]))?|\.\d+)"
)
_NUMBER = re.compile(NUMBER)
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_WRAPPERS = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{")
_LETTER = re.compile(
    r"^(?:(?:option|choice)\s+)?(?P<paren>[(\[])?\s*(?P<l>[A-Ja-j])\s*(?(paren)[)\]])(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_ENGLISH_A = re.compile(r"^\s+[a-z]")  # "A total of", "I think": an article or pronoun, not an option
_COMMAND = re.compile(r"\\[a-zA-Z]+")
_EXPRESSION = re.compile(r"[\d\s+\-*/^(){}\[\]!.,×·−]*")
_LETTER_BREAK = re.compile(r"^(?:$|[).:,;\]]|\s+(?:$|[\w(\[\"'-]))")


def final_text(response: str | None) -> str | None:
    """The part of a response that can hold the answer: after the last ``</think>``.

    A text that opens ``<think>`` and never closes it was cut off mid-reasoning: it has no answer.
    """
    if response is None:
        return None
    end = response.rfind(THINK_CLOSE)
    if end >= 0:
        return response[end + len(THINK_CLOSE) :]
    if THINK_OPEN in response:
        return None
    return response


def brace_group(text: str, start: int) -> tuple[str, int] | None:
    """The content of the ``{...}`` group whose ``{`` is at ``start``, and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        char = text[i]
        if char == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif char == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def boxed_answers(text: str) -> list[str]:
    """Every brace-matched ``\\boxed{...}`` / ``\\fbox{...}`` content, in order (unclosed ones skipped)."""
    found = []
    pos = 0
    while match := _BOX.search(text, pos):
        group = brace_group(text, match.end() - 1)
        if group is None:
            pos = match.end()
            continue
        found.append(group[0].strip())
        pos = group[1]
    return found


def unwrap(text: str, pattern: re.Pattern[str] = _WRAPPERS) -> str:
    """Replace ``\\text{X}`` (and the like) by ``X``, brace-matched, nested ones too."""
    while match := pattern.search(text):
        group = brace_group(text, match.end() - 1)
        if group is None:
            return text[: match.start()] + text[match.end() :]
        text = text[: match.start()] + group[0] + text[group[1] :]
    return text


def clean(text: str) -> str:
    """Strip what surrounds an answer: markdown emphasis, math delimiters, a closing period."""
    text = text.strip()
    boxed = boxed_answers(text)
    if boxed:
        return boxed[-1]
    for _ in range(3):
        before = text
        text = text.strip().strip("*").strip()
        if text.startswith("__") and text.endswith("__"):
            text = text[2:-2]
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
                text = text[len(left) : len(text) - len(right)]
        text = text.strip().rstrip(".").rstrip()
        if text == before:
            break
    return text


def _marker_content(text: str, match: re.Match[str]) -> str:
    """What follows a marker: the rest of its line, or the next non-empty line if that is empty."""
    content = match.group("x")
    if clean(content):
        return content
    rest = text[match.end() :].lstrip("\n")
    return rest.split("\n", 1)[0] if rest.strip() else ""


def _first_math_span(text: str) -> str:
    """In ``$x = 5$ because ...`` the answer is the math, not the sentence after it."""
    match = _MATH_SPAN.search(text)
    if match and match.start() <= 2:
        return next(g for g in match.groups() if g is not None)
    return text


def choice_letter(answer: str, num_choices: int | None = None) -> str | None:
    """The option letter an answer states (``C``, ``(C)``, ``\\text{C}``, ``C) 42``), or None."""
    text = clean(unwrap(answer)).strip().strip("*").strip()
    match = _LETTER.match(text)
    if match is None:
        return None
    letter, rest = match.group("l"), match.group("rest")
    if match.group("paren") is None:
        if letter.islower() and rest.strip():
            return None  # "a prime number"
        if not _LETTER_BREAK.match(rest) or (letter in "AI" and _ENGLISH_A.match(rest)):
            return None  # "E = mc^2", "A total of 5"
    letter = letter.upper()
    count = min(num_choices, len(LETTERS)) if num_choices else len(LETTERS)
    return letter if LETTERS.index(letter) < count else None


def _numbers(text: str) -> list[str]:
    return [m.group(0) for m in _NUMBER.finditer(unwrap(text))]


def _as_type(content: str, answer_type: str, num_choices: int | None) -> str | None:
    """The answer a marker's content gives for this answer type, or None if it gives none."""
    text = clean(content)
    if answer_type == "choice":
        return choice_letter(text, num_choices)
    if answer_type in ("math", "text"):
        text = clean(_first_math_span(text)) if answer_type == "math" else text
        return text or None
    whole = clean(_first_math_span(text))
    if "=" in whole:  # "x = 5", "3 \\times 4 = 12"
        whole = whole.rsplit("=", 1)[1].strip()
    if parse_number_text(whole):
        return whole
    numbers = _numbers(whole)
    if len(numbers) > 1 and _EXPRESSION.fullmatch(_COMMAND.sub("", whole)):
        return whole  # "2^{10}", "\\frac{3}{4} \\cdot 8": the grader evaluates it
    if numbers:
        return numbers[0].strip()
    return whole if number_word(whole) is not None else None


def extract(response: str | None, answer_type: str, num_choices: int | None = None) -> str | None:
    """The answer a response commits to, or None when it has none (truncated, no final marker)."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}; known: {list(ANSWER_TYPES)}")
    text = final_text(response)
    if not text or not text.strip():
        return None
    tiers: list[list[str]] = [
        [_marker_content(text, m) for m in _ANSWER_IS.finditer(text)],
        boxed_answers(text),
        [m.group("x") for m in _ANSWER_TAG.finditer(text)],
        [_marker_content(text, m) for m in _ANSWER_LINE.finditer(text)],
    ]
    for contents in tiers:
        for content in reversed(contents):
            answer = _as_type(content, answer_type, num_choices)
            if answer is not None:
                return answer
    if answer_type in ("integer", "number"):
        numbers = _numbers(text)
        if numbers:
            return numbers[-1].strip()
    return None


# --- normal forms, shared by the grader's fast paths -------------------------------------------

_SPACING = re.compile(r"\\[,;:! ]|\\q?quad|\\displaystyle|\\left|\\right|~")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree")
_FRAC = re.compile(r"\\[dt]frac")
_CURRENCY = re.compile(r"\\\$|\$|€|£|¥|\bUSD\b|\\euro")
_PERCENT = re.compile(r"\s*(?:\\%|%|\\percent|\s+percent)\s*$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


def normalize(answer: str) -> str:
    """A canonical string for exact comparison: no spacing commands, delimiters, wrappers or degrees."""
    text = clean(answer)
    text = unwrap(text)
    text = _SPACING.sub(" ", text)
    text = _FRAC.sub(r"\\frac", text)
    text = _DEGREES.sub("", text)
    text = text.replace("{,}", ",").replace("−", "-")
    text = re.sub(r"\s+", "", text)
    return text.rstrip(".")


def normalize_text(answer: str) -> str:
    """A canonical form of a free-text answer: case, punctuation, articles and spacing aside."""
    text = unwrap(clean(answer)).lower()
    text = re.sub(r"[^\w\s.-]", " ", text)
    text = re.sub(r"\b(?:a|an|the)\b", " ", text)
    return " ".join(text.split()).strip(".")


def number_word(text: str) -> int | None:
    """``five`` -> 5 for small counts written out (CLEVR-style answers)."""
    word = clean(text).strip().lower()
    return _WORDS.index(word) if word in _WORDS else None


def parse_number_text(answer: str) -> tuple[str, bool] | None:
    """The bare number an answer is, as text without separators, and whether it was a percent.

    ``$1,000.50`` -> ``1000.50``; ``25\\%`` -> (``25``, True); ``\\frac{3}{4}`` -> ``3/4``.
    Anything else (an expression, several numbers) is None.
    """
    text = normalize(answer)
    text = _CURRENCY.sub("", text)
    percent = bool(_PERCENT.search(text))
    text = _PERCENT.sub("", text).strip()
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    text = text.lstrip("+")
    if m := re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}|(-?)\\frac(\d)(\d)", text):
        sign, num, den = (m.group(1), m.group(2), m.group(3)) if m.group(2) else m.group(4, 5, 6)
        text = f"{sign}{num}/{den}"
    if re.fullmatch(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?", text):
        return text, percent
    return None
