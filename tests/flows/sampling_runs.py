"""Sampling flow runs in processes of their own (``python -m flows.sampling``), as two workers would run them,
made to overlap: the local OpenAI-compatible server holds its answers until every run has a shard task running."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterStartTime,
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from tests.fake_openai import FakeOpenAI
from tracemill.config import StoreConfig
from tracemill.sampling.config import SamplingConfig

ROOT = Path(__file__).resolve().parents[2]


def sample_at_once(
    server: FakeOpenAI,
    store: StoreConfig,
    configs: dict[Path, SamplingConfig],
    problems: str,
    api_url: str,
    senders: Callable[[dict[str, Any]], str] | None = None,
) -> list[str]:
    """Run the sampling flow once per config (a YAML written at each path) at the same time; each must
    succeed. Returns the samples dataset URI each printed. The server answers nothing until every run
    has a shard task running (sending requests, or waiting for a shard's lock), or, with ``senders``
    (the run a request comes from), until every run has sent a request."""
    under_way = threading.Event()
    seen: set[str] = set()

    def hold(body: dict[str, Any], attempt: int) -> None:
        if senders is not None:
            seen.add(senders(body))
            if len(seen) == len(configs):
                under_way.set()
        under_way.wait(timeout=120)  # then the server's default answer

    server.set_fault(hold)
    started = datetime.now(UTC)
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    runs = []
    for path, sampling in configs.items():
        path.write_text(
            yaml.safe_dump({"store": store.model_dump(mode="json"), "sampling": sampling.model_dump(mode="json")})
        )
        command = [sys.executable, "-m", "flows.sampling", "--config", str(path), "--problems", problems]
        runs.append(
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )
    if senders is None:
        try:
            _wait_running(len(runs), started)
        except BaseException:
            for run in runs:
                run.kill()
            raise
        finally:
            under_way.set()
    outputs = []
    for run in runs:
        out, _ = run.communicate(timeout=240)
        assert run.returncode == 0, out[-4000:]
        outputs.append(out)
    return [
        line.split(": ", 1)[1] for out in outputs for line in out.splitlines() if line.startswith("samples dataset: ")
    ]


def _wait_running(count: int, since: datetime, timeout_s: float = 120) -> None:
    """Wait until ``count`` sampling runs started since ``since`` each have a shard task running."""
    flows = FlowFilter(name=FlowFilterName(any_=["sample-problems"]))
    recent = FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since))
    running = TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING]), name=None))
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            ids = [run.id for run in client.read_flow_runs(flow_filter=flows, flow_run_filter=recent)]
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), task_run_filter=running
            )
            if len({task.flow_run_id for task in tasks}) >= count:
                return
            time.sleep(0.2)
    raise AssertionError(f"{count} sampling runs did not have shard tasks running together within {timeout_s} s")
