"""The Prefect server's own services, on a real `prefect server start` with a real process worker.

Nightly rebuilds depend on the scheduler service creating runs, ops on the late-runs service, on
cancellation reaching the worker, and on automations' triggers and actions. Each service is checked
by its effect, with a tiny flow (no vLLM) and service loops shortened by server settings, on one
server for the whole module. Prefect 3.6.29's scheduler failed on SQLAlchemy 2.1 without any other
test noticing: the scheduler test is what catches that.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect.automations import Automation, EventTrigger, Posture
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.states import Cancelling
from prefect.workers.process import ProcessWorker

from tests.integration.prefect_server import (
    PrefectServer,
    all_logs,
    api_client,
    start_prefect_server,
    wait_for_final_state,
    wait_until,
)

pytestmark = pytest.mark.prefect

INTERVAL_S = 5
WORKER = "services-worker"

FLOWS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from prefect import flow


    @flow
    def tick() -> str:
        return "tick"


    @flow
    def sleeper(marker: str) -> None:
        Path(marker).write_text(str(os.getpid()))
        time.sleep(600)
    """
)

PREFECT_YAML = """
name: services-check
prefect-version: 3.6.29
pull:
  - prefect.deployments.steps.set_working_directory:
      directory: "{home}"
deployments:
  - name: every-{interval}s
    entrypoint: services_flows.py:tick
    work_pool: {{name: services}}
    schedules:
      - interval: {interval}
  - name: sleeper
    entrypoint: services_flows.py:sleeper
    work_pool: {{name: services}}
  # No worker polls this pool: its runs wait, become Late, and meet the automation.
  - name: unattended
    entrypoint: services_flows.py:tick
    work_pool: {{name: unattended}}
"""

# Every loop a few seconds or less, so each service acts within the test's patience.
FAST_SERVICES = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS": "2",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One server with fast service loops, two process pools (one with a worker), three deployments."""
    root = tmp_path_factory.mktemp("services")
    home = root / "flows"
    home.mkdir()
    (home / "services_flows.py").write_text(FLOWS)
    (home / "prefect.yaml").write_text(PREFECT_YAML.format(home=home, interval=INTERVAL_S))
    with start_prefect_server(root, FAST_SERVICES) as server:
        with api_client(server) as client:
            for pool in ("services", "unattended"):
                template = ProcessWorker.get_default_base_job_template()
                client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template))
        server.cli("deploy", "--all", cwd=home)
        server.worker("services", WORKER)
        yield server


@pytest.fixture
def client(server: PrefectServer) -> Iterator[SyncPrefectClient]:
    with api_client(server) as client:
        yield client


def _messages(client: SyncPrefectClient, flow_run_id: Any) -> list[str]:
    return [log.message for log in all_logs(client, LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))]


def test_the_scheduler_creates_runs_that_a_worker_executes(server, client):
    deployment = client.read_deployment_by_name(f"tick/every-{INTERVAL_S}s")

    def completed() -> list[Any]:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
        done = [r for r in runs if r.state is not None and r.state.is_completed()]
        return done if len(done) >= 2 else []

    runs = wait_until("two scheduled runs completed", completed, server, seconds=150)
    for run in runs:
        # Made by the server's scheduler (nobody else created runs of this deployment), run by the worker.
        assert run.auto_scheduled and "auto-scheduled" in run.tags, run
        assert run.work_pool_name == "services", run
        assert f"Worker '{WORKER}' submitting flow run '{run.id}'" in _messages(client, run.id)
    # Five seconds apart, as the schedule says.
    times = sorted(run.expected_start_time for run in runs)
    assert all((b - a).total_seconds() % INTERVAL_S == 0 for a, b in zip(times, times[1:], strict=False)), times

    # The endpoint behind the UI's schedule tools answered 503 with SQLAlchemy 2.1, on every call. A busy
    # SQLite server may answer one call 503 ("database is locked"), which Prefect's client retries: so do we.
    for _ in range(5):
        response = httpx.post(f"{server.api_url}/deployments/{deployment.id}/schedule", json={})
        if response.status_code != 503:
            break
        time.sleep(2)
    assert response.status_code == 200, response.text
    client.pause_deployment(deployment.id)  # the other checks need no more ticks
    server_log = (server.services.root / "server.log").read_text(errors="replace")
    assert "Can't evaluate bulk DML" not in server_log


def test_a_cancellation_requested_through_the_api_stops_the_run(server, client, tmp_path):
    deployment = client.read_deployment_by_name("sleeper/sleeper")
    marker = tmp_path / "sleeper.pid"
    run = client.create_flow_run_from_deployment(deployment.id, parameters={"marker": str(marker)})
    wait_until("the sleeper flow started", marker.exists, server, seconds=120)
    pid = int(marker.read_text())

    # What the UI's Cancel button sends: POST /flow_runs/{id}/set_state with CANCELLING.
    client.set_flow_run_state(run.id, Cancelling())
    run = wait_for_final_state(client, run.id, seconds=90)
    assert run.state is not None and run.state.type == StateType.CANCELLED, (run.state, server.services.logs())

    def process_gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(f"the flow run's process {pid} ended", process_gone, server, seconds=30)


def test_a_late_run_is_marked_late_and_an_automation_acts_on_it(server, client):
    deployment = client.read_deployment_by_name("tick/unattended")
    message = "cancelled by the automation: nobody picked it up in time"
    automation = Automation(
        name="cancel late unattended runs",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Late"},
            match_related={
                "prefect.resource.role": "deployment",
                "prefect.resource.id": f"prefect.deployment.{deployment.id}",
            },
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[ChangeFlowRunState(state=StateType.CANCELLED, message=message)],
    ).create()
    assert automation.id is not None
    time.sleep(3)  # the triggers service loads automations when they change

    run = client.create_flow_run_from_deployment(deployment.id)
    run = wait_for_final_state(client, run.id, seconds=90)
    states = [s.name for s in sorted(client.read_flow_run_states(run.id), key=lambda s: s.timestamp)]
    # The late-runs service marked it Late (nobody polls its pool); the automation's trigger saw the
    # event and its action cancelled the run.
    assert "Late" in states, (states, server.services.logs())
    assert run.state is not None and run.state.type == StateType.CANCELLED and run.state.message == message, (
        run.state,
        states,
    )
