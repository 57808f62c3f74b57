"""End to end, the way a user runs tracemill: a real `prefect server start`, work pools created from
infra/, `prefect deploy`, one process worker per pool, blocks from `python -m blocks.bootstrap`, and
a `build-dataset` run triggered through the API exactly as the UI's "Custom run" form does. Its
sampling fans out to the `gpu` pool, whose worker runs the real vLLM engine (CPU build) on a tiny
local model; every dataset lands in a real S3 server (SeaweedFS).

One shard meets an injected transient store fault (a ``sitecustomize`` put on that flow run's
PYTHONPATH through its job variables, so no production code knows about it): its task run must go
through AwaitingRetry to Completed. The same build triggered again must find every shard done.
Everything the test starts is stopped at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import s3fs
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.integration.prefect_server import ROOT, all_logs, wait_for_final_state

STORE_BLOCK = "e2e-store"


@dataclass(frozen=True)
class Scenario:
    """What the test deploys and triggers; switching flows is a change of scenario, not of harness."""

    deployments: tuple[str, ...]  # `prefect deploy --name` arguments
    deployment: str  # flow name/deployment name that the UI triggers
    parameters: Callable[[str, dict[str, Any]], dict[str, Any]]  # (store URL, vLLM teacher) -> the run's parameters
    artifacts: frozenset[str]  # artifact keys the run must publish
    faulty_shard: str  # task run name of the shard that meets the injected fault


def _store(url: str) -> dict[str, Any]:
    return {"url": url, "block": STORE_BLOCK}


# The tiny model's text is random: guided decoding keeps its answers in the CLEVR answer format, short
# enough that most samples finish within max_tokens.
ANSWER_FORMAT = r"<think>[a-z][a-z ]{3,20}</think>\n\*\*The answer is: \*\*[1-9]"


def _build_parameters(url: str, teacher: dict[str, Any]) -> dict[str, Any]:
    """A small BuildConfig, as the UI's form sends it: 2 problem shards, each sampled by its own GPU-pool run."""
    return {
        "config": {
            "name": "e2e-clevr",
            "source": {
                "kind": "clevr_procedural",
                "num_scenes": 4,
                "scenes_per_shard": 2,
                "questions_per_scene": 1,
                "seed": 5,
            },
            "store": _store(url),
            "sampling": {
                "teacher": teacher,
                "prompt": "clevr_v2",
                "n": 2,
                "temperature": 1.0,
                "max_tokens": 48,
                "guided_regex": ANSWER_FORMAT,
            },
            "relabel": {"min_votes": 2, "min_share": 0.5},
            # Random answers are rarely right: keep wrong ones too, so that every export has rows.
            "filters": {"correct_only": False},
            "orchestration": {"sampling_on": "gpu_pool", "shards_per_run": 1},
        }
    }


BUILD = Scenario(
    deployments=("clevr-nightly", "gpu"),
    deployment="build-dataset/clevr-nightly",
    parameters=_build_parameters,
    artifacts=frozenset(
        {
            "build-summary",
            "problems-shards",
            "samples-shards",
            "judging-accuracy",
            "judging-decided-by",
            "judging-summary",
            "filter-funnel",
            "dataset-card",
        }
    ),
    faulty_shard="problems-00001",
)

SCENARIO = BUILD
# Stages whose shards are task runs named `{stage}-{shard:05d}`, in the build or in its child runs.
SHARD_STAGES = ("problems", "samples", "verdicts", "relabel", "rejudged", "filter", "export")

