"""The store is the truth: damaged shards and exports of a real build are found and recomputed, and only they.

Builds run on the real Prefect API against the local OpenAI-compatible server, on a local folder
and on SeaweedFS S3.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import s3fs
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort

from blocks.teacher_endpoint import TeacherEndpoint
from flows import cli
from flows.build import build_dataset
from flows.verify import build_outputs, verify, verify_build
from tests.fake_openai import FakeOpenAI
from tests.flows.prefect_runs import stage_task_states
from tracemill.build import BuildConfig
from tracemill.verify import OK

SHARD_TASK = re.compile(r"[a-z]+-\d{5}")
COLUMNS = ["problem_id", "sample_idx", "seed", "response"]  # a recomputed sample differs only in its latency


def _config_data(store: dict, block: str) -> dict:
    return {
        "name": "repair-test",
        "source": {"kind": "clevr_procedural", "num_scenes": 4, "scenes_per_shard": 2, "questions_per_scene": 1},
        "store": store,
        "sampling": {"teacher": {"kind": "endpoint", "block": block}, "n": 2},
        "filters": {"require_reasoning": False, "correct_only": False},
    }


def _recomputed(state) -> dict[str, set[str]]:
    """Stage → its shard task runs that were not Cached; every shard task must be Completed or Cached."""
    stages = stage_task_states(state)
    assert set(stages) == {"synthesize-problems", "sample-problems", "judge-samples", "filter-and-export"}
    ran = {}
    for name, tasks in stages.items():
        shards = {task: s for task, s in tasks.items() if SHARD_TASK.fullmatch(task)}
        assert shards and set(shards.values()) <= {"Cached", "Completed"}, (name, tasks)
        ran[name] = {task for task, s in shards.items() if s != "Cached"}
    return ran


def _latest_build():
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["build-dataset"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    return run.state


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_damaged_or_lost_shard_is_recomputed_alone_and_verify_repairs_exports(prefect_api, tmp_path, capsys):
    with FakeOpenAI() as server:
        TeacherEndpoint(base_url=server.url, model="fake-teacher").save("repair-test-teacher", overwrite=True)
        data = _config_data({"url": str(tmp_path / "store")}, "repair-test-teacher")
        config = BuildConfig.model_validate(data)
        locations = build_dataset(config=config)
        samples = Path(locations["samples"])
        first = pq.read_table(samples / "part-00001.parquet", columns=COLUMNS)
        assert all(r.status == OK for r in verify_build(config))

        # (1) A samples shard truncated in place: the rerun recomputes that shard only, and commits it again.
        _truncate(samples / "part-00001.parquet")
        state = build_dataset(config=config, return_state=True)
        assert _recomputed(state) == {
            "synthesize-problems": set(), "sample-problems": {"samples-00001"}, "judge-samples": set(),
            "filter-and-export": set(),
        }  # fmt: skip
        assert pq.read_table(samples / "part-00001.parquet", columns=COLUMNS).equals(first)  # same seeds, same rows
        datasets, _ = build_outputs(config)
        sampled = dict(datasets)["samples"]
        assert sampled.is_current() and sampled.read().num_rows == 2 * 2 * 4

        # A config change downstream reads every samples shard.
        judged = build_dataset(
            config=config.model_copy(update={"judge": config.judge.model_copy(update={"timeout_s": 7})})
        )
        assert judged["verdicts"] != locations["verdicts"]

        # (2) A shard file deleted, its cache record still there: recomputed alone too.
        (samples / "part-00000.parquet").unlink()
        state = build_dataset(config=config, return_state=True)
        assert set().union(*_recomputed(state).values()) == {"samples-00000"}

        # (3) A published jsonl truncated, an export shard file too: verify names them and exits non-zero ...
        path = tmp_path / "build.yaml"
        path.write_text(yaml.safe_dump(data))
        exports = Path(locations["exports"])
        merged = (exports / "sft_all.jsonl").read_bytes()
        _truncate(exports / "sft_all.jsonl")
        _truncate(exports / "data" / "train-00001.parquet")
        capsys.readouterr()
        assert cli.main(["verify", str(path)]) == 1
        out = capsys.readouterr().out
        assert re.search(r"exports\s+corrupt\s+\d+\s+\d+\s+0\s+2", out), out
        assert re.search(r"samples\s+ok", out) and "sft_all.jsonl" in out and "train-00001.parquet" in out

        # ... and --repair deletes them and rebuilds exactly those: the export shard, then the merged file.
        assert cli.main(["verify", str(path), "--repair"]) == 0
        out = capsys.readouterr().out
        statuses = dict(re.findall(r"^(\w+)\s+(ok|missing|corrupt)\s", out.split("after the repair")[1], re.M))
        assert len(statuses) == 8 and set(statuses.values()) == {"ok"}, out
        assert _recomputed(_latest_build()) == {
            "synthesize-problems": set(), "sample-problems": set(), "judge-samples": set(),
            "filter-and-export": {"export-00001"},
        }  # fmt: skip
        assert (exports / "sft_all.jsonl").read_bytes() == merged
        assert cli.main(["verify", str(path)]) == 0


def test_a_truncated_shard_on_s3_is_recomputed_alone(prefect_api, s3_server, tmp_path):
    s3_server.save_block("repair-s3")
    with FakeOpenAI() as server:
        TeacherEndpoint(base_url=server.url, model="fake-teacher").save("repair-s3-teacher", overwrite=True)
        store = {"url": f"s3://{s3_server.bucket}/repair-test", "block": "repair-s3"}
        config = BuildConfig.model_validate(_config_data(store, "repair-s3-teacher"))
        locations = build_dataset(config=config)
        fs = s3fs.S3FileSystem(**s3_server.storage_options())
        shard = f"{locations['samples'][len('s3://') :]}/part-00000.parquet"
        whole = fs.cat_file(shard)
        fs.pipe_file(shard, whole[: len(whole) // 2])
        merged = f"{locations['exports'][len('s3://') :]}/sft_all.jsonl"
        fs.pipe_file(merged, fs.cat_file(merged)[:10])

        reports = {r.name: r for r in verify_build(config)}
        assert reports["samples"].status == reports["exports"].status == "corrupt"
        assert {r.status for name, r in reports.items() if name not in ("samples", "exports")} == {OK}

        # A rerun recomputes the truncated shard alone; the published file needs the repair.
        state = build_dataset(config=config, return_state=True)
        assert set().union(*_recomputed(state).values()) == {"samples-00000"}
        rows = [pq.read_table(pa.BufferReader(data), columns=COLUMNS) for data in (fs.cat_file(shard), whole)]
        assert rows[0].equals(rows[1])  # same seeds, same rows
        assert [r.name for r in verify_build(config) if r.status != OK] == ["exports"]
        assert verify(config, True, lambda c: build_dataset(config=c)) == 0
        assert set().union(*_recomputed(_latest_build()).values()) == set()
        assert len(fs.cat_file(merged)) > 10
