"""Kill -9 a sampling run at different moments, rerun it, and get every sample exactly once.

The run (tests/integration/resume_shard.py: the stage task's own code over three shards, two
shard tasks at once, one Sampler, then the manifest) kills itself at a chosen moment: during the
first checkpoint window, mid-shard, between shards (a shard written, its checkpoints not cleared,
the next under way), and after the last shard before the manifest. The rerun must finish with
exactly one row per (problem_id, sample_idx), redo at most one checkpoint window of finished
problems, and (on the endpoint, whose server records every request) ask for exactly the samples
no checkpoint or shard holds, with the same seeds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI, echo, prompt_of
from tests.integration.resume_shard import MOMENTS, PROBLEMS_FP, SAMPLES_FP
from tracemill.records import PROBLEM, to_table
from tracemill.sampling.stage import CHECKPOINT_TAG
from tracemill.seeds import request_seed
from tracemill.store import Dataset, Store

ROOT = Path(__file__).resolve().parents[2]
SHARDS, PER_SHARD, N, EVERY = 3, 6, 2, 2


def _problems(store: Store) -> None:
    problems = store.dataset("problems", PROBLEMS_FP, "problem")
    for shard in range(SHARDS):
        rows = [
            {"problem_id": f"p{i}", "source": "t", "split": "train", "question": f"How many {i}?", "answer": "1",
             "answer_type": "integer"}
            for i in range(shard * PER_SHARD, (shard + 1) * PER_SHARD)
        ]  # fmt: skip
        problems.write_shard(shard, to_table(rows, PROBLEM))


def _run(store: Path, teacher: list[str], kill_at: str | None = None) -> tuple[int, list[str], str]:
    command = [sys.executable, "-m", "tests.integration.resume_shard", "--store", str(store), *teacher]
    command += ["--shards", str(SHARDS), "--n", str(N), "--every", str(EVERY), "--at-once", "2"]
    if kill_at:
        command += ["--kill-at", kill_at]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def _saved(samples: Dataset) -> set[str]:
    """Problems whose every sample a shard or a checkpoint holds."""
    have: set[tuple[str, int]] = set()
    for shard in range(SHARDS):
        if samples.has_shard(shard):
            have |= {(r["problem_id"], r["sample_idx"]) for r in samples.read_shard(shard).to_pylist()}
            continue
        checkpoints = samples.checkpoints(shard, CHECKPOINT_TAG)
        for part in checkpoints.shard_indices():
            have |= {(r["problem_id"], r["sample_idx"]) for r in checkpoints.read_shard(part).to_pylist()}
    return {pid for pid, _ in have if all((pid, i) in have for i in range(N))}


def _killed_at(moment: str, store: Path, teacher: list[str]) -> set[str]:
    """Run until the moment, check what the store holds then; returns the problems saved."""
    samples = Store(str(store)).dataset("samples", SAMPLES_FP, "sample")
    before = _saved(samples)
    code, out, err = _run(store, teacher, moment)
    assert code == -9, err
    assert out and out[0].startswith("todo: ")
    finished = {line.split()[1] for line in out if line.startswith("finished: ")}
    saved = _saved(samples)
    written = [s for s in range(SHARDS) if samples.has_shard(s)]
    assert not samples.is_complete()
    if moment == "first-window":
        assert saved == before and not written
    if moment == "between-shards":
        assert written and not all(samples.has_shard(s) for s in range(SHARDS))
    if moment == "before-manifest":
        assert written == list(range(SHARDS))
    # At most one checkpoint window of finished problems is lost, so at most that is generated again.
    assert len(finished - saved) <= EVERY, (moment, sorted(finished - saved))
    return saved


def _check_complete(store: Path) -> list[dict]:
    samples = Store(str(store)).dataset("samples", SAMPLES_FP, "sample")
    assert samples.is_complete()
    rows = samples.read().to_pylist()
    assert [(r["problem_id"], r["sample_idx"]) for r in rows] == [
        (f"p{i}", j) for i in range(SHARDS * PER_SHARD) for j in range(N)
    ]
    for row in rows:
        assert row["error"] is None and row["seed"] == request_seed(0, row["problem_id"]) + row["sample_idx"]
    assert not any((Path(samples.path) / "_checkpoints").glob("*/*.parquet"))  # cleared once shards are whole
    return rows


@pytest.mark.parametrize("moment", MOMENTS)
def test_an_endpoint_run_killed_at_any_moment_resumes_with_every_sample_exactly_once(tmp_path, moment):
    store = Store(str(tmp_path))
    _problems(store)
    with FakeOpenAI() as server:
        teacher = ["--url", server.url]
        saved = _killed_at(moment, tmp_path, teacher)
        server.reset()
        code, out, err = _run(tmp_path, teacher)
        assert code == 0, err
    assert out[0] == f"todo: {SHARDS * PER_SHARD - len(saved)}"
    summaries = json.loads(out[-1])
    assert sum(s["generated_problems"] for s in summaries) == SHARDS * PER_SHARD - len(saved)
    # The rerun asked once for each sample that nothing held, with its own seed, and for nothing else.
    asked = Counter((prompt_of(r.body), r.body["seed"]) for r in server.received)
    missing = [i for i in range(SHARDS * PER_SHARD) if f"p{i}" not in saved]
    assert set(asked) == {(f"How many {i}?", request_seed(0, f"p{i}") + j) for i in missing for j in range(N)}
    assert set(asked.values()) <= {1}
    for row in _check_complete(tmp_path):
        assert row["response"] == echo(f"How many {row['problem_id'][1:]}?", row["seed"], 0)


@pytest.mark.vllm
def test_a_vllm_run_killed_at_every_moment_in_turn_resumes_with_every_sample_exactly_once(tmp_path, tiny_model):
    """One run per moment, each resuming the last (the engine loads once per run), then one to finish."""
    store = Store(str(tmp_path))
    _problems(store)
    teacher = ["--model", tiny_model]
    saved: set[str] = set()
    for moment in MOMENTS:
        now = _killed_at(moment, tmp_path, teacher)
        assert now >= saved  # nothing saved is lost
        saved = now
    code, out, err = _run(tmp_path, teacher)
    assert code == 0, err
    assert out[0] == f"todo: {SHARDS * PER_SHARD - len(saved)}"
    _check_complete(tmp_path)
