"""Sampling-stage throughput next to plain ``LLM.chat`` on the same prompts, parameters and engine.

Runs the real vLLM engine (the CPU build here, any build elsewhere) on a tiny local model made
for the run. Prints `name: value` lines; `ratio:` is ours / plain in output tokens per second
(goal: at least 0.95). Ours includes prompt rendering, reasoning split, Arrow conversion and a
checkpoint write per sub-batch.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tracemill.prompts import BUILTIN
from tracemill.records import PROBLEM, to_table
from tracemill.sampling import request_seed, sample_shard
from tracemill.sources.clevr_questions import procedural_problems
from tracemill.store import Store
from tracemill.teachers.base import SamplingParams
from tracemill.teachers.offline import VllmTeacher
from tracemill.tiny_model import make_tiny_model

CPU_ENGINE = {
    "dtype": "float32",
    "max_model_len": 2048,
    "max_num_seqs": 64,
    "kv_cache_memory_bytes": 512 * 1024**2,
    # Seeded sampling on the CPU build fails when a prefill is chunked ("CPU Generator does not use offset").
    "enable_chunked_prefill": False,
    "max_num_batched_tokens": 16384,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="model to use; default: a tiny local model made for the run")
    parser.add_argument("--scenes", type=int, default=40, help="procedural scenes (5 problems each)")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64, help="problems per checkpointed sub-batch")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(make_tiny_model(Path(tmp) / "model"))
        teacher = VllmTeacher(model, seed=0, **CPU_ENGINE)
        problems = to_table(procedural_problems(0, 0, args.scenes), PROBLEM)
        rows = problems.to_pylist()
        params = SamplingParams(n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens)
        template = BUILTIN["clevr_v2"]

        def plain() -> tuple[int, float]:
            from vllm import SamplingParams as VllmSamplingParams

            sampling = [
                VllmSamplingParams(n=args.n, seed=request_seed(0, r["problem_id"]), temperature=1.0, top_p=1.0,
                                   max_tokens=args.max_tokens)
                for r in rows
            ]  # fmt: skip
            start = time.perf_counter()
            outputs = teacher.llm.chat([template.render(r) for r in rows], sampling, use_tqdm=False)
            elapsed = time.perf_counter() - start
            return sum(len(c.token_ids) for o in outputs for c in o.outputs), elapsed

        def ours(round_: int) -> tuple[int, float]:
            checkpoints = Store(tmp).dataset("samples", f"bench{round_}", "sample").checkpoints(0, "b")
            start = time.perf_counter()
            table, stats = sample_shard(
                problems, teacher, params, templates=BUILTIN, prompt="clevr_v2", base_seed=0,
                batch_size=args.batch_size, checkpoints=checkpoints, max_failed_share=0.0,
            )  # fmt: skip
            return stats.completion_tokens, time.perf_counter() - start

        plain()  # warm-up
        best_plain = best_ours = 0.0
        for round_ in range(args.rounds):
            tokens, seconds = plain()
            best_plain = max(best_plain, tokens / seconds)
            tokens, seconds = ours(round_)
            best_ours = max(best_ours, tokens / seconds)
        teacher.close()

    print(f"problems: {len(rows)}")
    print(f"samples: {len(rows) * args.n}")
    print(f"plain_llm_chat_tokens_per_s: {best_plain:.0f}")
    print(f"stage_tokens_per_s: {best_ours:.0f}")
    print(f"ratio: {best_ours / best_plain:.3f}")


if __name__ == "__main__":
    main()
