"""A flow run whose process died does not stay Running, and leaves no children behind.

On a real `prefect server start` with a real process worker on a pool made from
infra/work-pools/gpu-process.json (concurrency limit 1, like a one-GPU machine), a small flow starts
what a sampling run starts: a grading worker (a child we spawn) and a child that a library starts
and that holds the flow run's stdout and stderr (as vLLM's engine does), then waits. The test
SIGKILLs the flow run's process:

* with its worker alive, the children die with it, so the worker sees the exit and marks the run
  Crashed at once, and the pool's slot is free for the next run;
* with its worker killed first (machine or pod lost), nobody reports it: the heartbeat automation of
  deployments/automations.py marks it Crashed, and the next run starts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.integration.prefect_server import (
    ROOT,
    PrefectServer,
    api_client,
    start_prefect_server,
    wait_for_final_state,
    wait_until,
)

pytestmark = pytest.mark.prefect

CRASH_AFTER_S = 45  # the pool's heartbeat is every 30 s (Prefect's minimum)

FLOWS = textwrap.dedent(
    """
    import json
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from prefect import flow

    from tracemill import lifetime
    from tracemill.judging.grade_pool import get_pool


    @flow
    def hold(marker: str) -> None:
        assert get_pool().run([("1/2", "0.5")], 60.0) == ["true"]  # starts a grading worker
        with lifetime.reaped_with_us():  # as vLLM starts its engine: a plain child, our stdout and stderr
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        time.sleep(1)  # noted by the watchdog
        heartbeat = os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY")
        Path(marker).write_text(json.dumps({"pid": os.getpid(), "heartbeat": heartbeat}))
        time.sleep(600)
    """
)

PREFECT_YAML = """
name: heartbeat-check
prefect-version: 3.6.29
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{home}"
deployments:
  - name: hold
    entrypoint: heartbeat_flows.py:hold
    work_pool: {{name: gpu}}
"""


@dataclass
class Stack:
    server: PrefectServer
    worker: Any  # the gpu pool's worker process, replaced when a test kills it


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One server, the gpu pool from infra/ with one slot, the heartbeat automation, one worker."""
    root = tmp_path_factory.mktemp("heartbeat")
    home = root / "flows"
    home.mkdir()
    (home / "heartbeat_flows.py").write_text(FLOWS)
    (home / "prefect.yaml").write_text(PREFECT_YAML.format(home=home))
    with start_prefect_server(root) as server:
        server.cli(
          "work-pool", "create", "gpu", "--type", "process", "--base-job-template", "infra/work-pools/gpu-process.json"
        )  # fmt: skip
        server.cli("work-pool", "set-concurrency-limit", "gpu", "1")
        server.cli("deploy", "--all", cwd=home)
        spec = importlib.util.spec_from_file_location("automations", ROOT / "deployments/automations.py")
        automations = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(automations)
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            automations.replace(automations.crash_silent_runs_automation(CRASH_AFTER_S))
        time.sleep(3)  # the triggers service loads automations when they change
        yield Stack(server, server.worker("gpu", "gpu-1"))


@pytest.fixture
def client(stack: Stack) -> Iterator[SyncPrefectClient]:
    with api_client(stack.server) as client:
        yield client


def _start_holding_run(client: SyncPrefectClient, stack: Stack, marker: Path) -> tuple[Any, list[psutil.Process]]:
    """Trigger a run, wait until it holds its children; its flow-run process and their tree."""
    deployment = client.read_deployment_by_name("hold/hold")
    run = client.create_flow_run_from_deployment(deployment.id, parameters={"marker": str(marker)})
    wait_until(f"run {run.name} holding its children", marker.exists, stack.server, seconds=120)
    started = json.loads(marker.read_text())
    assert started["heartbeat"] == "30", started  # from the pool's job template
    process = psutil.Process(started["pid"])
    tree = [process, *process.children(recursive=True)]
    commands = [" ".join(p.cmdline()) for p in tree]
    assert any("tracemill.judging.symbolic" in c for c in commands) and any("time.sleep(600)" in c for c in commands), (
        commands
    )
    return run, tree


def _heartbeats(stack: Stack, flow_run_id: Any) -> int:
    """Heartbeat events of a flow run that the server has stored."""
    body = {
        "filter": {
            "event": {"name": ["prefect.flow-run.heartbeat"]},
            "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
        },
        "limit": 50,
    }
    response = httpx.post(f"{stack.server.api_url}/events/filter", json=body, timeout=10)
    response.raise_for_status()
    return len(response.json()["events"])


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_all_gone(tree: list[psutil.Process]) -> None:
    deadline = time.monotonic() + 10
    while (alive := [p for p in tree if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in alive:
        p.kill()
    assert not alive, f"outlived the flow run's process: {[p.pid for p in alive]}"


def test_a_killed_flow_run_takes_its_children_and_the_worker_reports_it(stack, client, tmp_path):
    run, tree = _start_holding_run(client, stack, tmp_path / "first")
    os.kill(tree[0].pid, signal.SIGKILL)
    _assert_all_gone(tree)

    # Nothing holds the worker's pipes any more: it sees the exit and reports the crash itself, well
    # before the heartbeat automation would.
    run = wait_for_final_state(client, run.id, seconds=CRASH_AFTER_S - 15)
    assert run.state is not None and run.state.type == StateType.CRASHED, (run.state, stack.server.services.logs())
    assert "exited with non-zero status code -9" in (run.state.message or ""), run.state.message

    # The pool's only slot is free: the next run starts.
    next_run, next_tree = _start_holding_run(client, stack, tmp_path / "next")
    assert client.read_flow_run(next_run.id).state.type == StateType.RUNNING
    os.kill(next_tree[0].pid, signal.SIGKILL)
    _assert_all_gone(next_tree)
    wait_for_final_state(client, next_run.id, seconds=CRASH_AFTER_S - 15)


def test_a_run_nobody_reports_is_crashed_by_the_heartbeat_automation(stack, client, tmp_path):
    run, tree = _start_holding_run(client, stack, tmp_path / "lost")
    wait_until("a heartbeat of the run", lambda: _heartbeats(stack, run.id), stack.server, seconds=30)

    # The machine is lost: the worker first, then the flow run's process.
    stack.worker.send_signal(signal.SIGKILL)
    stack.worker.wait()
    os.kill(tree[0].pid, signal.SIGKILL)
    _assert_all_gone(tree)
    assert client.read_flow_run(run.id).state.type == StateType.RUNNING

    run = wait_for_final_state(client, run.id, seconds=CRASH_AFTER_S + 60)
    assert run.state is not None and run.state.type == StateType.CRASHED, (run.state, stack.server.services.logs())
    assert run.state.message == f"no heartbeat for {CRASH_AFTER_S} s: the flow run's process is gone", run.state

    # A new worker on the pool: the slot the lost run held is free, so the next run starts.
    stack.worker = stack.server.worker("gpu", "gpu-2")
    next_run, next_tree = _start_holding_run(client, stack, tmp_path / "next")
    assert client.read_flow_run(next_run.id).state.type == StateType.RUNNING
    os.kill(next_tree[0].pid, signal.SIGKILL)
    _assert_all_gone(next_tree)
    wait_for_final_state(client, next_run.id, seconds=CRASH_AFTER_S - 15)
