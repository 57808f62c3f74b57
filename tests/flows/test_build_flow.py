"""The whole build on a real Prefect API: every stage with the real vLLM engine, cached reruns, the CLI, failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from blocks.teacher_endpoint import TeacherEndpoint
from flows import cli
from flows import sampling as sampling_flow
from flows.build import StageFailedError, build_dataset
from flows.problems import synthesize_problems
from tests.fake_openai import FakeOpenAI, Reply, prompt_of
from tests.flows.prefect_runs import artifacts, stage_task_states
from tracemill.build import BuildConfig, load_build_config
from tracemill.store import Store

ROOT = Path(__file__).resolve().parents[2]
ANSWER = r"<think>[a-z][a-z ]{2,12}</think>\n\*\*The answer is: \*\*[1-4]"


def _config(tmp_path: Path, tiny_model: str, cpu_engine: dict) -> BuildConfig:
    data = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    data["store"] = {"url": str(tmp_path / "store")}
    data["source"].update(num_scenes=4, scenes_per_shard=2, questions_per_scene=1, seed=3)
    data["sampling"].update(n=3, max_tokens=64, guided_regex=ANSWER, checkpoint_every_problems=2)
    data["filters"] = {"correct_only": False}  # keep wrong answers too, with their labels
    data["sampling"]["teacher"] = {"kind": "vllm", "model": tiny_model, **cpu_engine}
    return BuildConfig.model_validate(data)


def test_build_runs_every_stage_then_reruns_from_cache(
    prefect_api, demo_build_dir, tiny_model, cpu_engine, monkeypatch
):
    config = _config(demo_build_dir, tiny_model, cpu_engine)
    state = build_dataset(config=config, return_state=True)
    locations = state.result()

    store = Store(config.store.url)
    for stage, record in [("problems", "problem"), ("samples", "sample"), ("verdicts", "verdict"),
                          ("relabel", "relabel"), ("rejudged", "verdict")]:  # fmt: skip
        assert store.dataset(stage, Path(locations[stage]).name, record).is_complete(), stage
    problems = store.dataset("problems", Path(locations["problems"]).name, "problem").read()
    samples = store.dataset("samples", Path(locations["samples"]).name, "sample").read()
    assert samples.num_rows == 3 * problems.num_rows == 3 * 4 * 2  # (1 question + 'how many items') × 4 scenes
    kept = pq.read_table(Path(locations["kept"]))
    rejected = pq.read_table(Path(locations["rejected"]))
    assert kept.num_rows > 0 and kept.num_rows + rejected.num_rows == samples.num_rows  # kept, or dropped with a reason
    assert all(rejected.column("reason").to_pylist())
    assert "tracemill CLEVR counting demo" in Path(locations["card"]).read_text()
    exports = ["sft_all", "messages", "r1v", "weaver"] + (
        ["sft_correct"] if any(kept.column("correct").to_pylist()) else []
    )
    for name in exports:
        assert list(Path(locations[name]).parent.glob(Path(locations[name]).name)), name
    funnel = json.loads(Path(locations["funnel"]).read_text())
    assert funnel["per source"][0]["samples"] == samples.num_rows
    summary = artifacts(state)["build-summary"].data
    assert locations["samples"] in summary and locations["exports"] in summary

    # A rerun reuses every shard of every stage and never loads the engine.
    def no_engine(config):
        raise AssertionError("the engine must not be built when every shard is cached")

    monkeypatch.setattr(sampling_flow, "build_teacher", no_engine)
    again = build_dataset(config=config, return_state=True)
    assert again.result() == locations
    stages = stage_task_states(again)
    assert set(stages) == {"synthesize-problems", "sample-problems", "judge-samples", "filter-and-export"}
    for name, tasks in stages.items():
        shard_tasks = {task: s for task, s in tasks.items() if re.fullmatch(r"[a-z]+-\d{5}", task)}
        assert shard_tasks and set(shard_tasks.values()) == {"Cached"}, (name, tasks)


def test_a_failed_stage_names_the_stage_and_shard_and_the_rerun_resumes(prefect_api, tmp_path):
    with FakeOpenAI() as server:
        TeacherEndpoint(base_url=server.url, model="fake-teacher").save("build-test-teacher", overwrite=True)
        data = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
        data["store"] = {"url": str(tmp_path / "store")}
        data["source"].update(num_scenes=4, scenes_per_shard=2, questions_per_scene=1)
        data["sampling"] = {
            "teacher": {"kind": "endpoint", "block": "build-test-teacher", "max_retries": 0},
            "n": 2,
            "max_failed_share": 0.0,
            "checkpoint_every_problems": 2,
        }
        data["filters"] = {"require_reasoning": False, "correct_only": False}
        config = BuildConfig.model_validate(data)
        # Every request about the second shard's problems fails for good.
        problems = Path(synthesize_problems(source=config.source, store=config.store)).name
        shard1 = Store(config.store.url).dataset("problems", problems, "problem").read_shard(1)
        scenes = set(shard1.column("description").to_pylist())
        server.set_fault(lambda body, attempt: Reply(status=400) if any(s in prompt_of(body) for s in scenes) else None)
        with pytest.raises(StageFailedError, match=r"stage 'sampling' failed \(samples shard 1\)"):
            build_dataset(config=config)
        samples = Store(config.store.url).fingerprints("samples")
        assert samples == []  # no manifest for a dataset with a missing shard

        server.set_fault(None)
        locations = build_dataset(config=config)
        assert Store(config.store.url).dataset("samples", Path(locations["samples"]).name, "sample").is_complete()


def test_cli_runs_a_config_with_overrides_and_prints_the_locations(prefect_api, tmp_path, capsys):
    with FakeOpenAI() as server:
        TeacherEndpoint(base_url=server.url, model="fake-teacher").save("cli-test-teacher", overwrite=True)
        path = tmp_path / "build.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "name": "cli-test",
                    "source": {"kind": "clevr_procedural", "num_scenes": 2, "questions_per_scene": 1},
                    "store": {"url": str(tmp_path / "store")},
                    "sampling": {"teacher": {"kind": "endpoint", "block": "cli-test-teacher"}, "n": 1},
                    "filters": {"require_reasoning": False, "correct_only": False},
                }
            )
        )
        code = cli.main(["run", str(path), "--set", "sampling.n=3", "--set", "export.weaver=false"])
    assert code == 0
    out = capsys.readouterr().out
    locations = dict(
        line.strip().split(": ", 1)
        for line in out.split("where the build wrote its output:")[1].splitlines()
        if ": " in line
    )
    samples = Store(str(tmp_path / "store")).dataset("samples", Path(locations["samples"]).name, "sample").read()
    assert samples.num_rows == 3 * 2 * 2 and sorted(set(samples.column("sample_idx").to_pylist())) == [0, 1, 2]
    assert "weaver" not in locations and "sft_all" in locations
    assert "funnel" in out


def test_cli_reports_a_bad_override_with_the_field(tmp_path, capsys):
    path = tmp_path / "build.yaml"
    path.write_text(json.dumps({"sampling": {"teacher": {"kind": "vllm", "model": "m"}}}))
    assert cli.main(["run", str(path), "--set", "sampling.n=0"]) == 2
    err = capsys.readouterr().err
    assert "build.yaml" in err and "sampling.n" in err and "greater than or equal to 1" in err
    assert cli.main(["run", str(path), "--set", "sampling.nn=3"]) == 2
    assert "sampling.nn" in capsys.readouterr().err


def test_demo_config_is_a_complete_build_config():
    config = load_build_config(ROOT / "configs" / "demo.yaml")
    assert config.sampling.teacher.kind == "vllm" and config.sampling.guided_regex
    assert config.orchestration.sampling_on == "in_process"
