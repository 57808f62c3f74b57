"""Store write/read throughput next to plain pyarrow on the same table, in the same run.

Prints `name: value` lines; `ratio:` lines are ours / plain pyarrow (1.0 = no overhead).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from tracemill.problems.clevr_questions import procedural_problems
from tracemill.records import PROBLEM, to_table
from tracemill.store import Store


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=4000, help="procedural scenes in the benchmark table")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    table = to_table(procedural_problems(0, 0, args.scenes), PROBLEM)
    megabytes = table.nbytes / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        ds = Store(str(Path(tmp) / "store")).dataset("problems", "bench", "problem")
        plain = Path(tmp) / "plain.parquet"
        ours_write = _best(lambda: ds.write_shard(0, table), args.repeats)
        plain_write = _best(lambda: pq.write_table(table, plain, compression="zstd"), args.repeats)
        ours_read = _best(lambda: ds.read_shard(0), args.repeats)
        plain_read = _best(lambda: pq.read_table(plain), args.repeats)

    print(f"rows: {table.num_rows}")
    print(f"table_mb: {megabytes:.1f}")
    print(f"store_write_mb_per_s: {megabytes / ours_write:.1f}")
    print(f"pyarrow_write_mb_per_s: {megabytes / plain_write:.1f}")
    print(f"ratio: write {plain_write / ours_write:.3f}")
    print(f"store_read_mb_per_s: {megabytes / ours_read:.1f}")
    print(f"pyarrow_read_mb_per_s: {megabytes / plain_read:.1f}")
    print(f"ratio: read {plain_read / ours_read:.3f}")


if __name__ == "__main__":
    main()
