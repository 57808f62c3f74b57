"""The sampling flow on a real Prefect API with the real vLLM engine (CPU build, tiny local model)."""

from __future__ import annotations

from pathlib import Path

import yaml

from blocks.teacher_endpoint import TeacherEndpoint
from flows import sampling as sampling_flow
from flows.problems import synthesize_problems
from flows.sampling import sample_problems
from tests.fake_openai import FakeOpenAI, Reply
from tests.flows.prefect_runs import artifacts, task_states
from tracemill.config import StoreConfig
from tracemill.problems.config import ClevrProceduralSource
from tracemill.sampling.config import SamplingConfig
from tracemill.sampling.stage import samples_stage
from tracemill.store import Store
from tracemill.teachers.config import EndpointTeacherConfig, VllmTeacherConfig

ANSWER = r"<think>[a-z][a-z ]{0,11}</think>\n\*\*The answer is: \*\*[0-9]"


def _states(state) -> list[str]:
    """States of the shard tasks, in shard order."""
    return [name for task, name in sorted(task_states(state).items()) if task.startswith("samples-")]


def test_sampling_flow_writes_samples_then_reuses_them(prefect_api, tmp_path, tiny_model, cpu_engine, monkeypatch):
    store = StoreConfig(url=str(tmp_path))
    source = ClevrProceduralSource(num_scenes=6, scenes_per_shard=3, questions_per_scene=1, seed=5)
    problems_fp = Path(synthesize_problems(source=source, store=store)).name
    config = SamplingConfig(
        teacher=VllmTeacherConfig(model=tiny_model, **cpu_engine),
        n=2,
        temperature=1.0,
        max_tokens=64,
        guided_regex=ANSWER,
        checkpoint_every_problems=2,
    )

    state = sample_problems(problems=problems_fp, sampling_config=config, store=store, return_state=True)
    uri = state.result()
    assert _states(state) == ["Completed", "Completed"]
    samples = Store(store.url).dataset("samples", Path(uri).name, "sample")
    table = samples.read()
    problems = Store(store.url).dataset("problems", problems_fp, "problem").read()
    assert table.num_rows == problems.num_rows * 2
    pairs = list(zip(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist(), strict=True))
    assert len(set(pairs)) == len(pairs)
    assert set(table.column("problem_id").to_pylist()) == set(problems.column("problem_id").to_pylist())
    assert all(r.startswith("**The answer is: **") for r in table.column("response").to_pylist())
    assert samples.manifest()["inputs"] == [problems_fp]
    assert not list((Path(uri) / "_checkpoints").glob("*/*.parquet"))  # checkpoints cleared once shards are whole

    by_key = artifacts(state)
    assert by_key["samples-progress"].data == 100.0
    shards_table = by_key["samples-shards"].data
    assert "completion_tokens" in shards_table and "tokens_per_s" in shards_table and "stop: " in shards_table
    assert "prompt_too_long" in shards_table and "resumed_problems" in shards_table

    # A rerun is all cached and never loads the engine; engine sizing and checkpointing keep the fingerprint.
    def no_engine(config):
        raise AssertionError("the engine must not be built when every shard is cached")

    monkeypatch.setattr(sampling_flow, "build_teacher", no_engine)
    resized = config.model_copy(
        update={
            "teacher": config.teacher.model_copy(update={"max_num_seqs": 8, "enable_prefix_caching": False}),
            "checkpoint_every_problems": 7,
            "shards_at_once": 1,
        }
    )
    again = sample_problems(problems=problems_fp, sampling_config=resized, store=store, return_state=True)
    assert again.result() == uri
    assert _states(again) == ["Cached", "Cached"]
    more = config.model_copy(update={"n": 3})
    assert samples_stage(more, problems_fp).fingerprint != Path(uri).name


def test_sampling_flow_with_an_endpoint_block_never_stores_its_key(prefect_api, tmp_path, capsys, caplog):
    key = "sk-flow-test-0123456789"
    with FakeOpenAI(default=Reply(reasoning="let me count")) as server:
        TeacherEndpoint(base_url=server.url, model="deepseek-reasoner", api_key=key, max_concurrency=4).save(
            "fake-deepseek", overwrite=True
        )
        store = StoreConfig(url=str(tmp_path))
        source = ClevrProceduralSource(num_scenes=4, scenes_per_shard=2, questions_per_scene=1, seed=2)
        problems_uri = synthesize_problems(source=source, store=store)
        config = SamplingConfig(
            teacher=EndpointTeacherConfig(block="fake-deepseek", supports_n=True), prompt="clevr_v1", n=3
        )
        state = sample_problems(
            problems=Path(problems_uri).name, sampling_config=config, store=store, return_state=True
        )
        uri = state.result()
        assert _states(state) == ["Completed", "Completed"]
        problems = Store(store.url).dataset("problems", Path(problems_uri).name, "problem").read()
        assert len(server.received) == problems.num_rows  # n=3 in one request per problem
        assert {r.headers["authorization"] for r in server.received} == {f"Bearer {key}"}
        table = Store(store.url).dataset("samples", Path(uri).name, "sample").read()
        assert table.num_rows == 3 * problems.num_rows and table.column("error").null_count == table.num_rows
        assert set(table.column("reasoning").to_pylist()) == {"let me count"}
        assert set(table.column("teacher").to_pylist()) == {"deepseek-reasoner"}

        # The CLI: the same config from a build YAML, the problems dataset by location; all cached.
        build = tmp_path / "build.yaml"
        build.write_text(yaml.safe_dump({"store": {"url": str(tmp_path)}, "sampling": config.model_dump(mode="json")}))
        sampling_flow.main(["--config", str(build), "--problems", problems_uri])
        assert capsys.readouterr().out.strip() == f"samples dataset: {uri}"
        assert len(server.received) == problems.num_rows

    stored = [str(a.data) for a in artifacts(state).values()] + [
        p.read_bytes().decode("latin-1") for p in Path(uri).rglob("*") if p.is_file()
    ]
    assert stored and not any(key in text for text in stored)  # artifacts, manifest, Parquet and its metadata
    assert key not in caplog.text
