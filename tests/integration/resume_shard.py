"""Sample a run of shards through the stage task's own code, in its own process, and die on request.

The kill-and-resume tests run this, let it SIGKILL itself at a chosen moment (or kill it from
outside), and run it again. It samples ``--shards`` shards with one Sampler, ``--at-once`` shard
tasks at a time like the sampling flow, then commits the manifest. It prints ``todo: N`` (problems
it has to generate) first, ``finished: PID`` for each problem it completes, and the shards'
summaries as JSON on its last line.

    python -m tests.integration.resume_shard --store DIR (--url URL | --model DIR) [--kill-at MOMENT]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from tasks.sampling import sample_shard
from tracemill.sampling.config import PromptConfig, SamplingConfig
from tracemill.sampling.stage import CHECKPOINT_TAG, CODE_VERSION, STAGE, Sampler, SamplesJob, sampler_for
from tracemill.stage import Stage, commit
from tracemill.store import Dataset, ShardInfo, Store
from tracemill.teachers.base import Generation, SampleRequest, Teacher
from tracemill.teachers.config import EndpointTeacherConfig

PROBLEMS_FP = "problems-fp"
SAMPLES_FP = "samples-fp"
MOMENTS = ["first-window", "mid-shard", "between-shards", "before-manifest"]


def config(n: int, every: int, at_once: int) -> SamplingConfig:
    return SamplingConfig(
        teacher=EndpointTeacherConfig(block="unused"),  # the teacher is built below, not from a block
        prompt="plain",
        custom_prompts=[PromptConfig(name="plain", text="{question}")],
        n=n,
        temperature=1.0,
        max_tokens=64,
        checkpoint_every_problems=every,
        checkpoint_every_s=3600,
        shards_at_once=at_once,
        max_failed_share=0.0,
    )


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(moment: str | None, samples: Dataset) -> None:
    """Patch the one call after (or before) which the process kills itself.

    Mid-shard and between shards it dies once the checkpoint writer has caught up (every problem this
    process finished is in a checkpoint part or a written shard), so what the store holds then is exactly
    what checkpointing promises, however slowly the writer ran on a loaded machine.
    """
    finish, write_part, write_shard = Sampler.finish, Sampler._write_part, Dataset.write_shard
    finished: set[str] = set()  # problems this process finished
    stored: set[str] = set()  # … and wrote to a checkpoint part or a shard

    def settle_then_die() -> None:
        deadline = time.monotonic() + 60
        while not finished <= stored and time.monotonic() < deadline:
            time.sleep(0.01)
        die()

    def finish_then_die(self: Sampler, request: SampleRequest, generations: list[Generation]) -> None:
        before = self._done
        finish(self, request, generations)
        if self._done > before:
            finished.add(request.key)
        if moment == "first-window" and finished:
            die()  # a problem finished, no checkpoint written yet
        if moment == "mid-shard" and len(finished) >= 4:
            settle_then_die()  # four problems finished, none of the six-problem shards whole: two windows

    def write_and_count(self: Sampler, shard: Any, problems: list[Any]) -> None:
        write_part(self, shard, problems)
        stored.update(p.problem_id for p in problems)

    def write_then_die(dataset: Dataset, index: int, table: pa.Table) -> ShardInfo:
        info = write_shard(dataset, index, table)
        if dataset == samples:
            stored.update(table["problem_id"].to_pylist())
            if moment == "between-shards":
                settle_then_die()  # a shard written, its checkpoints not cleared, the next shard under way
        return info

    Sampler.finish = finish_then_die  # type: ignore[method-assign]
    Sampler._write_part = write_and_count  # type: ignore[method-assign]
    Dataset.write_shard = write_then_die  # type: ignore[method-assign]
    if moment == "before-manifest":

        def commit_or_die(dataset: Dataset, *args: Any, **kwargs: Any) -> None:
            die()

        Dataset.commit = commit_or_die  # type: ignore[method-assign]


def teacher_of(args: argparse.Namespace) -> Teacher:
    if args.model:
        from tests.conftest import CPU_ENGINE
        from tracemill.teachers.offline import VllmTeacher

        return VllmTeacher(args.model, seed=0, **CPU_ENGINE)
    from tracemill.teachers.endpoint import EndpointTeacher

    return EndpointTeacher(base_url=args.url, model="teacher-m", api_key=None, max_concurrency=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--url", help="base URL of the OpenAI-compatible server")
    parser.add_argument("--model", help="local model folder for the vLLM engine")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--every", type=int, default=2, help="checkpoint every this many problems")
    parser.add_argument("--at-once", type=int, default=2, help="shard tasks at once")
    parser.add_argument("--kill-at", choices=MOMENTS)
    args = parser.parse_args()

    store = Store(args.store)
    problems = store.dataset("problems", PROBLEMS_FP, "problem")
    samples = store.dataset("samples", SAMPLES_FP, "sample")
    cfg = config(args.n, args.every, args.at_once)
    done = set(samples.shard_indices())
    saved = set()
    for shard in range(args.shards):
        checkpoints = samples.checkpoints(shard, CHECKPOINT_TAG)
        for part in [] if shard in done else checkpoints.shard_indices():
            saved |= {(r["problem_id"], r["sample_idx"]) for r in checkpoints.read_shard(part).to_pylist()}
    todo = sum(problems.read_shard(s).num_rows for s in range(args.shards) if s not in done)
    todo -= len({pid for pid, _ in saved if all((pid, i) in saved for i in range(args.n))})
    print(f"todo: {todo}", flush=True)
    arm(args.kill_at, samples)

    teacher = teacher_of(args)
    finish = Sampler.finish

    def finish_and_tell(self: Sampler, request: SampleRequest, generations: list[Generation]) -> None:
        before = self._done
        finish(self, request, generations)
        if self._done > before:
            print(f"finished: {request.key}", flush=True)

    Sampler.finish = finish_and_tell  # type: ignore[method-assign]
    sampler = sampler_for(cfg, teacher)
    try:
        with sampler, ThreadPoolExecutor(cfg.shards_at_once) as pool:
            summaries = list(
                pool.map(
                    lambda s: sample_shard.fn(SamplesJob(problems, samples, lambda: sampler), s), range(args.shards)
                )
            )
        missing = commit(
            Stage(STAGE, "sample", CODE_VERSION, cfg, (PROBLEMS_FP,)), [samples], args.shards, partial=True
        )
        assert not missing, missing
    finally:
        close = getattr(teacher, "close", None)
        if close:
            close()
    print(json.dumps(summaries), flush=True)


if __name__ == "__main__":
    main()
