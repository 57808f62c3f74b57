"""Filter + export throughput on a synthetic verdict dataset, next to plain pyarrow reading and writing it.

A seeded million samples (8 per problem, 100k per shard) are written once; then every filter runs
(correct only, reasoning, single answer, truncated, global length bound, exact and MinHash
near duplicates, at most 4 per problem) and every export is written, shard by shard. The baseline
reads each verdict shard and writes it back with plain pyarrow. Prints `name: value` lines;
`ratio:` is ours / plain pyarrow in rows per second (1.0 = as fast as copying the data).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tracemill.export import layouts as export
from tracemill.export.config import ExportConfig
from tracemill.filtering import rules
from tracemill.filtering import stage as filters
from tracemill.filtering.config import FilterConfig, LengthOutlierConfig
from tracemill.filtering.stage import Plan
from tracemill.records import MESSAGES, RELABEL, VERDICT
from tracemill.sampling.prompts import BUILTIN, prompt_columns
from tracemill.store import Store

WORDS = np.array(
    "so the count of red cubes is then we add one more and check again each object left right".split()  # noqa: SIM905
)


def _shard(rng: np.random.Generator, shard: int, problems: int, per_problem: int) -> tuple[pa.Table, pa.Table]:
    pids = np.array([f"p{shard:03d}-{i:06d}" for i in range(problems)])
    answers = rng.integers(0, 10, problems).astype(str)
    relabel = {name: pa.nulls(problems, field.type) for name, field in zip(RELABEL.names, RELABEL, strict=True)}
    relabel |= {
        "problem_id": pa.array(pids), "source": pa.array(["bench"] * problems), "split": pa.array(["test"] * problems),
        "question": pa.array([f"How many things are in scene {p}?" for p in pids]), "answer": pa.array(answers),
        "answer_type": pa.array(["integer"] * problems), "original_answer": pa.array(answers),
        "relabeled": pa.array(rng.random(problems) < 0.05),
    }  # fmt: skip
    rows = problems * per_problem
    lengths = rng.integers(20, 60, rows)
    picks = rng.integers(0, len(WORDS), lengths.sum())
    cuts = np.cumsum(lengths)[:-1]
    reasoning = [" ".join(ws) for ws in np.split(WORDS[picks], cuts)]
    dup = rng.random(rows) < 0.05  # some exact repeats of the previous sample
    reasoning = [reasoning[i - 1] if dup[i] and i % per_problem else r for i, r in enumerate(reasoning)]
    correct = rng.random(rows) < 0.6
    extracted = np.where(correct, np.repeat(answers, per_problem), "x")
    template = BUILTIN["math_boxed"]
    prompts = [prompt_columns(template.render({"question": q})) for q in relabel["question"].to_pylist()]
    verdict = {name: pa.nulls(rows, field.type) for name, field in zip(VERDICT.names, VERDICT, strict=True)}
    verdict |= {
        "problem_id": pa.array(np.repeat(pids, per_problem)),
        "sample_idx": pa.array(np.tile(np.arange(per_problem, dtype=np.int32), problems)),
        "teacher": pa.array(["bench-teacher"] * rows), "prompt_version": pa.array([template.id] * rows),
        "prompt": pa.array([p["prompt"] for p in prompts for _ in range(per_problem)]),
        "prompt_messages": pa.array([p["prompt_messages"] for p in prompts for _ in range(per_problem)], MESSAGES),
        "seed": pa.array(np.arange(rows)), "reasoning": pa.array(reasoning),
        "response": pa.array([f"The answer is \\boxed{{{x}}}." for x in extracted]),
        "finish_reason": pa.array(np.where(rng.random(rows) < 0.02, "length", "stop")),
        "prompt_tokens": pa.array(np.full(rows, 40, np.int32)), "completion_tokens": pa.array(lengths.astype(np.int32)),
        "latency_s": pa.array(rng.random(rows)), "extracted": pa.array(extracted), "correct": pa.array(correct),
        "decided_by": pa.array(["exact"] * rows),
    }  # fmt: skip
    return (
        pa.Table.from_arrays(list(relabel.values()), schema=RELABEL),
        pa.Table.from_arrays(list(verdict.values()), schema=VERDICT),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1_000_000, help="verdict rows in the benchmark dataset")
    parser.add_argument("--per-shard", type=int, default=100_000, help="verdict rows per shard")
    parser.add_argument("--per-problem", type=int, default=8, help="samples per problem")
    args = parser.parse_args()
    shards = max(1, args.samples // args.per_shard)
    problems = args.per_shard // args.per_problem
    rng = np.random.default_rng(0)
    config = FilterConfig(length=LengthOutlierConfig(percentile=99), max_per_problem=4)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "store"))
        relabel = store.dataset("relabel", "bench", "relabel")
        verdicts = store.dataset("rejudged", "bench", "verdict")
        for shard in range(shards):
            r, v = _shard(rng, shard, problems, args.per_problem)
            relabel.write_shard(shard, r)
            verdicts.write_shard(shard, v)
        relabel.commit(shards, config={}, code_version="bench")
        verdicts.commit(shards, config={}, code_version="bench")
        rows = verdicts.manifest()["rows"]

        start = time.perf_counter()
        plain = Path(tmp) / "plain"
        plain.mkdir()
        for shard in range(shards):
            pq.write_table(pq.read_table(verdicts.shard_path(shard)), plain / f"{shard}.parquet", compression="zstd")
        baseline = time.perf_counter() - start

        kept = store.dataset("kept", "bench", "kept")
        rejected = store.dataset("rejected", "bench", "rejected")
        out = export.export_dir(store, "bench", ExportConfig())
        start = time.perf_counter()
        tokens = [rules.measured_tokens(verdicts.read_shard(i, rules.LENGTH_COLUMNS)) for i in range(shards)]
        plan = Plan(config, length_limit=rules.length_bound(np.concatenate(tokens), config.length))
        for shard in range(shards):
            k, d = filters.filter_shard(relabel.read_shard(shard), verdicts.read_shard(shard), plan, shard=shard)
            kept.write_shard(shard, k)
            rejected.write_shard(shard, d)
        filtered = time.perf_counter() - start
        for shard in range(shards):
            export.export_shard(kept.read_shard(shard), rejected.read_shard(shard), out, shard, ExportConfig())
        total = time.perf_counter() - start
        kept_rows = sum(kept.read_shard(i, ["problem_id"]).num_rows for i in range(shards))

    print(f"samples: {rows}")
    print(f"kept: {kept_rows}")
    print(f"filter_rows_per_s: {rows / filtered:.0f}")
    print(f"export_rows_per_s: {rows / (total - filtered):.0f}")
    print(f"filter_export_rows_per_s: {rows / total:.0f}")
    print(f"pyarrow_read_write_rows_per_s: {rows / baseline:.0f}")
    print(f"ratio: filter+export {baseline / total:.4f}")


if __name__ == "__main__":
    main()
