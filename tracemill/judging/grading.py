"""The grading cascade: is an extracted answer the gold answer?

Cheap, exact tiers decide first (normalised strings, numbers, option letters, yes/no); only math
answers they cannot decide go to math-verify, in worker processes with a hard wall-clock limit
(:mod:`tracemill.judging.grade_pool`). A wrong True puts a wrong trace into someone's SFT data, so every
tier errs towards False or undecided (``correct=None``): numbers compare exactly, symbolic
matches are re-checked numerically, and inputs that would make the symbolic engine explode are
not handed to it at all.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from tracemill.judging.answers import (
    brace_group,
    choice_letter,
    extract,
    hedged,
    normalize,
    normalize_text,
    normalize_unicode,
    number_word,
    parse_number_text,
    spaced_digits,
)
from tracemill.judging.grade_pool import get_pool
from tracemill.records import ANSWER_TYPES

MAX_SYMBOLIC_CHARS = 1000  # longer answers are never a textbook answer; parsing them can take minutes
MAX_DIGITS = 1_000_000  # estimated size of a power tower worth evaluating
MAX_FACTORIAL = 20_000
MIN_ROUNDED_DIGITS = 6  # a decimal stands for a non-terminating gold with at least this many digits
_YES_NO = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
_EXPRESSION_HINT = re.compile(r"[\\^*+()!]|\d\s*-|sqrt|pi")


@dataclass(frozen=True)
class Verdict:
    """One graded answer. ``correct`` is None when no tier could decide (the LLM judge may)."""

    extracted: str | None
    correct: bool | None
    decided_by: str


# --- numbers -----------------------------------------------------------------------------------


def _fraction(text: str) -> Fraction | None:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def _as_number(answer: str, answer_type: str) -> tuple[str, bool] | None:
    parsed = parse_number_text(answer)
    if parsed is None and answer_type == "integer" and (word := number_word(answer)) is not None:
        return str(word), False
    if parsed is None and answer_type in ("integer", "number"):
        parsed = parse_number_text(_strip_unit(answer))
    return parsed


def _strip_unit(answer: str) -> str:
    """``12 apples``, ``5\\text{ cm}`` -> the number; numeric answer types have no variables."""
    return re.sub(r"(?:\s*\\text\s*\{[^{}]*\}|\s+[A-Za-z][A-Za-z. ]*)$", "", answer.strip())


def numbers_equal(pred: tuple[str, bool], gold: tuple[str, bool]) -> bool:
    """Exact rational equality, percent read both ways; a decimal may round a non-terminating gold."""
    p, g = _fraction(pred[0]), _fraction(gold[0])
    if p is None or g is None:
        return False
    pred_values = {p, p / 100} if pred[1] else {p}
    gold_values = {g, g / 100} if gold[1] else {g}
    if pred_values & gold_values:
        return True
    if "." in pred[0] and "/" not in pred[0] and not _terminates(g):
        decimals = len(pred[0].split(".", 1)[1])
        digits = len(pred[0].replace("-", "").replace(".", "").lstrip("0"))
        return digits >= MIN_ROUNDED_DIGITS and round(g, decimals) == p
    return False


def _terminates(value: Fraction) -> bool:
    den = value.denominator
    for prime in (2, 5):
        while den % prime == 0:
            den //= prime
    return den == 1


_RADICAL = re.compile(r"(\d*)\s*\\sqrt\s*(?:\{\s*(\d+)\s*\}|(\d+))")
_BRACKETED = re.compile(r"([(\[])(.*)([)\]])")


def _radical(answer: str) -> int | None:
    """``3\\sqrt{2}`` -> 18, the square of a positive ``k\\sqrt{m}``; None for any other shape."""
    match = _RADICAL.fullmatch(normalize(answer))
    if match is None:
        return None
    k = int(match.group(1) or 1)
    return k * k * int(match.group(2) or match.group(3))


def _bracketed_numbers(answer: str) -> tuple[str, list[tuple[str, bool]], str] | None:
    """``(1, 2]`` -> brackets and plain numbers: a tuple or an interval the rules can compare exactly."""
    match = _BRACKETED.fullmatch(normalize(answer))
    if match is None or any(c in match.group(2) for c in "()[]{}"):
        return None
    parts = [parse_number_text(part) for part in match.group(2).split(",")]
    if len(parts) < 2 or any(part is None or part[1] for part in parts):
        return None
    return match.group(1), parts, match.group(3)  # type: ignore[return-value]


def _fast_forms(pred: str, gold: str) -> Verdict | None:
    """Two common math shapes decided without the symbolic engine: ``k\\sqrt{m}`` and tuples/intervals of numbers."""
    radicals = _radical(pred), _radical(gold)
    if None not in radicals:
        return Verdict(pred, radicals[0] == radicals[1], "numeric")
    p, g = _bracketed_numbers(pred), _bracketed_numbers(gold)
    if p is not None and g is not None:
        same = (p[0], p[2]) == (g[0], g[2]) and len(p[1]) == len(g[1])
        return Verdict(pred, same and all(numbers_equal(a, b) for a, b in zip(p[1], g[1], strict=True)), "numeric")
    return None


# --- explosion guard ---------------------------------------------------------------------------


def _log10_size(expr: str, depth: int = 0) -> float:
    """A rough upper estimate of log10 of the largest value ``expr`` builds (power towers)."""
    if depth > 12:
        return math.inf
    literals = re.findall(r"\d+", expr)
    best = max((math.log10(int(d) or 1) if len(d) < 300 else float(len(d)) for d in literals), default=0.0)
    pos = 0
    while (caret := expr.find("^", pos)) >= 0:
        start = caret + 1
        while start < len(expr) and expr[start] == " ":
            start += 1
        group = brace_group(expr, start) if start < len(expr) and expr[start] == "{" else None
        if group is not None:
            exponent, pos = group
        else:
            token = re.match(r"\d+|\\?[A-Za-z]+|.?", expr[start:])
            exponent = token.group(0) if token else ""
            pos = start + max(1, len(exponent))
        base = re.search(r"(\d+(?:\.\d+)?)\s*\}?\s*$", expr[:caret])
        log_base = math.log10(float(base.group(1))) if base and float(base.group(1)) > 1 else 1.0
        size = _log10_size(exponent, depth + 1)
        if size > 300:
            return math.inf
        best = max(best, log_base * 10**size)
    return best


def explodes(answer: str) -> bool:
    """Whether a symbolic engine would hang or run out of memory on this answer."""
    if len(answer) > MAX_SYMBOLIC_CHARS:
        return True
    if any(int(n) > MAX_FACTORIAL for n in re.findall(r"(\d{1,12})\s*!", answer)):
        return True
    for match in re.finditer(r"[)}]\s*!", answer):  # (10^{9})!
        opening = answer.rfind("(" if answer[match.start()] == ")" else "{", 0, match.start())
        if _log10_size(answer[opening + 1 : match.start()]) > math.log10(MAX_FACTORIAL):
            return True
    return _log10_size(answer) > MAX_DIGITS


# --- the tiers ---------------------------------------------------------------------------------


def _fast(pred: str, gold: str, answer_type: str) -> Verdict | None:
    """The verdict of the cheap tiers, or None where only the symbolic tier can decide.

    A hedged answer (``3 or 5``, ``maybe 4``) is ``ambiguous`` unless it is the gold as written;
    math answers may offer alternatives, which the symbolic tier compares as a set.
    """
    if hedged(pred, alternatives=answer_type != "math"):
        same = pred.strip() == gold.strip() or (not spaced_digits(pred) and normalize(pred) == normalize(gold))
        return Verdict(pred, True, "exact") if same else Verdict(pred, None, "ambiguous")
    if answer_type == "choice":
        gold_letter = choice_letter(gold)
        if gold_letter is not None:
            return Verdict(pred, choice_letter(pred) == gold_letter, "choice")
        answer_type = "text"  # a gold that is the option's text
    if answer_type == "text":
        p, g = normalize_text(pred), normalize_text(gold)
        if p == g or (p in _YES_NO and _YES_NO[p] == _YES_NO.get(g)):
            return Verdict(pred, True, "exact")
        pred_number, gold_number = parse_number_text(pred), parse_number_text(gold)
        if pred_number and gold_number:
            return Verdict(pred, numbers_equal(pred_number, gold_number), "numeric")
        return Verdict(pred, False, "exact")
    if normalize(pred) == normalize(gold):
        return Verdict(pred, True, "exact")
    pred_number, gold_number = _as_number(pred, answer_type), _as_number(gold, answer_type)
    if pred_number and gold_number:
        return Verdict(pred, numbers_equal(pred_number, gold_number), "numeric")
    if answer_type in ("integer", "number") and gold_number and not _EXPRESSION_HINT.search(pred):
        return Verdict(pred, False, "numeric")  # words, several numbers: not the number asked for
    return _fast_forms(pred, gold)


_cache: dict[tuple[str, str], str] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 100_000


def _symbolic(pairs: list[tuple[str, str]], timeout_s: float, workers: int | None) -> list[str]:
    """math-verify's status for each pair, distinct pairs checked once, results cached by pair."""
    with _cache_lock:
        known = {pair: _cache[pair] for pair in pairs if pair in _cache}
    todo = list(dict.fromkeys(pair for pair in pairs if pair not in known))
    if todo:
        statuses = get_pool().run(todo, timeout_s, workers)
        fresh = dict(zip(todo, statuses, strict=True))
        with _cache_lock:
            if len(_cache) > _CACHE_SIZE:
                _cache.clear()
            _cache.update((pair, status) for pair, status in fresh.items() if status != "timeout")
        known.update(fresh)
    return [known[pair] for pair in pairs]


