"""Shard caching and retries shared by every stage task.

Prefect's default cache policy includes the run id and so never skips work across runs; the
shard policy keys on what determines a shard's content instead: (store, stage, fingerprint,
shard index). Flows persist the results inside the store itself, where every worker can read them
(see ``blocks.store_results``).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect import Task, task
from prefect.cache_policies import CachePolicy
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from tracemill.store import Dataset, SchemaMismatchError, ShardNotFoundError, StoreUnavailableError


@dataclass
class ShardCachePolicy(CachePolicy):
    """Key a shard task on its dataset's store, stage and fingerprint and on the shard index."""

    def compute_key(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        dataset: Dataset = inputs["dataset"]
        where = hashlib.sha256(dataset.store.url.encode()).hexdigest()[:8]
        return f"{dataset.stage}-{dataset.fingerprint}-{inputs['shard']:05d}-{where}"


SHARD_CACHE = ShardCachePolicy()


def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry storage and network faults; never configuration or data errors, which would fail again."""
    try:
        state.result()
    except (StoreUnavailableError, ConnectionError, TimeoutError):
        return True
    except (ShardNotFoundError, SchemaMismatchError, ValueError, TypeError, KeyError, MemoryError):
        return False
    except OSError:
        return True
    except Exception:
        return False
    return False


# Transient faults back off exponentially with jitter, so retried shards do not stampede the store.
RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": is_transient,
}


def shard_task(stage: str) -> Callable[[Callable[..., Any]], Task[..., Any]]:
    """The task of one shard of ``stage``: named ``{stage}-shard``, runs named ``{stage}-00042``, cached by
    (fingerprint, shard), results persisted, transient faults retried, failures noting their shard."""

    def decorate(fn: Callable[..., Any]) -> Task[..., Any]:
        return task(
            name=f"{stage}-shard",
            task_run_name=f"{stage}-{{shard:05d}}",
            cache_policy=SHARD_CACHE,
            persist_result=True,
            **RETRIES,
        )(_names_the_shard(stage, fn))

    return decorate


def _names_the_shard(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Note the stage and shard on an exception leaving a shard task (``exc.__notes__``).

    A note keeps the exception's type, so the retry condition still sees what it is, and the build
    flow's error can say which shard of which stage failed.
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            shard = signature.bind_partial(*args, **kwargs).arguments.get("shard")
            exc.add_note(f"{stage} shard {shard}")
            raise

    return wrapper
