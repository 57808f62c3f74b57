"""The sampling stage over a chunk of shards next to ONE ``LLM.chat`` call over every prompt of the chunk.

Runs the real vLLM engine (the CPU build here, any build elsewhere) on a tiny local model made
for the run, with the same engine and sampling parameters on both sides: temperature 1, no
guided decoding and ``max_tokens`` 1024, so output lengths are set by the model's own
end-of-sequence token (geometric, with a tail to the cap). Ours is the whole stage: one Sampler,
the chunk's shards at once (as the sampling flow runs them), prompt rendering, reasoning split,
Arrow rows, checkpoints by completion and the shard writes. Prints `name: value` lines; `ratio:`
is ours / plain in output tokens per second (goal: at least 0.95).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tools.tiny_model import make_tiny_model
from tracemill.problems.clevr_questions import procedural_problems
from tracemill.records import PROBLEM, to_table
from tracemill.sampling.prompts import BUILTIN
from tracemill.sampling.stage import Sampler
from tracemill.seeds import request_seed
from tracemill.store import Store
from tracemill.teachers.base import SamplingParams
from tracemill.teachers.offline import VllmTeacher

CPU_ENGINE = {
    "dtype": "float32",
    "max_model_len": 2048,
    "max_num_seqs": 64,
    "kv_cache_memory_bytes": 512 * 1024**2,
    # Seeded sampling on the CPU build fails when a prefill is chunked ("CPU Generator does not use offset").
    "enable_chunked_prefill": False,
    "max_num_batched_tokens": 16384,
    "enable_prefix_caching": True,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="model to use; default: a tiny local model made for the run")
    parser.add_argument("--scenes", type=int, default=20, help="procedural scenes (5 problems each)")
    parser.add_argument("--shards", type=int, default=4, help="shards the problems are split into")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(make_tiny_model(Path(tmp) / "model"))
        teacher = VllmTeacher(model, seed=0, **CPU_ENGINE)
        problems = to_table(procedural_problems(0, 0, args.scenes), PROBLEM)
        rows = problems.to_pylist()
        size = -(-len(rows) // args.shards)
        shards = [problems.slice(start, size) for start in range(0, len(rows), size)]
        params = SamplingParams(n=args.n, temperature=1.0, top_p=1.0, max_tokens=args.max_tokens)
        template = BUILTIN["clevr_v2"]
        lengths: list[int] = []

        def plain(subset: list[dict]) -> tuple[int, float]:
            from vllm import SamplingParams as VllmSamplingParams

            sampling = [
                VllmSamplingParams(n=args.n, seed=request_seed(0, r["problem_id"]), temperature=1.0, top_p=1.0,
                                   max_tokens=args.max_tokens)
                for r in subset
            ]  # fmt: skip
            start = time.perf_counter()
            outputs = teacher.llm.chat([template.render(r) for r in subset], sampling, use_tqdm=False)
            elapsed = time.perf_counter() - start
            return sum(len(c.token_ids) for o in outputs for c in o.outputs), elapsed

        def ours(round_: int) -> tuple[int, float]:
            dataset = Store(tmp).dataset("samples", f"bench{round_}", "sample")
            start = time.perf_counter()
            with Sampler(
                teacher, params, templates=BUILTIN, prompt="clevr_v2", base_seed=0, max_failed_share=0.0
            ) as sampler:
                threads = [
                    threading.Thread(target=sampler.sample_shard, args=(i, table, dataset))
                    for i, table in enumerate(shards)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            elapsed = time.perf_counter() - start
            tokens = [
                t for i in range(len(shards)) for t in dataset.read_shard(i).column("completion_tokens").to_pylist()
            ]
            lengths[:] = tokens
            return sum(tokens), elapsed

        plain(rows[:8])  # warm-up
        best_plain = best_ours = 0.0
        for round_ in range(args.rounds):
            tokens, seconds = plain(rows)
            best_plain = max(best_plain, tokens / seconds)
            tokens, seconds = ours(round_)
            best_ours = max(best_ours, tokens / seconds)
        teacher.close()

    print(f"problems: {len(rows)}")
    print(f"shards: {len(shards)}")
    print(f"samples: {len(rows) * args.n}")
    print(f"lengths_p50: {statistics.median(lengths):.0f}")
    print(f"lengths_max: {max(lengths)}")
    print(f"plain_llm_chat_tokens_per_s: {best_plain:.0f}")
    print(f"stage_tokens_per_s: {best_ours:.0f}")
    print(f"ratio: {best_ours / best_plain:.3f}")


if __name__ == "__main__":
    main()
