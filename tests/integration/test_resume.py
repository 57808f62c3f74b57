"""Kill -9 the sampling of a shard at different moments, rerun it, and get every sample exactly once.

The shard is sampled in a child process (tests/integration/resume_shard.py, the stage task's own
code) from the local OpenAI-compatible server in this process, which records every request: so
the rerun can be checked to ask for exactly the samples that no checkpoint holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI, Reply, echo, prompt_of
from tests.integration.resume_shard import PROBLEMS_FP, SAMPLES_FP
from tracemill.sampling import request_seed
from tracemill.store import Store

ROOT = Path(__file__).resolve().parents[2]
PROBLEMS, BATCH, N = 12, 3, 2  # four sub-batches of three problems, two samples each


def _run(store: Path, url: str, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.integration.resume_shard", "--store", str(store), "--url", url]
    command += ["--batch-size", str(BATCH), "--n", str(N), *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, proc: subprocess.Popen[str], what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the sampler exited ({proc.returncode}) before {what}:\n{proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {what} within {seconds}s")
        time.sleep(0.05)


def _question(i: int) -> str:
    return f"How many {i}?"  # conftest's problem_table


@pytest.mark.parametrize(
    ("finished", "kill_before"),
    [(0, None), (2, None), (4, "shard-write"), (4, "checkpoint-cleanup")],
    ids=["before-the-first-checkpoint", "mid-shard", "all-checkpointed-before-the-shard-write", "shard-written"],
)
def test_a_killed_shard_resumes_with_every_sample_exactly_once(tmp_path, problem_table, finished, kill_before):
    store = Store(str(tmp_path))
    store.dataset("problems", PROBLEMS_FP, "problem").write_shard(0, problem_table(PROBLEMS))
    samples = store.dataset("samples", SAMPLES_FP, "sample")
    checkpoints = samples.checkpoints(0, f"b{BATCH}")
    # The requests of the first unfinished sub-batch hang until the sampler is dead.
    hung = {_question(i) for i in range(finished * BATCH, (finished + 1) * BATCH)}
    release = threading.Event()

    def hang(body: dict, attempt: int) -> Reply | None:
        if prompt_of(body) in hung:
            release.wait(120)
        return None

    with FakeOpenAI(fault=hang) as server:
        try:
            if kill_before is None:
                first = _run(tmp_path, server.url)
                _wait_for(
                    lambda: (
                        len(checkpoints.shard_indices()) == finished
                        and any(prompt_of(r.body) in hung for r in server.received)
                    ),
                    first,
                    f"{finished} checkpoint(s) and a hung request",
                )
                first.kill()  # SIGKILL
            else:
                first = _run(tmp_path, server.url, "--kill-before", kill_before)
            first.wait(60)
            assert first.returncode == -9, first.stderr.read()
            assert checkpoints.shard_indices() == list(range(finished))
            assert samples.has_shard(0) == (kill_before == "checkpoint-cleanup")
        finally:
            release.set()

        server.set_fault(None)
        server.reset()
        second = _run(tmp_path, server.url)
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err
        summary = json.loads(out.strip().splitlines()[-1])

    # The rerun asked once for each sample of the unfinished sub-batches and for nothing else; where
    # the shard was already written, for nothing at all.
    batches = PROBLEMS // BATCH
    resumed, generated = (0, 0) if kill_before == "checkpoint-cleanup" else (finished, batches - finished)
    assert (summary["resumed_batches"], summary["generated_batches"]) == (resumed, generated)
    asked = Counter((prompt_of(r.body), r.body["seed"]) for r in server.received)
    todo = range(resumed * BATCH, (resumed + generated) * BATCH)
    assert set(asked) == {(_question(i), request_seed(0, f"p{i}") + j) for i in todo for j in range(N)}
    assert set(asked.values()) <= {1}
    rows = samples.read_shard(0).to_pylist()
    assert [(r["problem_id"], r["sample_idx"]) for r in rows] == [
        (f"p{i}", j) for i in range(PROBLEMS) for j in range(N)
    ]
    # The speed in the shard table counts only what this run generated, not what it read back.
    new = {f"p{i}" for i in todo}
    assert summary["generated_tokens"] == sum(r["completion_tokens"] for r in rows if r["problem_id"] in new)
    assert summary["completion_tokens"] == sum(r["completion_tokens"] for r in rows)
    for row in rows:
        assert row["error"] is None
        assert row["response"] == echo(_question(int(row["problem_id"][1:])), row["seed"], 0)
    assert checkpoints.shard_indices() == []  # cleared once the shard is whole
