"""The single-machine recipe, as a user runs it: `infra/stack.sh up`, a run, `infra/stack.sh down`.

`up` must leave a working stack (the server on PostgreSQL when it is installed, the S3 bucket, the
pools, blocks, deployments with their schedule taken up by the scheduler, a worker per pool) that
runs a deployment into the bucket; `down` must leave no process of it behind and free its ports.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import s3fs
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.conftest import _free_ports
from tests.integration.prefect_server import ROOT, wait_for_final_state

pytestmark = [pytest.mark.postgres, pytest.mark.prefect, pytest.mark.s3]

STACK = str(ROOT / "infra" / "stack.sh")
DEPLOYMENTS = {d["name"] for d in yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())["deployments"]}


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    """Outside pytest's private temp folder: when root runs the test, PostgreSQL runs as `postgres`."""
    path = Path(tempfile.mkdtemp(prefix="tracemill-stack-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _stack(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STACK, command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _logs(stack_dir: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in (stack_dir / "logs").glob("*.log")
    )


def _processes_of(stack_dir: Path) -> list[str]:
    """Processes whose command line or environment names the stack's folder (its own and their children)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(stack_dir).encode() in cmdline + environ:
            found.append(proc.name + ": " + cmdline.replace(b"\0", b" ").decode(errors="replace")[:200])
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a process that has ended and waits to be reaped by init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stack_up_serves_a_run_and_down_leaves_nothing(stack_dir):
    prefect_port, pg_port, s3_port, master, volume, filer = _free_ports(6)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TRACEMILL_"))},
        "STACK_DIR": str(stack_dir),
        "STACK_PREFECT_PORT": str(prefect_port),
        "STACK_PG_PORT": str(pg_port),
        "STACK_S3_PORT": str(s3_port),
        "STACK_WEED_PORTS": f"{master} {volume} {filer}",
        "GPU_COUNT": "2",
    }
    postgres = bool(list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))) or bool(shutil.which("initdb"))
    try:
        up = _stack("up", env)
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{_logs(stack_dir)}"
        assert _stack("status", env).returncode == 0
        # The generated keys went into the block only, never to the terminal.
        keys = json.loads((stack_dir / "s3.json").read_text())["identities"][0]["credentials"][0]
        assert keys["secretKey"] not in up.stdout + up.stderr
        # PostgreSQL where it is installed; SQLite (a file in the server's home) otherwise.
        assert (stack_dir / "postgres" / "PG_VERSION").exists() == postgres
        assert (stack_dir / "prefect-home" / "prefect.db").exists() != postgres
        assert f"database {'postgres' if postgres else 'sqlite'}" in up.stdout

        fs = s3fs.S3FileSystem(
            key=keys["accessKey"],
            secret=keys["secretKey"],
            client_kwargs={"endpoint_url": f"http://127.0.0.1:{s3_port}"},
            skip_instance_cache=True,
        )
        assert fs.exists("tracemill"), "the bucket of deployments/prefect.yaml"

        api_url = f"http://127.0.0.1:{prefect_port}/api"
        with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            pools = {pool.name: pool for pool in client.read_work_pools()}
            assert {"cpu", "gpu"} <= set(pools) and pools["gpu"].concurrency_limit == 2, pools

            # One worker on cpu, one per GPU on gpu, each polling once it has started.
            def workers() -> list[Any]:
                found = sorted(pool for pool in ("cpu", "gpu") for _ in client.read_workers_for_work_pool(pool))
                return found if found == ["cpu", "gpu", "gpu"] else []

            assert _poll(workers, seconds=120), [client.read_workers_for_work_pool(pool) for pool in ("cpu", "gpu")]
            deployments = {d.name: d for d in client.read_deployments()}
            assert set(deployments) == DEPLOYMENTS, deployments
            assert any(a.name.startswith("tracemill: ") for a in client.read_automations()), (
                "deployments/automations.py"
            )
            # The nightly schedule is taken up: the scheduler has created its next run.
            nightly = deployments["clevr-nightly"]

            def scheduled() -> list[Any]:
                return client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[nightly.id]))
                )

            runs = _poll(scheduled, seconds=60)
            assert runs and all(r.auto_scheduled and r.state_name == "Scheduled" for r in runs), runs

            # A cheap deployment, run by the cpu pool's worker into the stack's bucket.
            run = client.create_flow_run_from_deployment(
                deployments["synthesize-problems"].id,
                parameters={
                    "source": {"kind": "clevr_procedural", "num_scenes": 4, "scenes_per_shard": 2, "seed": 1},
                    "store": {"url": "s3://tracemill/datasets", "block": "default"},
                },
            )
            run = wait_for_final_state(client, run.id, seconds=300)
            assert run.state is not None and run.state.is_completed(), f"{run.state}\n{_logs(stack_dir)}"
            assert run.work_pool_name == "cpu"
            manifest = json.loads(fs.cat_file(fs.glob("tracemill/datasets/problems/*/_manifest.json")[0]))
            assert len(manifest["shards"]) == 2, manifest
        pids = [int(p.read_text()) for p in (stack_dir / "pids").glob("*.pid")]
        assert len(pids) == (6 if postgres else 5), pids  # two gpu workers
        # The keys are in the block, not in the environment of the server, the workers and their flow runs.
        assert not [pid for pid in pids if keys["secretKey"].encode() in Path(f"/proc/{pid}/environ").read_bytes()]
    finally:
        down = _stack("down", env)
    assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
    assert not _processes_of(stack_dir), _processes_of(stack_dir)
    assert not [pid for pid in pids if _running(pid)], pids
    assert not [p for p in (prefect_port, pg_port, s3_port, master, volume, filer) if _listening(p)]
    assert not list((stack_dir / "pids").glob("*.pid"))
    assert _stack("status", env).returncode != 0


def _poll(check: Callable[[], list[Any]], seconds: float) -> list[Any]:
    """``check()`` once it is not empty, or its last answer after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(1)
    return found
