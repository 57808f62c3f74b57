"""End to end, the way a user runs tracemill: a real `prefect server start`, work pools created from
infra/, `prefect deploy`, one process worker per pool, blocks from `python -m blocks.bootstrap`, and
a flow run triggered through the API exactly as the UI's "Custom run" form does.

One shard meets an injected transient store fault (a ``sitecustomize`` put on that flow run's
PYTHONPATH through its job variables, so no production code knows about it): its task run must go
through AwaitingRetry to Completed. Everything the test starts is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import s3fs
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName
from prefect.settings import PREFECT_API_URL, temporary_settings

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
STORE_BLOCK = "e2e-store"


@dataclass(frozen=True)
class Scenario:
    """What the test deploys and triggers; switching flows is a change of scenario, not of harness."""

    deployments: tuple[str, ...]  # `prefect deploy --name` arguments
    deployment: str  # flow name/deployment name that the UI triggers
    parameters: Callable[[str], dict[str, Any]]  # store URL -> the run's parameters
    artifacts: frozenset[str]  # artifact keys the run must publish
    faulty_shard: str  # task run name of the shard that meets the injected fault


def _store(url: str) -> dict[str, Any]:
    return {"url": url, "block": STORE_BLOCK}


SYNTHESIZE = Scenario(
    deployments=("synthesize-problems", "gpu"),
    deployment="synthesize-problems/synthesize-problems",
    parameters=lambda url: {
        "source": {"kind": "clevr_procedural", "num_scenes": 6, "scenes_per_shard": 2, "seed": 5},
        "store": _store(url),
    },
    artifacts=frozenset({"problems-progress", "problems-shards", "problems-summary"}),
    faulty_shard="problems-00001",
)

SCENARIO = SYNTHESIZE

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Services:
    """Processes started for the test, each in its own session, each logging to a file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append((proc, log))
        return proc

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-tail:]}" for _, log in self.procs)

    def stop(self) -> None:
        for proc, _ in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass(frozen=True)
class PrefectServer:
    api_url: str
    env: dict[str, str]  # for the CLI and the workers: this server, a home of their own
    services: Services

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [PREFECT, "--no-prompt", *args], env=env or self.env, cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` on SQLite and a free loopback port, with its own PREFECT_HOME."""
    root = tmp_path_factory.mktemp("e2e")
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    port = _free_port()
    services = Services(root)
    server_env = {
        **base,
        "PREFECT_HOME": str(root / "server-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    server = services.start(
        "server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], server_env
    )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_for_health(api_url, server, services, seconds=240)
        env = {
            **base,
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(root / "client-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "TRACEMILL_HOME": str(ROOT),  # the pull step of deployments/prefect.yaml
        }
        yield PrefectServer(api_url, env, services)
    finally:
        services.stop()


def _wait_for_health(api_url: str, proc: subprocess.Popen[bytes], services: Services, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}:\n{services.logs()}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"prefect server did not answer within {seconds}s:\n{services.logs()}")


def _wait_for_final_state(client: SyncPrefectClient, flow_run_id: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(1)
    return client.read_flow_run(flow_run_id)


def test_ui_triggered_run_on_worker_pools(prefect_server, s3_server, tmp_path):
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
        server.services.start(
            f"worker-{pool}", [PREFECT, "worker", "start", "--pool", pool, "--name", f"e2e-{pool}"], server.env
        )

    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(FAULT_HOOK)
    marker = tmp_path / "fault-injected"
    stage, shard = SCENARIO.faulty_shard.rsplit("-", 1)
    store_url = f"s3://{s3_server.bucket}/e2e"

    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(SCENARIO.deployment)
        # POST /deployments/{id}/create_flow_run: what the UI's custom-run form sends.
        run = client.create_flow_run_from_deployment(
            deployment.id,
            parameters=SCENARIO.parameters(store_url),
            job_variables={
                "env": {
                    "PYTHONPATH": str(tmp_path / "hook"),
                    "TRACEMILL_TEST_FAULT": f"{stage}:{int(shard)}",
                    "TRACEMILL_TEST_FAULT_MARKER": str(marker),
                }
            },
        )
        run = _wait_for_final_state(client, run.id, seconds=420)
        logs = "\n".join(log.message for log in client.read_logs())
        assert run.state is not None and run.state.is_completed(), (
            f"{run.state}\n{logs[-6000:]}\n{server.services.logs()}"
        )

        # The retry the UI shows: the faulty shard waited for its retry, then completed; no other did.
        assert marker.exists(), "the injected fault never fired"
        shard_runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_=f"{stage}-0")))
        history = {
            r.name: [s.name for s in sorted(client.read_task_run_states(r.id), key=lambda s: s.timestamp)]
            for r in shard_runs
        }
        assert "AwaitingRetry" in history[SCENARIO.faulty_shard], history
        assert history[SCENARIO.faulty_shard][-1] == "Completed", history
        assert all("AwaitingRetry" not in h for name, h in history.items() if name != SCENARIO.faulty_shard)

        artifacts = client.read_artifacts()  # this server holds this test's runs only
        assert SCENARIO.artifacts <= {a.key for a in artifacts}, [a.key for a in artifacts]

    # The dataset is in the S3 server, complete, and written by the worker's flow run.
    fs = s3fs.S3FileSystem(**s3_server.storage_options())
    manifests = fs.glob(f"{s3_server.bucket}/e2e/problems/*/_manifest.json")
    assert len(manifests) == 1, manifests
    manifest = json.loads(fs.cat_file(manifests[0]))
    assert len(manifest["shards"]) == 3 and manifest["rows"] > 0
    assert fs.glob(f"{s3_server.bucket}/e2e/_prefect/*"), "task result records belong in the store"

    # The S3 secret went into the block only: not into the bootstrap's output, the logs or the workers' output.
    for text in (bootstrap.stdout, bootstrap.stderr, logs, server.services.logs(tail=10**9)):
        assert s3_server.secret_key not in text
