"""The sampling stage on an endpoint next to a plain ``AsyncOpenAI`` loop at the same concurrency bound.

Both talk to the local OpenAI-compatible server (tests/fake_openai.py) run in its own process,
whose per-request latency is heavy-tailed (lognormal, drawn from the prompt and seed, so both
sides wait exactly as long for the same request). Ours is the whole stage over a chunk of
shards: one Sampler, the shards at once, checkpoints by completion, shards written to a local
store. Plain sends every request of the chunk through one semaphore and does nothing else.
Prints `name: value` lines; `ratio:` is ours / plain in samples per second (goal: at least 0.95),
beside the latency percentiles that make the tail.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import openai

from tracemill.records import PROBLEM, to_table
from tracemill.sampling.prompts import PromptTemplate
from tracemill.sampling.stage import Sampler
from tracemill.seeds import request_seed
from tracemill.store import Store
from tracemill.teachers.base import SamplingParams
from tracemill.teachers.endpoint import EndpointTeacher

ROOT = Path(__file__).resolve().parents[1]
PLAIN = PromptTemplate("plain", 1, "{question}")


def start_server(median_ms: float, sigma: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "tests.fake_openai", "--port", "0", "--delay-ms", str(median_ms)]
    command += ["--lognormal-sigma", str(sigma)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("port: "):
        proc.kill()
        raise RuntimeError(f"the fake server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


async def plain(url: str, requests: list[tuple[str, int]], params: SamplingParams, concurrency: int) -> float:
    """Seconds for every (question, seed) through AsyncOpenAI with a semaphore, nothing else."""
    client = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(question: str, seed: int) -> str | None:
        async with semaphore:
            response = await client.chat.completions.create(
                model="bench",
                messages=[{"role": "user", "content": question}],
                n=1,
                seed=seed,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
            )
            return response.choices[0].message.content

    start = time.perf_counter()
    await asyncio.gather(*(one(q, s) for q, s in requests))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


def ours(teacher: EndpointTeacher, shards: list, params: SamplingParams, store: str) -> tuple[float, list[float]]:
    """Seconds for the stage over every shard at once, and the latencies it recorded."""
    dataset = Store(store).dataset("samples", f"bench-{time.monotonic_ns()}", "sample")
    start = time.perf_counter()
    with Sampler(
        teacher, params, templates={"plain": PLAIN}, prompt="plain", base_seed=0, max_failed_share=0.0
    ) as sampler:
        threads = [
            threading.Thread(target=sampler.sample_shard, args=(i, table, dataset)) for i, table in enumerate(shards)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - start
    latencies = [x for i in range(len(shards)) for x in dataset.read_shard(i).column("latency_s").to_pylist()]
    if len(latencies) != sum(t.num_rows for t in shards) * params.n:
        raise RuntimeError("the stage did not write every sample")
    return elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--problems", type=int, default=64, help="problems per shard")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--median-ms", type=float, default=40.0, help="median latency of a request")
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma of the latency (the tail)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    proc, url = start_server(args.median_ms, args.sigma)
    params = SamplingParams(n=args.n, temperature=1.0, max_tokens=64)
    shards = []
    for s in range(args.shards):
        rows = [
            {"problem_id": f"p{i}", "source": "bench", "split": "train", "question": f"How many cubes in scene {i}?",
             "answer": "1", "answer_type": "integer"}
            for i in range(s * args.problems, (s + 1) * args.problems)
        ]  # fmt: skip
        shards.append(to_table(rows, PROBLEM))
    requests = [
        (row["question"], request_seed(0, row["problem_id"]) + j)
        for table in shards
        for row in table.to_pylist()
        for j in range(args.n)
    ]
    try:
        teacher = EndpointTeacher(base_url=url, model="bench", api_key=None, max_concurrency=args.concurrency)
        best_plain = best_ours = float("inf")
        latencies: list[float] = []
        with tempfile.TemporaryDirectory() as store:
            ours(teacher, shards[:1], params, store)  # warm-up: connections, loop thread
            for _ in range(args.rounds):
                best_plain = min(best_plain, asyncio.run(plain(url, requests, params, args.concurrency)))
                seconds, latencies = ours(teacher, shards, params, store)
                best_ours = min(best_ours, seconds)
        teacher.close()
    finally:
        proc.terminate()
        proc.wait()

    latencies.sort()
    print(f"shards: {args.shards}")
    print(f"samples: {len(requests)}")
    print(f"concurrency: {args.concurrency}")
    print(f"latency_p50_s: {statistics.median(latencies):.3f}")
    print(f"latency_max_s: {latencies[-1]:.3f}")
    print(f"plain_async_openai_samples_per_s: {len(requests) / best_plain:.0f}")
    print(f"stage_samples_per_s: {len(requests) / best_ours:.0f}")
    print(f"ratio: {best_plain / best_ours:.3f}")


if __name__ == "__main__":
    main()