# Put on the flow run's PYTHONPATH: the first write of the named shard raises the transient error a
# dropped connection to the store raises; the marker file makes it happen once across processes.
FAULT_HOOK = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from tracemill import store

    _stage, _shard = os.environ["TRACEMILL_TEST_FAULT"].split(":")
    _marker = Path(os.environ["TRACEMILL_TEST_FAULT_MARKER"])
    _write = store.Dataset.write_shard

    def _flaky_write(self, index, table):
        if self.stage == _stage and index == int(_shard) and not _marker.exists():
            _marker.write_text("injected")
            raise store.StoreUnavailableError(self.shard_path(index), "injected fault: connection reset by peer")
        return _write(self, index, table)

    store.Dataset.write_shard = _flaky_write
    """
)


def _children(client: SyncPrefectClient, parent: Any) -> list[Any]:
    """The subflow runs of a flow run: its stages, and the runs it sent to the sampling deployment."""
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent]))
    )


def _shard_histories(client: SyncPrefectClient, flow_run_ids: list[Any]) -> dict[str, list[str]]:
    """State names, in order, of every shard task run (``{stage}-{shard:05d}``) of these flow runs."""
    runs = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=flow_run_ids)))
    shard_runs = [r for r in runs if re.fullmatch(r"[a-z]+-\d{5}", r.name)]
    names = [r.name for r in shard_runs]
    assert len(names) == len(set(names)), f"a shard ran twice: {sorted(names)}"
    return {
        r.name: [s.name for s in sorted(client.read_task_run_states(r.id), key=lambda s: s.timestamp)]
        for r in shard_runs
    }


def _trigger(client: SyncPrefectClient, deployment_id: Any, parameters: dict[str, Any], env: dict[str, str]) -> Any:
    """POST /deployments/{id}/create_flow_run: what the UI's custom-run form sends."""
    return client.create_flow_run_from_deployment(deployment_id, parameters=parameters, job_variables={"env": env})


