"""Endpoint teacher requests per second next to a plain ``AsyncOpenAI`` loop at the same concurrency.

Both talk to the local OpenAI-compatible server (tests/fake_openai.py) run in its own process, so
the figure is the client side's overhead: rate limiter, retries bookkeeping, usage split and
conversion to samples. Prints `name: value` lines; `ratio:` is ours / plain.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import openai

from tracemill.teachers.base import SampleRequest, SamplingParams
from tracemill.teachers.endpoint import EndpointTeacher

ROOT = Path(__file__).resolve().parents[1]


def start_server(delay_ms: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "tests.fake_openai", "--port", "0", "--delay-ms", str(delay_ms)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("port: "):
        proc.kill()
        raise RuntimeError(f"the fake server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


async def plain(url: str, requests: list[SampleRequest], params: SamplingParams, concurrency: int) -> float:
    """Seconds for the requests through AsyncOpenAI with a semaphore, nothing else."""
    client = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(request: SampleRequest) -> str | None:
        async with semaphore:
            response = await client.chat.completions.create(
                model="bench",
                messages=request.prompt,  # type: ignore[arg-type]
                n=1,
                seed=request.seed,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
            )
            return response.choices[0].message.content

    start = time.perf_counter()
    await asyncio.gather(*(one(r) for r in requests))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


def ours(teacher: EndpointTeacher, requests: list[SampleRequest], params: SamplingParams) -> float:
    start = time.perf_counter()
    results = teacher.generate(requests, params)
    elapsed = time.perf_counter() - start
    failed = sum(g.error is not None for gens in results for g in gens)
    if failed:
        raise RuntimeError(f"{failed} requests failed")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--delay-ms", type=float, default=5.0, help="the server's delay per answer")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    proc, url = start_server(args.delay_ms)
    try:
        requests = [
            SampleRequest(f"q{i}", [{"role": "user", "content": f"How many cubes in scene {i}?"}], 1, i)
            for i in range(args.requests)
        ]
        params = SamplingParams(n=1, temperature=1.0, max_tokens=64)
        teacher = EndpointTeacher(base_url=url, model="bench", api_key=None, max_concurrency=args.concurrency)
        ours(teacher, requests[:50], params)  # warm-up: connections, loop thread
        best_plain = best_ours = float("inf")
        for _ in range(args.rounds):
            best_plain = min(best_plain, asyncio.run(plain(url, requests, params, args.concurrency)))
            best_ours = min(best_ours, ours(teacher, requests, params))
        teacher.close()
    finally:
        proc.terminate()
        proc.wait()

    print(f"requests: {args.requests}")
    print(f"concurrency: {args.concurrency}")
    print(f"plain_async_openai_requests_per_s: {args.requests / best_plain:.0f}")
    print(f"endpoint_teacher_requests_per_s: {args.requests / best_ours:.0f}")
    print(f"ratio: {best_plain / best_ours:.3f}")


if __name__ == "__main__":
    main()
