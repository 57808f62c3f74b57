"""One lock per shard that every worker sees, so concurrent builds of one config never compute a shard twice.

The lock is a Prefect global concurrency limit of one slot named after the shard, held with a
lease (so a holder that dies frees it within a minute). Waiting runs poll the API; when the
holder is done, the next one finds the shard written and reuses it. The holder deletes the limit
before giving its slot back, so finished shards leave no limits behind; a waiter that finds the
limit gone makes it again. Only the holder deletes, so a held limit is never deleted under anyone.

A lock only guards work where other builds can see it: on a server named by ``PREFECT_API_URL``.
Prefect's temporary server belongs to one process, so there no lock is taken (it would only load
the server's SQLite database). A lock is a saving, not a guarantee of correctness (shards and
checkpoints are written atomically, with the same seeds), so an API that keeps failing while a lock
is taken costs a warning and, at worst, a shard computed twice, never a failed build.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Iterator

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.context import TaskRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.settings import get_current_settings

from tracemill.store import Dataset

LEASE_S = 60.0  # the shortest lease the API grants; renewed while the shard is worked on
API_ATTEMPTS = 5  # API failures while taking a lock, backing off, before the shard goes on without it

log = logging.getLogger(__name__)


def locks_are_shared() -> bool:
    """Whether other builds can see this run's locks: only through a server named by ``PREFECT_API_URL``."""
    return bool(get_current_settings().api.url)


def lock_name(dataset: Dataset, shard: int) -> str:
    where = hashlib.sha256(dataset.store.url.encode()).hexdigest()[:8]
    return f"tracemill-shard-{dataset.stage}-{dataset.fingerprint}-{shard:05d}-{where}"


@contextlib.contextmanager
def shard_lock(dataset: Dataset, shard: int) -> Iterator[None]:
    """Hold the lock of ``shard`` of ``dataset`` for the ``with`` block, waiting for it as long as it takes."""
    name = lock_name(dataset, shard)
    task_run = TaskRunContext.get()
    holder = ConcurrencyLeaseHolder(type="task_run", id=task_run.task_run.id) if task_run else None
    with contextlib.ExitStack() as held:
        failures = 0
        while True:
            try:
                _create(name)
                held.enter_context(concurrency(name, occupy=1, lease_duration=LEASE_S, strict=True, holder=holder))
                break
            except ConcurrencySlotAcquisitionError as exc:
                if exc.__cause__ is None:  # "no such limit" (deleted by its last holder) has no cause: make it again
                    continue
                failures += 1
                error: Exception = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
            except httpx.HTTPError as exc:
                failures += 1
                error = exc
            if failures >= API_ATTEMPTS:
                log.warning("shard lock %s: the Prefect API kept failing (%s); going on without the lock", name, error)
                yield
                return
            time.sleep(min(2.0**failures, 10.0))
        held.callback(_delete, name)  # runs before the slot is given back
        yield


def _create(name: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            pass
        except httpx.HTTPStatusError as exc:  # two runs creating it at once can meet the unique name as a 500
            if exc.response.status_code != 500:
                raise


def _delete(name: str) -> None:
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_global_concurrency_limit_by_name(name)
