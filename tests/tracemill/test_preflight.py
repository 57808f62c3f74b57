"""Preflight: a missing model folder, a store that cannot be written, refused S3 credentials, an endpoint
that does not answer are each found in seconds, named, with the cause; real S3 (SeaweedFS) and a real
local HTTP server."""

from __future__ import annotations

import json
import socket
import time

import pytest
from huggingface_hub import constants

from tests.fake_openai import FakeOpenAI
from tracemill.preflight import PreflightError, Problem, check_endpoint, check_model, check_store, raise_problems
from tracemill.store import Store


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_missing_model_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "models" / "tiny" / "nope"
    for model in [str(missing), "./models/tiny/nope", "models/tiny/nope"]:
        assert check_model(model) == Problem(f"teacher model folder {missing} does not exist"), model
    (tmp_path / "empty").mkdir()
    assert check_model(str(tmp_path / "empty")) == Problem(
        f"teacher model folder {tmp_path / 'empty'} has no config.json"
    )
    (tmp_path / "empty" / "config.json").write_text("{}")
    assert check_model(str(tmp_path / "empty")) is None


def test_a_hub_id_must_be_in_the_local_cache_when_offline(tmp_path, monkeypatch):
    """``org/name`` that is no folder here: found in the local Hugging Face cache, or named as missing."""
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "hf-cache"
    snapshot = cache / "models--acme--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (cache / "models--acme--tiny" / "refs").mkdir()
    (cache / "models--acme--tiny" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert check_model("acme/tiny") is None
    problem = check_model("acme/other", label="sampling teacher model")
    assert problem is not None and not problem.transient
    assert problem.message == (
        f"sampling teacher model 'acme/other' is no local folder ({tmp_path / 'acme/other'} does not exist) and not "
        f"in the local Hugging Face cache ({cache}); HF_HUB_OFFLINE is set, so it cannot be downloaded"
    )


def test_a_hub_id_not_cached_and_a_hub_that_does_not_answer(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_dead_port()}")
    start = time.monotonic()
    problem = check_model("acme/other")
    assert time.monotonic() - start < 10
    assert problem is not None and problem.transient
    assert "not in the local Hugging Face cache" in problem.message
    assert f"the Hub at {constants.ENDPOINT} cannot be reached (ConnectError" in problem.message


def test_a_local_store_under_a_file(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    store = Store(str(tmp_path / "a-file" / "store"))
    assert check_store(store) == Problem(
        f"store {store.url}: {tmp_path / 'a-file'} is a file, so the store folder {tmp_path / 'a-file/store'} "
        "cannot be created there"
    )


def test_a_writable_local_store_keeps_no_probe(tmp_path):
    assert check_store(Store(str(tmp_path / "store"))) is None
    assert list((tmp_path / "store").iterdir()) == []


def test_s3_store_credentials_are_checked(s3_server):
    url = f"s3://{s3_server.bucket}/preflight"
    assert check_store(Store(url, s3_server.storage_options())) is None
    kept = Store(url, s3_server.storage_options()).fs.find(f"{s3_server.bucket}/preflight")
    assert not [path for path in kept if "_preflight-" in path]  # the probe is deleted

    cases = {
        "wrong secret": s3_server.storage_options(secret="not-the-secret"),
        "unknown key": s3_server.storage_options(key="nobody", secret="nothing"),
        "no credentials": {"anon": True, "client_kwargs": {"endpoint_url": s3_server.endpoint_url}},
    }
    for case, options in cases.items():
        start = time.monotonic()
        problem = check_store(Store(url, options), label=f"store {url} (ObjectStore block 'lake')")
        assert time.monotonic() - start < 10, case
        assert problem is not None and not problem.transient, case
        assert problem.message.startswith(f"store {url} (ObjectStore block 'lake'): access refused (PermissionError"), (
            case,
            problem,
        )
        assert "check the store's credentials" in problem.message
        assert "not-the-secret" not in problem.message


def test_an_s3_endpoint_that_does_not_answer_is_transient(s3_server):
    options = s3_server.storage_options(client_kwargs={"endpoint_url": f"http://127.0.0.1:{_dead_port()}"})
    start = time.monotonic()
    problem = check_store(Store(f"s3://{s3_server.bucket}/x", options))
    assert time.monotonic() - start < 30
    assert problem is not None and problem.transient and "storage unavailable" in problem.message


def test_an_endpoint_is_reached_with_its_key_and_serves_the_model():
    with FakeOpenAI(models=("teacher-1", "teacher-2"), api_key="sk-right") as server:
        assert check_endpoint(server.url, "teacher-1", "sk-right") is None
        refused = check_endpoint(server.url, "teacher-1", "sk-wrong", label="sampling teacher")
        assert refused == Problem(f"sampling teacher: {server.url} refused the API key (HTTP 401)")
        assert "sk-wrong" not in refused.message
        assert check_endpoint(server.url, "teacher-1", None) == Problem(
            f"teacher endpoint: {server.url} needs an API key (none is set) (HTTP 401)"
        )
        assert check_endpoint(server.url, "teacher-3", "sk-right") == Problem(
            f"teacher endpoint: {server.url} does not serve model 'teacher-3' (it serves: teacher-1, teacher-2)"
        )
    url = f"http://127.0.0.1:{_dead_port()}/v1"
    start = time.monotonic()
    down = check_endpoint(url, "teacher-1", None, timeout_s=2)
    assert time.monotonic() - start < 5
    assert (
        down is not None and down.transient and down.message.startswith(f"teacher endpoint: cannot reach {url}/models")
    )


def test_every_problem_is_raised_at_once_and_transient_ones_can_wait():
    problems = [Problem("store s3://x: access refused"), None, Problem("endpoint: cannot reach", transient=True)]
    with pytest.raises(PreflightError) as raised:
        raise_problems(problems)
    assert raised.value.problems == ["store s3://x: access refused", "endpoint: cannot reach"]
    assert str(raised.value) == (
        "preflight failed, nothing was computed:\n  - store s3://x: access refused\n  - endpoint: cannot reach"
    )
    with pytest.raises(PreflightError, match="access refused") as raised:
        raise_problems(problems, transient_ok=True)
    assert raised.value.problems == ["store s3://x: access refused"]
    raise_problems([None, Problem("down", transient=True)], transient_ok=True)