_STATUS = {
    "true": (True, "symbolic"),
    "false": (False, "symbolic"),
    "unparsed": (None, "unparsed"),
    "timeout": (None, "timeout"),
}


def compare_many(
    items: Sequence[tuple[str, str, str]], *, timeout_s: float = 5.0, workers: int | None = None
) -> list[Verdict]:
    """Grade (predicted, gold, answer_type) triples of already extracted answers, in order."""
    verdicts: list[Verdict | None] = []
    symbolic: list[tuple[int, tuple[str, str]]] = []
    for pred, gold, answer_type in items:
        if answer_type not in ANSWER_TYPES:
            raise ValueError(f"unknown answer_type {answer_type!r}; known: {list(ANSWER_TYPES)}")
        original, pred, gold = pred, normalize_unicode(pred), normalize_unicode(gold)
        verdict = _fast(pred, gold, answer_type)
        if verdict is None and (explodes(pred) or explodes(gold)):
            verdict = Verdict(pred, None, "timeout")
        if verdict is not None:
            verdict = Verdict(original, verdict.correct, verdict.decided_by)
        if verdict is None:
            symbolic.append((len(verdicts), (pred.strip(), gold.strip())))
        verdicts.append(verdict)
    if symbolic:
        statuses = _symbolic([pair for _, pair in symbolic], timeout_s, workers)
        for (index, _), status in zip(symbolic, statuses, strict=True):
            correct, decided_by = _STATUS[status]
            verdicts[index] = Verdict(items[index][0], correct, decided_by)
    return [v for v in verdicts if v is not None]


