"""Shard tasks retry transient storage and network faults with backoff, and give up at once on data errors
and on permanent faults: a missing model folder, a store under a file, refused S3 credentials."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.problems import synthesize_problems
from tasks import problems as problem_tasks
from tracemill.config import StoreConfig
from tracemill.problems import stage as problems
from tracemill.problems.config import ClevrProceduralSource
from tracemill.store import Dataset, Store, StoreUnavailableError


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

    monkeypatch.setattr("tracemill.problems.stage.build_shard", bad_build)
    source = ClevrProceduralSource(num_scenes=2, scenes_per_shard=2, seed=12)
    state = synthesize_problems(source=source, store=StoreConfig(url=str(tmp_path)), return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="row 3 field 'answer'"):
        state.result()
    assert calls == [0]
    assert "AwaitingRetry" not in _shard_state_history(state.state_details.flow_run_id)[0]


def _model_folder_missing(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    (tmp_path / "no-model" / "config.json").open()


def _model_transformers_cannot_resolve(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from transformers import AutoConfig  # what vLLM calls: a bare OSError "Repo id must be in the form …"

    AutoConfig.from_pretrained(str(tmp_path / "no-model"))


def _store_under_a_file(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    (tmp_path / "a-file").write_text("")
    Store(str(tmp_path / "a-file" / "store")).write_bytes(str(tmp_path / "a-file" / "store" / "x"), b"x")


def _s3_wrong_credentials(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    s3 = request.getfixturevalue("s3_server")
    store = Store(f"s3://{s3.bucket}/retries", s3.storage_options(secret="wrong"))
    store.write_bytes(f"{s3.bucket}/retries/x", b"x")


def _s3_no_credentials(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    s3 = request.getfixturevalue("s3_server")
    store = Store(f"s3://{s3.bucket}/retries", {"anon": True, "client_kwargs": {"endpoint_url": s3.endpoint_url}})
    store.write_bytes(f"{s3.bucket}/retries/x", b"x")


def _connection_refused(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    socket.create_connection(("127.0.0.1", port), timeout=2)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (_model_folder_missing, FileNotFoundError),
        (_model_transformers_cannot_resolve, OSError),
        (_store_under_a_file, StoreUnavailableError),
        (_s3_wrong_credentials, StoreUnavailableError),
        (_s3_no_credentials, StoreUnavailableError),
    ],
)
def test_permanent_faults_are_not_retried(prefect_api, tmp_path, monkeypatch, fast_retries, request, fault, error):
    """Real errors of a missing model folder, a store under a file, refused S3 credentials: one attempt each."""
    calls = []

    def bad_build(source, shard, store):
        calls.append(shard)
        fault(tmp_path, request)

    monkeypatch.setattr("tracemill.problems.stage.build_shard", bad_build)
    source = ClevrProceduralSource(num_scenes=2, scenes_per_shard=2, seed=13)
    state = synthesize_problems(source=source, store=StoreConfig(url=str(tmp_path / "store")), return_state=True)
    assert state.is_failed()
    with pytest.raises(error):
        state.result()
    assert calls == [0]
    assert _shard_state_history(state.state_details.flow_run_id) == [["Pending", "Running", "Failed"]]


def test_a_refused_connection_is_retried(prefect_api, tmp_path, monkeypatch, fast_retries):
    calls = []

    def flaky_build(source, shard, store):
        calls.append(shard)
        if len(calls) == 1:
            _connection_refused(tmp_path, None)
        return real_build(source, shard, store)

    real_build = problems.build_shard
    monkeypatch.setattr("tracemill.problems.stage.build_shard", flaky_build)
    source = ClevrProceduralSource(num_scenes=2, scenes_per_shard=2, seed=14)
    state = synthesize_problems(source=source, store=StoreConfig(url=str(tmp_path / "store")), return_state=True)
    assert state.is_completed()
    assert calls == [0, 0]
    history = _shard_state_history(state.state_details.flow_run_id)[0]
    assert "AwaitingRetry" in history and history[-1] == "Completed", history
