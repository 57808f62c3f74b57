"""Shard tasks retry transient storage faults with backoff and give up at once on data errors."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.problems import synthesize_problems
from tasks import problems as problem_tasks
from tracemill.config import ClevrProceduralSource, StoreConfig
from tracemill.store import Dataset, StoreUnavailableError


def _shard_state_history(flow_run_id) -> list[list[str]]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        shards = sorted((r for r in runs if r.name.startswith("problems-0")), key=lambda r: r.name)
        return [[s.name for s in sorted(client.read_task_run_states(r.id), key=lambda s: s.timestamp)] for r in shards]


@pytest.fixture
def fast_retries(monkeypatch):
    fast = problem_tasks.synthesize_shard.with_options(retry_delay_seconds=1, retry_jitter_factor=None)
    monkeypatch.setattr("flows.problems.synthesize_shard", fast)


def test_transient_store_fault_is_retried(prefect_api, tmp_path, monkeypatch, fast_retries):
    real_write = Dataset.write_shard
    failures = {"left": 1}

    def flaky_write(self, index, table):
        if index == 1 and failures["left"]:
            failures["left"] -= 1
            raise StoreUnavailableError(self.shard_path(index), "storage unavailable: connection reset")
        return real_write(self, index, table)

    monkeypatch.setattr(Dataset, "write_shard", flaky_write)
    source = ClevrProceduralSource(num_scenes=4, scenes_per_shard=2, seed=11)
    state = synthesize_problems(source=source, store=StoreConfig(url=str(tmp_path)), return_state=True)
    assert state.is_completed()
    history = _shard_state_history(state.state_details.flow_run_id)
    assert "AwaitingRetry" not in history[0]
    assert "AwaitingRetry" in history[1] and history[1][-1] == "Completed", history[1]


def test_data_error_is_not_retried(prefect_api, tmp_path, monkeypatch, fast_retries):
    calls = []

    def bad_build(source, shard, store):
        calls.append(shard)
        raise ValueError("procedural CLEVR scenes 0..1: row 3 field 'answer': bad value")

    monkeypatch.setattr("tracemill.problems.build_shard", bad_build)
    source = ClevrProceduralSource(num_scenes=2, scenes_per_shard=2, seed=12)
    state = synthesize_problems(source=source, store=StoreConfig(url=str(tmp_path)), return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="row 3 field 'answer'"):
        state.result()
    assert calls == [0]
    assert "AwaitingRetry" not in _shard_state_history(state.state_details.flow_run_id)[0]
