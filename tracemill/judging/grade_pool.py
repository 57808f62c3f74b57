"""A small pool of symbolic-grading worker processes with a hard wall-clock limit per item.

Workers are plain ``python -m tracemill.judging.symbolic`` subprocesses rather than multiprocessing
children: they start from nothing (no copy of the parent, no re-import of its ``__main__``, so no
Prefect or vLLM), and a worker that overruns its item's limit is killed and replaced; the item's
verdict is ``timeout``. The pool starts lazily, is shared by all threads, and is cleaned up at exit;
workers are started with :func:`tracemill.lifetime.spawn`, so they die with the process even when
it is SIGKILLed.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path

from tracemill import lifetime

GRACE_S = 1.0  # beyond the item's own limit, for the worker's alarm to fire and the reply to arrive
START_TIMEOUT_S = 120.0  # a loaded 2-core machine can take a while to import sympy
_ROOT = str(Path(__file__).resolve().parent.parent)


class GradingPoolError(RuntimeError):
    """A grading worker could not be started."""


class _Worker:
    def __init__(self) -> None:
        env = dict(
            os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([_ROOT, os.environ.get("PYTHONPATH", "")])
        )
        self.proc = lifetime.spawn(
            [sys.executable, "-m", "tracemill.judging.symbolic"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=_ROOT,
            bufsize=0,
        )
        self._buffer = b""

    def fileno(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            if not wait([self], left):
                break
            line = self.read()
            if line is None:
                raise GradingPoolError(f"grading worker exited at start (code {self.proc.poll()})")
            if line:
                return
        self.kill()
        raise GradingPoolError(f"grading worker did not start within {START_TIMEOUT_S:.0f} s")

    def send(self, pred: str, gold: str, timeout_s: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"pred": pred, "gold": gold, "timeout": timeout_s}) + "\n").encode())

    def read(self) -> str | None:
        """A whole reply line, ``""`` if only part has arrived, None if the worker is gone."""
        chunk = os.read(self.fileno(), 65536)
        if not chunk:
            return None
        self._buffer += chunk
        if b"\n" not in self._buffer:
            return ""
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        """Let the worker finish on end of input; kill it if it does not."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class SymbolicPool:
    """Up to ``size`` workers, started on demand and reused by every thread of the process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pid = os.getpid()
        self._idle: list[_Worker] = []
        self._live = 0
        self._cond = threading.Condition()

    def _acquire(self, block: bool) -> _Worker | None:
        with self._cond:
            while not self._idle and self._live >= self.size:
                if not block:
                    return None
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._live += 1
        try:
            worker = _Worker()
            worker.wait_ready()
        except BaseException:
            self._drop(None)
            raise
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            self._idle.append(worker)
            self._cond.notify()

    def _drop(self, worker: _Worker | None) -> None:
        if worker is not None:
            worker.kill()
        with self._cond:
            self._live -= 1
            self._cond.notify()

    def run(self, jobs: Sequence[tuple[str, str]], timeout_s: float, workers: int | None = None) -> list[str]:
        """Check (pred, gold) pairs in parallel: ``true``, ``false``, ``unparsed`` or ``timeout`` each."""
        results = [""] * len(jobs)
        pending = deque(range(len(jobs)))
        want = min(len(jobs), workers or self.size)
        if want > self.size:
            with self._cond:
                self.size = want
        ready: list[_Worker] = []
        busy: dict[_Worker, tuple[int, float]] = {}
        try:
            while pending or busy:
                while pending and len(ready) + len(busy) < want:
                    worker = self._acquire(block=not ready and not busy)
                    if worker is None:
                        break
                    ready.append(worker)
                while pending and ready:
                    worker, index = ready.pop(), pending.popleft()
                    try:
                        worker.send(*jobs[index], timeout_s)
                    except OSError:  # died while idle: replace it and try the item again
                        self._drop(worker)
                        pending.appendleft(index)
                        continue
                    busy[worker] = (index, time.monotonic() + timeout_s + GRACE_S)
                if not busy:
                    continue
                first_deadline = min(deadline for _, deadline in busy.values())
                for worker in wait(list(busy), max(0.0, first_deadline - time.monotonic())):
                    assert isinstance(worker, _Worker)
                    line = worker.read()
                    if line == "":
                        continue
                    index, _ = busy.pop(worker)
                    if line is None:  # crashed (memory, signal): as good as a timeout
                        results[index] = "timeout"
                        self._drop(worker)
                    else:
                        results[index] = json.loads(line)["r"]
                        ready.append(worker)
                now = time.monotonic()
                for worker, (index, deadline) in list(busy.items()):
                    if now >= deadline:
                        del busy[worker]
                        results[index] = "timeout"
                        self._drop(worker)
        finally:
            for worker in ready:
                self._release(worker)
            for worker in busy:
                self._drop(worker)
        return results

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._live -= len(idle)
        for worker in idle:
            worker.close()


_pool: SymbolicPool | None = None
_pool_lock = threading.Lock()


def default_size() -> int:
    configured = os.environ.get("TRACEMILL_GRADE_WORKERS")
    return int(configured) if configured else max(1, min(4, os.cpu_count() or 1))


def get_pool() -> SymbolicPool:
    """The process's pool, created on first use (and again in a forked child, which must not share pipes)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = SymbolicPool(default_size())
        return _pool


@atexit.register
def shutdown() -> None:
    """Stop the idle workers (at exit, or to free their memory)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None and pool.pid == os.getpid():
        pool.close()