def test_ui_triggered_build_samples_on_the_gpu_pool(prefect_server, s3_server, tiny_model, cpu_engine, tmp_path):
    server = prefect_server
    # The operator's set-up, command for command as in the README.
    server.cli(
        "work-pool", "create", "cpu", "--type", "process", "--base-job-template", "infra/work-pools/cpu-process.json"
    )
    server.cli(
        "work-pool", "create", "gpu", "--type", "process", "--base-job-template", "infra/work-pools/gpu-process.json"
    )
    server.cli("work-pool", "set-concurrency-limit", "gpu", "1")
    bootstrap = subprocess.run(
        [sys.executable, "-m", "blocks.bootstrap", "--store-block", STORE_BLOCK],
        env={
            **server.env,
            "TRACEMILL_S3_ENDPOINT_URL": s3_server.endpoint_url,
            "TRACEMILL_S3_ACCESS_KEY_ID": s3_server.access_key,
            "TRACEMILL_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bootstrap.returncode == 0, bootstrap.stderr
    assert f"ObjectStore {STORE_BLOCK!r} saved" in bootstrap.stdout
    deploy_args = [arg for name in SCENARIO.deployments for arg in ("--name", name)]
    server.cli("deploy", "--prefect-file", "deployments/prefect.yaml", *deploy_args)
    for pool in ("cpu", "gpu"):
        server.worker(pool, f"e2e-{pool}")

    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(FAULT_HOOK)
    marker = tmp_path / "fault-injected"
    stage, shard = SCENARIO.faulty_shard.rsplit("-", 1)
    store_url = f"s3://{s3_server.bucket}/e2e"
    parameters = SCENARIO.parameters(store_url, {"kind": "vllm", "model": tiny_model, **cpu_engine})

    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(SCENARIO.deployment)
        sampling_deployment = client.read_deployment_by_name("sample-problems/gpu")
        fault = {
            # The hook goes before whatever path the worker had, not instead of it.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "hook"), os.environ.get("PYTHONPATH")])),
            "TRACEMILL_TEST_FAULT": f"{stage}:{int(shard)}",
            "TRACEMILL_TEST_FAULT_MARKER": str(marker),
        }
        build = wait_for_final_state(client, _trigger(client, deployment.id, parameters, fault).id, seconds=540)
        assert build.state is not None and build.state.is_completed(), (
            f"{build.state}\n{''.join(log.message + chr(10) for log in all_logs(client))[-6000:]}\n"
            f"{server.services.logs()}"
        )
        assert build.work_pool_name == "cpu"

        # Sampling went to the gpu pool: one run of sample-problems/gpu per chunk of one shard, each a
        # child of the build, each picked up by the gpu pool's worker.
        children = _children(client, build.id)
        sampling_runs = [r for r in children if r.deployment_id == sampling_deployment.id]
        assert sorted(tuple(r.parameters["shards"]) for r in sampling_runs) == [(0,), (1,)], sampling_runs
        for run in sampling_runs:
            assert run.work_pool_name == "gpu" and run.state is not None and run.state.is_completed(), run
            messages = [
                log.message for log in all_logs(client, LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
            ]
            assert f"Worker 'e2e-gpu' submitting flow run '{run.id}'" in messages, messages[:20]
        flow_runs = [build.id, *(r.id for r in children)]
        history = _shard_histories(client, flow_runs)
        assert set(history) == {f"{name}-{index:05d}" for name in SHARD_STAGES for index in (0, 1)}, sorted(history)
        assert all(h[-1] == "Completed" for h in history.values()), history

        # The retry the UI shows: the faulty shard waited for its retry, then completed; no other did.
        assert marker.exists(), "the injected fault never fired"
        assert "AwaitingRetry" in history[SCENARIO.faulty_shard], history
        assert all("AwaitingRetry" not in h for name, h in history.items() if name != SCENARIO.faulty_shard), history

        artifacts = client.read_artifacts()  # this server holds this test's runs only
        assert SCENARIO.artifacts <= {a.key for a in artifacts}, [a.key for a in artifacts]

        # The same build again: every shard is found done (Cached), and no GPU run is sent at all.
        again = wait_for_final_state(client, _trigger(client, deployment.id, parameters, {}).id, seconds=300)
        assert again.state is not None and again.state.is_completed(), again.state
        rerun_children = _children(client, again.id)
        assert not [r for r in rerun_children if r.deployment_id == sampling_deployment.id], rerun_children
        rerun = _shard_histories(client, [again.id, *(r.id for r in rerun_children)])
        assert set(rerun) == {name for name in history if not name.startswith("samples-")}, sorted(rerun)
        assert all(h[-1] == "Cached" for h in rerun.values()), rerun
        logs = "\n".join(log.message for log in all_logs(client))

    # The dataset is in the S3 server: every stage's manifest, the kept and rejected rows, the exports.
    fs = s3fs.S3FileSystem(**s3_server.storage_options())
    root = f"{s3_server.bucket}/e2e"
    manifests = {path.split("/")[-3]: path for path in fs.glob(f"{root}/*/*/_manifest.json")}
    stages = {"problems", "samples", "verdicts", "relabel", "rejudged", "kept", "rejected", "exports"}
    assert set(manifests) == stages, manifests
    assert len(fs.glob(f"{root}/*/*/_manifest.json")) == len(manifests), "a rerun wrote a second dataset"
    samples = json.loads(fs.cat_file(manifests["samples"]))
    assert len(samples["shards"]) == 2 and samples["rows"] == 2 * json.loads(fs.cat_file(manifests["problems"]))["rows"]
    kept = json.loads(fs.cat_file(manifests["kept"]))
    assert kept["rows"] > 0, kept
    exports = fs.glob(f"{root}/exports/*/*")
    names = {path.split("/")[-1] for path in exports}
    assert {"README.md", "funnel.json", "data", "sft_all", "weaver", "hf_dataset"} <= names, names
    assert fs.glob(f"{root}/exports/*/data/train-*.parquet"), exports
    assert fs.glob(f"{root}/_prefect/*"), "task result records belong in the store"

    # The S3 keys went into the block only: not into the bootstrap's output, the logs or the workers' output.
    for text in (bootstrap.stdout, bootstrap.stderr, logs, server.services.logs(tail=10**9)):
        assert s3_server.secret_key not in text
        assert s3_server.access_key not in text
