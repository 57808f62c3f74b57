"""A real `prefect server start` and the processes around it (workers), for integration tests.

Every process runs in its own session and logs to a file; `Services.stop` ends each process group,
so a test leaves nothing running. The `prefect_server` fixture (conftest.py) starts one per module;
modules that need other server settings call `start_prefect_server` in a fixture of their own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import LogFilter
from prefect.settings import PREFECT_API_URL, temporary_settings

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Services:
    """Processes started for the test, each in its own session, each logging to a file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen[bytes]:
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
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

    def cli(self, *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
        done = subprocess.run(
            [PREFECT, "--no-prompt", *args], env=env or self.env, cwd=cwd, capture_output=True, text=True
        )
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def worker(self, pool: str, name: str) -> subprocess.Popen[bytes]:
        """A process worker on ``pool``, polling every second."""
        return self.services.start(
            f"worker-{name}", [PREFECT, "worker", "start", "--pool", pool, "--name", name], self.env
        )


@contextmanager
def start_prefect_server(root: Path, settings: Mapping[str, str] | None = None) -> Iterator[PrefectServer]:
    """`prefect server start` on SQLite and a free loopback port, with its own PREFECT_HOME.

    ``settings`` are extra PREFECT_* variables of the server (its services' loop intervals, say).
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    port = free_port()
    services = Services(root)
    server_env = {
        **base,
        "PREFECT_HOME": str(root / "server-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        **(settings or {}),
    }
    server = services.start(
        "server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], server_env
    )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for_health(api_url, server, services, seconds=240)
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


def wait_for_health(api_url: str, proc: subprocess.Popen[bytes], services: Services, seconds: float) -> None:
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


def wait_until(what: str, check: Callable[[], Any], server: PrefectServer, seconds: float) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the services' logs otherwise."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.5)
    pytest.fail(f"{what} within {seconds}s\n{server.services.logs()}")


@contextmanager
def api_client(server: PrefectServer) -> Iterator[SyncPrefectClient]:
    """A client of this server (for the test process itself, which has no PREFECT_API_URL)."""
    with temporary_settings({PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        yield client


def wait_for_final_state(client: SyncPrefectClient, flow_run_id: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(1)
    return client.read_flow_run(flow_run_id)


def all_logs(client: SyncPrefectClient, log_filter: LogFilter | None = None) -> list[Any]:
    """Every log record, page by page (the API answers at most its default limit per call)."""
    logs: list[Any] = []
    while page := client.read_logs(log_filter=log_filter, limit=200, offset=len(logs)):
        logs.extend(page)
    return logs
