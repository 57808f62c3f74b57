"""Symbolic equivalence with math-verify, run inside a grading worker process.

math-verify's own timeouts use ``signal.alarm``, which only works in a main thread, and some
inputs hang in C code where no signal lands; so this runs as ``python -m tracemill.judging.symbolic`` in
a worker the parent can kill (:mod:`tracemill.judging.grade_pool`). The worker sets its own alarm per item
and caps its memory. math-verify's numeric comparison can say True for different values (it
chops tiny differences to zero: ``1/2^{99}`` vs ``1/2^{98}``), so every True is checked again
numerically with a relative tolerance, and sets never match tuples or intervals.

Protocol: one JSON object per line on stdin (``pred``, ``gold``, ``timeout``), one reply per line
on stdout: ``{"r": "true" | "false" | "unparsed" | "timeout"}``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import resource
import signal
import sys
from typing import Any

MEMORY_MB = int(os.environ.get("TRACEMILL_GRADE_MEMORY_MB", "3072"))
EXACT_RTOL = "1e-12"  # exact forms: only rounding noise of a 50-digit evaluation
FLOAT_RTOL = "1e-6"  # a decimal answer: math-verify's own rounding of floats


class Deadline(BaseException):
    """The item's time is up; a BaseException so math-verify's ``except Exception`` cannot swallow it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise Deadline


def _boxed(answer: str) -> str:
    return "\\boxed{" + answer + "}"


def _first_expr(parsed: list[Any]) -> Any:
    return next((item for item in parsed if not isinstance(item, str)), None)


@functools.lru_cache(maxsize=4096)
def _parse(answer: str) -> list[Any]:
    """Parsed once per worker: a problem's gold meets every sample's answer, and answers repeat."""
    from math_verify import parse

    return parse(_boxed(answer), parsing_timeout=None)


def equivalent(pred: str, gold: str) -> bool | None:
    """math-verify's verdict on two extracted answers, vetoed by :func:`plausible`; None if unparsable."""
    from math_verify import verify

    gold_parsed, pred_parsed = _parse(gold), _parse(pred)
    gold_expr, pred_expr = _first_expr(gold_parsed), _first_expr(pred_parsed)
    if gold_expr is None or pred_expr is None:
        return None
    if not verify(gold_parsed, pred_parsed, allow_set_relation_comp=True, timeout_seconds=None):
        return False
    return plausible(gold_expr, pred_expr)


def _kind(expr: Any) -> str:
    import sympy

    if isinstance(expr, sympy.FiniteSet):
        return "set"
    if isinstance(expr, sympy.Tuple):
        return "tuple"
    if isinstance(expr, (sympy.Interval, sympy.Union)):
        return "interval"
    if isinstance(expr, (sympy.MatrixBase, sympy.MatrixExpr)):
        return "matrix"
    if isinstance(expr, sympy.Expr):
        return "expr"
    return "other"


def _unassign(expr: Any) -> Any:
    """``x = 5`` -> ``5``: math-verify compares an assignment by its value too. A matrix sum is evaluated."""
    import sympy

    if isinstance(expr, sympy.Eq) and isinstance(expr.lhs, sympy.Symbol):
        return expr.rhs
    if isinstance(expr, sympy.MatrixExpr) and not isinstance(expr, sympy.MatrixBase):
        return sympy.Matrix(expr.doit())
    return expr


def plausible(gold: Any, pred: Any) -> bool:
    """False when a match math-verify found cannot hold: other values, or a set against a tuple."""
    import sympy

    if isinstance(gold, sympy.Eq) and isinstance(pred, sympy.Eq):  # "a = b" and "b = a": the same equation
        g, p = gold.lhs - gold.rhs, pred.lhs - pred.rhs
        return _values_agree(g, p) or _values_agree(g, -p) or _proportional(g, p)
    gold, pred = _unassign(gold), _unassign(pred)
    kinds = {_kind(gold), _kind(pred)}
    if "set" in kinds and kinds & {"tuple", "interval"}:
        return False
    if kinds == {"expr"}:
        return _values_agree(gold, pred)
    if _kind(gold) == _kind(pred) == "tuple" and len(gold) == len(pred):
        return all(plausible(g, p) for g, p in zip(gold, pred, strict=True))
    if _kind(gold) == _kind(pred) == "matrix" and gold.shape == pred.shape:
        return all(plausible(g, p) for g, p in zip(gold, pred, strict=True))
    if isinstance(gold, sympy.Interval) and isinstance(pred, sympy.Interval):
        return (gold.left_open, gold.right_open) == (pred.left_open, pred.right_open) and all(
            _values_agree(g, p) for g, p in ((gold.start, pred.start), (gold.end, pred.end))
        )
    if _kind(gold) == _kind(pred) == "set" and len(gold) == len(pred):
        return _same_elements(list(gold), list(pred))
    return True


