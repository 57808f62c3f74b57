"""Grading throughput on R1-length responses next to math-verify's parse and verify on the same data.

Prints `name: value` lines. Throughput is graded samples per CPU-second (per core): ours counts
this process and the pool's worker processes, math-verify runs in this process, as a script
calling ``parse`` and ``verify`` would; CPU time keeps other load on the machine out of it. `ratio:` is ours /
math-verify. As in a real build, each problem has several samples whose answers repeat.
The explosion set (power towers, huge factorials, very long expressions) is timed as a whole.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

WORDS = [
    "so",
    "we",
    "get",
    "then",
    "note",
    "that",
    "hence",
    "which",
    "means",
    "the",
    "sum",
    "of",
    "both",
    "sides",
    "gives",
    "us",
    "a",
    "factor",
    "term",
]


def _reasoning(rng: random.Random, chars: int) -> str:
    """Several thousand characters of R1-style reasoning, with formulas and decoy answers in it."""
    parts: list[str] = []
    size = 0
    while size < chars:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        sentence = " ".join(rng.choices(WORDS, k=rng.randint(6, 16)))
        piece = rng.choice(
            [
                f"{sentence}: ${a} \\cdot {b} = {a * b}$.",
                f"Wait, {sentence} \\frac{{{a}}}{{{b}}}, so maybe \\boxed{{{a + b}}}? No.",
                f"{sentence}, and $x^2 + {a}x + {b} = 0$ has roots to check.",
                f"Let me re-check: {sentence} {a}, {b}.",
            ]
        )
        parts.append(piece)
        size += len(piece) + 1
    return " ".join(parts)


def _problem(rng: random.Random) -> tuple[str, list[str], str]:
    """(gold, the answers samples state: two equivalent forms and two wrong values, answer_type)."""
    a, b = rng.randint(2, 999), rng.randint(2, 999)
    kind = rng.randrange(5)
    if kind == 0:
        return str(a), [str(a), f"{a}.0", str(a + 1), str(a - 1)], "integer"
    if kind == 1:
        same = [f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{2 * a}}}{{{2 * b}}}"]
        return same[0], [*same, f"\\frac{{{a + 1}}}{{{b}}}", f"\\frac{{{b}}}{{{a}}}"], "math"
    if kind == 2:
        same = [f"{a}\\sqrt{{2}}", f"\\sqrt{{{2 * a * a}}}"]
        return same[0], [*same, f"{a}\\sqrt{{3}}", f"{a + 1}\\sqrt{{2}}"], "math"
    if kind == 3:
        same = [f"({a}, {a + b}]", f"({a},{a + b}]"]
        return same[0], [*same, f"[{a},{a + b})", f"({a},{a + b})"], "math"
    same = [f"{a}x+{b}", f"{b}+{a}x"]
    return same[0], [*same, f"{a}x-{b}", f"{b}x+{a}"], "math"


def _responses(problems: int, samples: int, chars: int, seed: int) -> list[tuple[str, str, str, None]]:
    """``samples`` responses per problem, each stating one of the problem's candidate answers."""
    rng = random.Random(seed)
    items = []
    for _ in range(problems):
        gold, candidates, answer_type = _problem(rng)
        for _ in range(samples):
            stated = rng.choices(candidates, weights=[5, 2, 2, 1])[0]
            final = rng.choice(
                [f"The answer is $\\boxed{{{stated}}}$.", f"**Final Answer**\n\\[\\boxed{{{stated}}}\\]"]
            )
            items.append((f"<think>\n{_reasoning(rng, chars)}\n</think>\n\n{final}", gold, answer_type, None))
    return items


EXPLOSIONS = [
    ("9^{9^{9^{9}}}", "3"),
    ("10^{10^{10}}", "10^{10^{10}}+1"),
    ("2^{2^{2^{2^{2^{2}}}}}", "4"),
    ("7^{7^{10}}", "3"),
    ("10^{10^{9}}-1", "9"),
    ("100000!", "5"),
    ("+".join(["x"] * 12000), "12000x"),
    ("(" * 3000 + "1" + ")" * 3000, "1"),
    ("1" * 30000, "1" * 30000 + "1"),
    ("(10^{9})!", "1"),
    ("(x+1)^{2000}", "(x-1)^{2000}"),  # passes the screen: the worker's time limit ends it
]


def _pool_cpu_s(pool) -> float:
    """CPU seconds the pool's live workers have used (Linux /proc), so other load does not count."""
    total = 0.0
    for worker in pool._idle:
        fields = Path(f"/proc/{worker.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--samples-per-problem", type=int, default=8)
    parser.add_argument("--reasoning-chars", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from math_verify import parse, verify

    from tracemill.judging.grade_pool import get_pool
    from tracemill.judging.grading import grade_many

    items = _responses(args.problems, args.samples_per_problem, args.reasoning_chars, args.seed)
    # Steady state, as in a long build: both sides first grade a disjoint set of the same kind
    # (worker start, the LaTeX parser's lazily built tables), outside the timing.
    warm = _responses(args.problems // 2 or 1, args.samples_per_problem, args.reasoning_chars, args.seed + 1)
    get_pool().run([("1", "1")] * args.workers, 5.0, args.workers)
    grade_many(warm, workers=args.workers)
    for response, gold, _, _ in warm:
        verify(parse(f"\\boxed{{{gold}}}"), parse(response))

    pool = get_pool()
    cpu = _pool_cpu_s(pool) + time.process_time()
    start = time.perf_counter()
    ours = grade_many(items, workers=args.workers)
    ours_wall = time.perf_counter() - start
    ours_cpu = _pool_cpu_s(pool) + time.process_time() - cpu

    cpu = time.process_time()
    start = time.perf_counter()
    theirs = [verify(parse(f"\\boxed{{{gold}}}"), parse(response)) for response, gold, _, _ in items]
    theirs_wall = time.perf_counter() - start
    theirs_cpu = time.process_time() - cpu

    ours_rate = len(items) / ours_cpu
    theirs_rate = len(items) / theirs_cpu
    agree = sum(v.correct is t for v, t in zip(ours, theirs, strict=True))
    print(f"samples: {len(items)}")
    print(f"response_chars_mean: {sum(len(r) for r, *_ in items) / len(items):.0f}")
    print(f"workers: {args.workers}")
    print(f"grading_wall_s: {ours_wall:.2f}")
    print(f"math_verify_wall_s: {theirs_wall:.2f}")
    print(f"grading_samples_per_s_per_core: {ours_rate:.1f}")
    print(f"math_verify_samples_per_s_per_core: {theirs_rate:.1f}")
    print(f"ratio: {ours_rate / theirs_rate:.2f}")
    print(f"agreement_with_math_verify: {agree / len(items):.3f}")

    start = time.perf_counter()
    verdicts = grade_many([(f"\\boxed{{{p}}}", g, "math", None) for p, g in EXPLOSIONS], workers=args.workers)
    print(f"explosion_set_items: {len(EXPLOSIONS)}")
    print(f"explosion_set_wall_s: {time.perf_counter() - start:.2f}")
    print(f"explosion_set_true: {sum(v.correct is True for v in verdicts)}")


if __name__ == "__main__":
    main()
