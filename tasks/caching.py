"""Shard caching and retries shared by every stage task.

Prefect's default cache policy includes the run id and so never skips work across runs; the
shard policy keys on what determines a shard's content instead: (store, stage, fingerprint,
shard index). Flows persist the results inside the store itself, where every worker can read them
(see ``blocks.store_results``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.cache_policies import CachePolicy
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from tasks.locks import locks_are_shared, shard_lock
from tracemill.faults import is_transient_fault
from tracemill.stage import ShardJob
from tracemill.store import Dataset


@dataclass
class ShardCachePolicy(CachePolicy):
    """Key a shard task on its dataset's store, stage and fingerprint and on the shard index, while the
    store holds that shard whole.

    The store is the truth: a record whose shard is missing, or not the size the manifest records,
    is stale, so no key is given and the task runs (and finds the shard to compute). The check costs
    one stat per shard the task writes, and one manifest read per dataset and flow run.
    """

    # Where a file says the shard is done, for tasks whose output is not one Parquet shard (exports).
    marker: Callable[[Dataset, int], str] | None = None

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        outputs: tuple[Dataset, ...] = inputs["job"].outputs
        dataset = outputs[0]
        shard: int = inputs["shard"]
        where = hashlib.sha256(dataset.store.url.encode()).hexdigest()[:8]
        key = f"{dataset.stage}-{dataset.fingerprint}-{shard:05d}-{where}"
        if all(self._whole(output, shard, task_ctx) for output in outputs):
            return key
        # Not there: either never computed (no record yet, so keep the key and record the result) or lost since.
        return None if task_ctx.result_store.exists(key) else key

    def _whole(self, dataset: Dataset, shard: int, task_ctx: TaskRunContext) -> bool:
        if self.marker is not None:
            return dataset.store.exists(self.marker(dataset, shard))
        size = dataset.store.size(dataset.shard_path(shard))
        return size is not None and _recorded_sizes(task_ctx.task_run.flow_run_id, dataset).get(shard, size) == size


_RECORDED: dict[tuple[str, str], dict[int, int]] = {}
_RECORDED_LOCK = threading.Lock()


def _recorded_sizes(flow_run: Any, dataset: Dataset) -> dict[int, int]:
    """The shard sizes in a dataset's manifest, read once per flow run (a stage commits after its shard tasks)."""
    if flow_run is None:
        return dataset.recorded_sizes()
    key = (str(flow_run), dataset.uri)
    with _RECORDED_LOCK:
        if key in _RECORDED:
            return _RECORDED[key]
    sizes = dataset.recorded_sizes()
    with _RECORDED_LOCK:
        if len(_RECORDED) >= 256:
            _RECORDED.pop(next(iter(_RECORDED)))
        _RECORDED[key] = sizes
    return sizes


SHARD_CACHE = ShardCachePolicy()


def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry storage and network faults; never configuration or data errors, which would fail again."""
    try:
        state.result()
    except Exception as exc:
        return is_transient_fault(exc)
    return False


# Transient faults back off exponentially with jitter, so retried shards do not stampede the store.
RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": is_transient,
}


def stage_task(stage: str, policy: ShardCachePolicy = SHARD_CACHE) -> Task[..., dict[str, Any]]:
    """The shard task of ``stage``, running any :class:`~tracemill.stage.ShardJob` of it: named ``{stage}-shard``,
    runs named ``{stage}-00042``, cached by (fingerprint, shard), results persisted, transient faults retried,
    failures noting their shard."""
    return task(
        name=f"{stage}-shard",
        task_run_name=f"{stage}-{{shard:05d}}",
        cache_policy=policy,
        persist_result=True,
        **RETRIES,
    )(_names_the_shard(stage, run_shard))


def run_shard(job: ShardJob, shard: int, force: bool = False) -> dict[str, Any]:
    """Write shard ``shard`` of the job's outputs (reused when the store holds it, unless forced)."""
    log = get_run_logger() if TaskRunContext.get() is not None else logging.getLogger(__name__)
    return job.run(shard, force, log)


def _names_the_shard(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a shard task under its shard's lock, and note the stage and shard on an exception leaving it.

    The lock (``tasks.locks``) makes a concurrent build of the same config wait for the shard, then
    find it written and reuse it; a direct call of the function, outside a task run, takes none.
    A note (``exc.__notes__``) keeps the exception's type, so the retry condition still sees what it
    is, and the build flow's error can say which shard of which stage failed.
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind_partial(*args, **kwargs).arguments
        try:
            locked = TaskRunContext.get() is not None and locks_are_shared()
            with shard_lock(arguments["job"].outputs[0], arguments["shard"]) if locked else contextlib.nullcontext():
                return fn(*args, **kwargs)
        except Exception as exc:
            exc.add_note(f"{stage} shard {arguments.get('shard')}")
            raise

    wrapper.__qualname__ = f"{stage}_shard"  # Prefect keys a task on its function's name and code
    return wrapper
