"""``kill -9`` of a build leaves nothing running: not the vLLM engine, not a grading worker, not the
temporary Prefect server (whose port must be free again).

Each test walks the real process tree with psutil before the kill, SIGKILLs the parent, and checks
that every process of the tree is gone a few seconds later.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TRACEMILL = str(Path(sys.executable).parent / "tracemill")

# Grading workers started from a thread that has ended by the time of the kill: the parent-death
# signal follows the thread that forked, so this is the case that needs the spawner thread.
GRADING_PARENT = textwrap.dedent(
    """
    import threading
    import time

    from tracemill.judging.grade_pool import get_pool

    def grade() -> None:
        assert get_pool().run([("1/2", "0.5"), ("2", "3")], 30.0, workers=2) == ["true", "false"]

    thread = threading.Thread(target=grade)
    thread.start()
    thread.join()
    time.sleep(1)
    grade()  # the same workers, still alive after their thread ended
    # A worker busy for minutes: it would not notice the end of its input before the item is done.
    threading.Thread(target=get_pool().run, args=([("7^{7^{10}}", "3")], 300.0), daemon=True).start()
    time.sleep(2)
    print("busy", flush=True)
    time.sleep(600)
    """
)


def _tree(root: psutil.Process) -> list[psutil.Process]:
    return [root, *root.children(recursive=True)]


def _command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # gone meanwhile
        return ""


def _survivors(processes: list[psutil.Process], seconds: float) -> list[str]:
    """Processes of the list still running after ``seconds`` (psutil tells a reused pid from the original)."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > deadline:
            return [f"{p.pid} {_command(p)[:120]}" for p in alive]
        time.sleep(0.2)


def _wait_for(what: str, check, proc: subprocess.Popen, log: Path, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the parent exited ({proc.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        if found := check():
            return found
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"no {what} within {seconds}s:\n{log.read_text()[-4000:]}")


def _kill_and_check(proc: subprocess.Popen, tree: list[psutil.Process]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survivors = _survivors(tree[1:], seconds=10)
    for p in tree[1:]:  # whatever the check says, leave nothing behind for the next test
        if p.is_running():
            p.kill()
    assert not survivors, f"still running after the parent was SIGKILLed: {survivors}"


def test_grading_workers_die_with_their_parent(tmp_path):
    log = tmp_path / "parent.log"
    with open(log, "wb") as out:
        parent = subprocess.Popen(
            [sys.executable, "-c", GRADING_PARENT], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    _wait_for("grading", lambda: "busy" in log.read_text(), parent, log, seconds=120)
    tree = _tree(psutil.Process(parent.pid))
    workers = [p for p in tree if "tracemill.judging.symbolic" in _command(p)]
    assert len(workers) == 2, [_command(p) for p in tree]
    _kill_and_check(parent, tree)


def _port_is_free(port: int) -> bool:
    """Whether a new server can listen on ``port`` (as servers do, past connections in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


@pytest.mark.prefect  # `tracemill run` on Prefect's temporary server
def test_a_killed_build_leaves_no_engine_and_no_temporary_server(tmp_path, tiny_model, cpu_engine):
    config = {
        "name": "orphans",
        "source": {"kind": "clevr_procedural", "num_scenes": 200, "questions_per_scene": 3, "seed": 0},
        "store": {"url": str(tmp_path / "store")},
        "sampling": {
            "teacher": {"kind": "vllm", "model": tiny_model, **cpu_engine},
            "n": 4,
            "max_tokens": 48,
        },
    }
    (tmp_path / "build.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        # No PREFECT_API_URL: the build runs on Prefect's temporary server, in a home of its own.
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    log = tmp_path / "build.log"
    with open(log, "wb") as out:
        build = subprocess.Popen(
            [TRACEMILL, "run", str(tmp_path / "build.yaml")], cwd=tmp_path, env=env, stdout=out, stderr=out
        )

    def engine_and_server() -> list[psutil.Process] | None:
        tree = _tree(psutil.Process(build.pid))
        commands = [_command(p) for p in tree]
        server = any("prefect.server.api.server:create_app" in command for command in commands)
        engine = any(command.startswith("VLLM::Worker") for command in commands)
        return tree if server and engine else None

    _wait_for("vLLM engine and temporary server", engine_and_server, build, log, seconds=300)
    time.sleep(1.5)  # the engine's processes are noted for the watchdog every 0.5 s while it starts
    tree = _tree(psutil.Process(build.pid))
    (server,) = [p for p in tree if "prefect.server.api.server:create_app" in _command(p)]
    port = int(server.cmdline()[server.cmdline().index("--port") + 1])
    assert not _port_is_free(port)
    assert any(_command(p).startswith("VLLM::EngineCore") for p in tree), [_command(p) for p in tree]

    _kill_and_check(build, tree)
    assert _port_is_free(port), f"the temporary server's port {port} is still held"
