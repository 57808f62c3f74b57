"""Children die with their parent: nothing a build starts outlives the process that started it.

A ``kill -9`` of a build, or of a worker's flow-run process, must not leave a vLLM engine holding
(GPU) memory, a temporary Prefect server holding its port, or grading workers behind; an orphan
also keeps the parent's stdout/stderr open, so a Prefect process worker that reads them never sees
its flow run exit. Linux's parent-death signal does this in the kernel, but only for a process that
asks for it, so:

* :func:`spawn` starts a command we own (the grading workers) through a small launcher that sets
  ``PR_SET_PDEATHSIG`` to SIGKILL, checks that its parent is still the one that started it (the
  parent may die before the signal is armed), then execs the command. The kernel sends the signal
  when the *thread* that forked exits, not the process, so every spawn forks from one thread that
  lasts as long as the process.
* :func:`reaped_with_us` covers processes that a library starts, which arm no such signal (vLLM's
  engine core and its workers, Prefect's temporary API server): a watchdog process started by the
  parent notes them and SIGKILLs them as soon as the parent is gone.

Elsewhere than Linux both only start the command or do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.2  # how often the watchdog checks that its parent is alive
LINUX = sys.platform.startswith("linux")

_spawns: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
_spawner: tuple[int, threading.Thread] | None = None
_watchdog: tuple[int, subprocess.Popen[bytes]] | None = None
_lock = threading.Lock()


def spawn(argv: list[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, **popen_kwargs)`` for a child that is SIGKILLed when this process dies."""
    if LINUX:
        argv = [sys.executable, "-m", "tracemill.lifetime", "exec", str(os.getpid()), *argv]
    return _on_spawner_thread(lambda: subprocess.Popen(argv, **popen_kwargs))


@contextlib.contextmanager
def reaped_with_us(interval_s: float = 0.5) -> Iterator[None]:
    """Processes that start below this one while the block runs (a library's) die when this one does.

    A watchdog process SIGKILLs them once this process has exited or died, however it did. New
    processes are noted every ``interval_s`` and when the block ends, so one started in the last
    ``interval_s`` before a kill can escape; children we start ourselves use :func:`spawn`.
    """
    if not LINUX:
        yield
        return
    before = set(descendants())
    stop = threading.Event()

    def note() -> None:
        noted: set[int] = set()
        while True:
            new = set(descendants()) - before - noted
            reap_with_us(new)
            noted |= new
            if stop.wait(interval_s):
                break
        reap_with_us(set(descendants()) - before - noted)

    watcher = threading.Thread(target=note, name="tracemill-reaper", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (this process by default), from one scan of /proc."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        stat = _stat(int(name)) if name.isdigit() else None
        if stat is not None:
            children.setdefault(stat[0], []).append(int(name))
    found: list[int] = []
    todo = list(children.get(root, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def reap_with_us(pids: Iterable[int]) -> None:
    """SIGKILL these processes once this one has exited or died (by its watchdog, started on first use)."""
    global _watchdog
    lines = "".join(f"{pid} {start}\n" for pid in pids if (start := _start_time(pid)) is not None)
    if not lines:
        return
    with _lock:
        if _watchdog is None or _watchdog[0] != os.getpid():
            watchdog = subprocess.Popen(
                [sys.executable, "-m", "tracemill.lifetime", "watch", str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,  # it must not hold the pipes a worker reads to see us exit
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # nor die of a Ctrl-C meant for us before it has done its job
            )
            _watchdog = (os.getpid(), watchdog)
        stdin = _watchdog[1].stdin
        assert stdin is not None
        stdin.write(lines.encode())
        stdin.flush()


def _on_spawner_thread(start: Callable[[], Any]) -> Any:
    """Run ``start`` on the process's spawner thread (started on first use, again after a fork)."""
    global _spawner
    with _lock:
        if _spawner is None or _spawner[0] != os.getpid():
            thread = threading.Thread(target=_serve_spawns, name="tracemill-spawner", daemon=True)
            thread.start()
            _spawner = (os.getpid(), thread)
    done: Future[Any] = Future()
    _spawns.put((start, done))
    return done.result()


def _serve_spawns() -> None:
    while True:
        start, done = _spawns.get()
        try:
            done.set_result(start())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            done.set_exception(exc)


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19])


def _start_time(pid: int) -> int | None:
    """The start time tells a process from a later one that got the same pid."""
    stat = _stat(pid)
    return None if stat is None else stat[1]


def _exec_with_parent_death_signal(parent: int, argv: list[str]) -> None:
    """The launcher: arm SIGKILL-on-parent-death, give up if the parent is already gone, exec ``argv``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        sys.exit(1)
    os.execvp(argv[0], argv)


def _watch(parent: int) -> None:
    """The watchdog: collect ``pid start`` lines until the parent is gone, then SIGKILL those still alive."""
    doomed: dict[int, int] = {}
    pending = b""
    stdin = sys.stdin.fileno()
    alive = True
    while True:
        # Read what has arrived, also once more after the parent died: it may have died just after writing.
        wait = WATCH_INTERVAL_S if alive else 0.0
        if stdin >= 0 and select.select([stdin], [], [], wait)[0]:
            chunk = os.read(stdin, 65536)
            if not chunk:
                stdin = -1
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                pid, start = map(int, line.split())
                doomed[pid] = start
            continue
        if not alive:
            break
        if stdin < 0:
            time.sleep(WATCH_INTERVAL_S)
        alive = os.getppid() == parent
    doomed.pop(os.getpid(), None)  # noted with the rest of the parent's children
    for pid, start in doomed.items():
        if _start_time(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> None:
    command, parent = argv[0], int(argv[1])
    if command == "exec":
        _exec_with_parent_death_signal(parent, argv[2:])
    elif command == "watch":
        _watch(parent)
    else:
        raise SystemExit(f"unknown command {command!r}: exec or watch")


if __name__ == "__main__":
    main(sys.argv[1:])
