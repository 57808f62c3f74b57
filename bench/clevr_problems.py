"""Procedural CLEVR problem synthesis throughput on one core.

Prints `name: value` lines: scenes and problems per second for the generator alone, and for the
whole problems-shard build (generation plus conversion to the Arrow problem table).
"""

from __future__ import annotations

import argparse
import time

from tracemill.problems import stage as problems
from tracemill.problems.clevr_questions import procedural_problems
from tracemill.problems.config import ClevrProceduralSource
from tracemill.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=3000)
    parser.add_argument("--questions-per-scene", type=int, default=4)
    args = parser.parse_args()

    start = time.perf_counter()
    rows = procedural_problems(0, 0, args.scenes, questions_per_scene=args.questions_per_scene)
    generate = time.perf_counter() - start

    source = ClevrProceduralSource(
        num_scenes=args.scenes, scenes_per_shard=args.scenes, questions_per_scene=args.questions_per_scene
    )
    start = time.perf_counter()
    table = problems.build_shard(source, 0, Store("memory://bench"))
    shard = time.perf_counter() - start

    print(f"scenes: {args.scenes}")
    print(f"problems: {len(rows)}")
    print(f"generator_scenes_per_s: {args.scenes / generate:.0f}")
    print(f"generator_problems_per_s: {len(rows) / generate:.0f}")
    print(f"shard_problems_per_s: {table.num_rows / shard:.0f}")


if __name__ == "__main__":
    main()
