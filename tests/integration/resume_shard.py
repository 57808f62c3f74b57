"""Sample one shard with the endpoint teacher through the stage task's own code, in its own process.

The kill-and-resume test runs this, kills it with SIGKILL, and runs it again. It prints the
shard's summary as JSON on its last line.

    python -m tests.integration.resume_shard --store DIR --url URL [--kill-before shard-write]
"""

from __future__ import annotations

import argparse
import json
import os
import signal

import pyarrow as pa

from tasks.sampling import sample_shard
from tracemill.store import Dataset, ShardInfo, Store
from tracemill.teachers.config import EndpointTeacherConfig, PromptConfig, SamplingConfig
from tracemill.teachers.endpoint import EndpointTeacher

PROBLEMS_FP = "problems-fp"
SAMPLES_FP = "samples-fp"


def config(batch_size: int, n: int) -> SamplingConfig:
    return SamplingConfig(
        teacher=EndpointTeacherConfig(block="unused"),  # the teacher is built below, not from a block
        prompt="plain",
        custom_prompts=[PromptConfig(name="plain", text="{question}")],
        n=n,
        max_tokens=64,
        batch_size=batch_size,
        max_failed_share=0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--url", required=True, help="base URL of the OpenAI-compatible server")
    parser.add_argument("--batch-size", type=int, default=3)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument(
        "--kill-before",
        choices=["shard-write", "checkpoint-cleanup"],
        help="SIGKILL itself right before writing the finished shard, or before clearing its checkpoints",
    )
    args = parser.parse_args()

    store = Store(args.store)
    samples = store.dataset("samples", SAMPLES_FP, "sample")
    if args.kill_before == "shard-write":
        write_shard = Dataset.write_shard

        def write_or_die(dataset: Dataset, index: int, table: pa.Table) -> ShardInfo:
            if dataset == samples:
                os.kill(os.getpid(), signal.SIGKILL)
            return write_shard(dataset, index, table)

        Dataset.write_shard = write_or_die  # type: ignore[method-assign]
    elif args.kill_before == "checkpoint-cleanup":
        delete = Dataset.delete

        def delete_or_die(dataset: Dataset) -> None:
            if samples.has_shard(0):
                os.kill(os.getpid(), signal.SIGKILL)
            delete(dataset)

        Dataset.delete = delete_or_die  # type: ignore[method-assign]
    teacher = EndpointTeacher(base_url=args.url, model="teacher-m", api_key=None, max_concurrency=4)
    try:
        summary = sample_shard.fn(
            store.dataset("problems", PROBLEMS_FP, "problem"),
            samples,
            0,
            config(args.batch_size, args.n),
            lambda: teacher,
        )
    finally:
        teacher.close()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