def compare(predicted: str, gold: str, answer_type: str, *, timeout_s: float = 5.0) -> Verdict:
    """Grade one extracted answer against the gold (relabel's equivalence classes, re-judging)."""
    return compare_many([(predicted, gold, answer_type)], timeout_s=timeout_s)[0]


def grade_many(
    items: Sequence[tuple[str | None, str, str, int | None]],
    *,
    timeout_s: float = 5.0,
    workers: int | None = None,
) -> list[Verdict]:
    """Grade (response, gold, answer_type, num_choices) items, in order, symbolic checks in parallel.

    A response with no answer (cut off in its reasoning, no final marker) is ``unparsed`` and
    incorrect.
    """
    extracted = [extract(response, answer_type, num_choices) for response, _, answer_type, num_choices in items]
    parsed = [i for i, answer in enumerate(extracted) if answer is not None]
    compared = compare_many(
        [(extracted[i], items[i][1], items[i][2]) for i in parsed],  # type: ignore[misc]
        timeout_s=timeout_s,
        workers=workers,
    )
    verdicts = [Verdict(None, False, "unparsed")] * len(items)
    for i, verdict in zip(parsed, compared, strict=True):
        verdicts[i] = verdict
    return verdicts


def grade(
    response: str | None, gold: str, answer_type: str, *, num_choices: int | None = None, timeout_s: float = 5.0
) -> Verdict:
    """Grade one response against the gold answer; safe to call from any thread."""
    return grade_many([(response, gold, answer_type, num_choices)], timeout_s=timeout_s)[0]