def _as_pair(expr: Any) -> Any:
    """``(1,2)`` in a set of points parses as an open interval: read it back as the pair it is."""
    import sympy

    if isinstance(expr, sympy.Interval) and expr.left_open and expr.right_open:
        return sympy.Tuple(expr.start, expr.end)
    return expr


def _same_elements(gold: list[Any], pred: list[Any]) -> bool:
    """Each gold element pairs off with its own predicted element (numbers, tuples, points), any order."""
    gold = [_as_pair(g) for g in gold]
    left = [_as_pair(p) for p in pred]
    for g in gold:
        match = next((i for i, p in enumerate(left) if _kind(g) == _kind(p) and _element_agrees(g, p)), None)
        if match is None:
            return False
        left.pop(match)
    return True


def _element_agrees(gold: Any, pred: Any) -> bool:
    import sympy

    if _kind(gold) == "tuple":
        return len(gold) == len(pred) and all(_element_agrees(g, p) for g, p in zip(gold, pred, strict=True))
    if isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr):
        return _values_agree(gold, pred)
    return gold == pred or plausible(gold, pred)


def _proportional(gold: Any, pred: Any) -> bool:
    """Two equations ``g = 0`` and ``p = 0`` are the same when ``g / p`` is a nonzero constant."""
    import sympy

    try:
        ratio = sympy.simplify(gold / pred)
    except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
        return False
    return bool(ratio.is_number and ratio != 0 and ratio.is_finite)


def _values_agree(gold: Any, pred: Any) -> bool:
    """Both evaluate to the same number (at random points when they have free symbols)."""
    import sympy

    if not (isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr)):
        return True
    if gold.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or pred.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return gold == pred
    symbols = sorted(gold.free_symbols | pred.free_symbols, key=str)
    if len(symbols) > 4:
        return True
    has_float = bool(gold.atoms(sympy.Float) or pred.atoms(sympy.Float))
    rtol = sympy.Float(FLOAT_RTOL if has_float else EXACT_RTOL, 50)
    rng = random.Random(0)
    points = [{}] if not symbols else [{s: sympy.Rational(rng.randint(3, 29), 10) for s in symbols} for _ in range(3)]
    for point in points:
        try:
            a = sympy.N(gold.subs(point), 50)
            b = sympy.N(pred.subs(point), 50)
        except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
            return True
        if not (a.is_number and b.is_number) or a.has(sympy.nan, sympy.zoo) or b.has(sympy.nan, sympy.zoo):
            continue
        scale = sympy.Max(sympy.Abs(a), sympy.Abs(b))
        diff = sympy.Abs(a - b)
        try:
            if bool(diff > rtol * scale):
                return False
        except TypeError:  # an unevaluated comparison: cannot tell
            continue
    return True


def _check(request: dict[str, Any]) -> str:
    signal.setitimer(signal.ITIMER_REAL, float(request["timeout"]))
    try:
        result = equivalent(request["pred"], request["gold"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {True: "true", False: "false", None: "unparsed"}[result]


def _reply(request: dict[str, Any]) -> str:
    try:
        return _check(request)
    except (Deadline, MemoryError, RecursionError):
        return "timeout"
    except Exception:  # a parser bug on odd input is undecidable, not a crash of the batch
        return "unparsed"


# The parser builds its prediction tables on first use: the first parse of each shape costs
# ~100 ms, later ones well under 1 ms. Done before "ready", so the first items are not slower.
WARM_UP = [
    ("\\frac{1}{2}", "0.5"),
    ("3\\sqrt{2}", "\\sqrt{18}"),
    ("(1,2]", "[1,2)"),
    ("x^2+2x+1", "(x+1)^2"),
    ("\\{1,2\\}", "1, 2"),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"),
    ("x<3", "(-\\infty,3)"),
    ("y=2x+3", "2\\pi+e^{-1}"),
    ("a=2,b=3", "5\\text{ cm}"),
    ("\\frac{1}{2004!}", "10^{-20}\\%"),
]


def _warm_up() -> None:
    for pred, gold in WARM_UP:
        equivalent(pred, gold)
    _parse.cache_clear()


def main() -> None:
    limit = MEMORY_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from the libraries must not corrupt the protocol
    sys.set_int_max_str_digits(20_000)
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    _warm_up()
    signal.signal(signal.SIGALRM, _on_alarm)
    channel.write('{"ready": true}\n')
    for line in sys.stdin:
        try:
            reply = _reply(json.loads(line))
        except Deadline:  # the alarm fired between the item and its reply
            reply = "timeout"
        channel.write(json.dumps({"r": reply}) + "\n")


if __name__ == "__main__":
    main()
