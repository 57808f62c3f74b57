"""The scores stage in the build on a real Prefect API: a reward model, a process reward model and an LM judge
(two verdicts per sample) on the real vLLM CPU engine, the Weaver export read back, and a cached rerun."""

from __future__ import annotations

import re
from pathlib import Path

import datasets
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from flows import scores as scores_flow
from flows.build import build_dataset
from tests.flows.prefect_runs import stage_task_states
from tests.flows.test_build_flow import _config
from tracemill.judging.llm_judge import VERDICT_REGEX
from tracemill.store import Store


def test_build_scores_every_sample_and_exports_weaver_columns(
    prefect_api, demo_build_dir, tiny_model, reward_model, cpu_engine, monkeypatch
):
    config = _config(demo_build_dir, tiny_model, cpu_engine)  # after test_build_flow: its stages are reused
    engine = {"kv_cache_memory_bytes": 128 * 1024**2, "enforce_eager": True, "enable_chunked_prefill": False,
              "max_num_batched_tokens": 4096, "max_num_seqs": 16}  # fmt: skip
    rm = {"model": reward_model, "dtype": "float32", "max_length": 512, "engine": engine}
    judge = {"kind": "lm_judge", "name": "judge", "teacher": {"kind": "vllm", "model": tiny_model, **cpu_engine},
             "verdicts_per_sample": 2, "max_tokens": 16, "guided_regex": VERDICT_REGEX}  # fmt: skip
    verifiers = [{"kind": "reward_model", "name": "rm", **rm}, {"kind": "process_reward_model", "name": "prm", **rm}]
    config = config.model_validate({**config.model_dump(), "scores": {"verifiers": [*verifiers, judge]}})
    state = build_dataset(config=config, return_state=True)
    locations = state.result()

    store = Store(config.store.url)
    samples = store.dataset("samples", Path(locations["samples"]).name, "sample").read()
    table = store.dataset("scores", Path(locations["scores"]).name, "score").read()
    assert table.num_rows == 3 * samples.num_rows  # one row per sample and verifier
    rows = table.to_pylist()
    assert all(0.0 < r["score"] < 1.0 for r in rows if r["kind"] == "reward_model")
    assert all(r["step_scores"] and r["min_score"] == min(r["step_scores"]) for r in rows if r["verifier"] == "prm")
    assert all(len(r["verdicts"]) == 2 for r in rows if r["kind"] == "lm_judge")

    weaver = datasets.load_dataset("parquet", data_files={"train": locations["weaver"]}, split="train")
    for column in ["rm_scores", "prm_min_scores", "prm_max_scores", "prm_avg_scores", "prm_step_scores",
                   "judge_verdicts"]:  # fmt: skip
        assert column in weaver.column_names
    for row in weaver:
        assert len(row["rm_scores"]) == len(row["samples"]) == len(row["judge_verdicts"])
        assert all(v in (0.0, 1.0) for verdicts in row["judge_verdicts"] for v in verdicts)

    card = Path(locations["card"]).read_text()
    assert "## What the verifiers are worth" in card
    assert all(re.search(rf"\| {name} \| {kind} \| \d+ \|", card) for name, kind in
               [("rm", "reward_model"), ("prm", "process_reward_model"), ("judge", "lm_judge")])  # fmt: skip
    with get_client(sync_client=True) as client:  # the scores subflow's artifact: the newest (other builds made some)
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["verifier-worth"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    worth = str(artifact.data)
    assert all(name in worth for name in ("rm", "prm", "judge"))

    # A rerun reuses every scores shard and builds no verifier.
    def no_engine(*args, **kwargs):
        raise AssertionError("no verifier may be built when every shard is cached")

    monkeypatch.setattr(scores_flow, "build_teacher", no_engine)
    monkeypatch.setattr("tracemill.scoring.pooling.PoolingScorer", no_engine)
    again = build_dataset(config=config, return_state=True)
    assert again.result() == locations
    tasks = stage_task_states(again)["score-samples"]
    shard_tasks = {task: s for task, s in tasks.items() if re.fullmatch(r"scores-\d{5}", task)}
    assert shard_tasks and set(shard_tasks.values()) == {"Cached"}
