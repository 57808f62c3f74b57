"""One lock per shard that every worker sees, so concurrent builds of one config never compute a shard twice.

The lock is a Prefect global concurrency limit of one slot named after the shard, held with a
lease (so a holder that dies frees it within a minute). Waiting runs poll the API; when the
holder is done, the next one finds the shard written and reuses it. The holder deletes the limit
before giving its slot back, so finished shards leave no limits behind; a waiter that finds the
limit gone makes it again. Only the holder deletes, so a held limit is never deleted under anyone.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.context import TaskRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from tracemill.store import Dataset

LEASE_S = 60.0  # the shortest lease the API grants; renewed while the shard is worked on


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
        while True:
            _create(name)
            try:
                held.enter_context(concurrency(name, occupy=1, lease_duration=LEASE_S, strict=True, holder=holder))
                break
            except ConcurrencySlotAcquisitionError as exc:
                if exc.__cause__ is not None:  # the API failed; "no such limit" has no cause
                    raise
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
