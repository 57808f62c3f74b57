"""A build checks what it needs before its first stage, on a real Prefect API: a missing model folder, a store
under a file, refused S3 credentials (real SeaweedFS) and an endpoint that is down fail in seconds, naming the
cause, with no stage and no task run; a finished build still reruns once its endpoint is gone."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

from blocks.object_store import ObjectStore
from blocks.teacher_endpoint import TeacherEndpoint
from flows import cli
from flows.build import StageFailedError, build_dataset, run_stage
from flows.problems import synthesize_problems
from flows.sampling import sample_problems
from tests.fake_openai import FakeOpenAI
from tests.flows.prefect_runs import task_states
from tracemill.build import BuildConfig
from tracemill.preflight import PreflightError
from tracemill.store import Store, StoreUnavailableError, fingerprint_of

ROOT = Path(__file__).resolve().parents[2]


def _config(store: dict, teacher: dict) -> BuildConfig:
    data = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    data["store"] = store
    data["source"].update(num_scenes=2, scenes_per_shard=1, questions_per_scene=1)
    data["sampling"] = {"teacher": teacher, "n": 1, "max_tokens": 16}
    data["filters"] = {"require_reasoning": False, "correct_only": False}
    return BuildConfig.model_validate(data)


def _fails_at_preflight(config: BuildConfig, message: str, force: bool = False) -> None:
    """The build fails within seconds with ``message``, before any stage (no subflow) and any task run."""
    start = time.monotonic()
    state = build_dataset(config=config, force=force, return_state=True)
    assert time.monotonic() - start < 20
    assert state.is_failed()
    with pytest.raises(PreflightError) as raised:
        state.result()
    assert message in str(raised.value), str(raised.value)
    with get_client(sync_client=True) as client:
        stages = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    assert stages == [] and task_states(state) == {}


def test_a_missing_model_folder_fails_the_build_before_the_problems_stage(prefect_api, tmp_path):
    missing = tmp_path / "models" / "no-such-model"
    config = _config({"url": str(tmp_path / "store")}, {"kind": "vllm", "model": str(missing)})
    _fails_at_preflight(config, f"sampling teacher model folder {missing} does not exist")
    assert Store(str(tmp_path / "store")).fingerprints("problems") == []


def test_the_cli_fails_in_seconds_naming_the_folder(tmp_path, capsys):
    """Before a temporary Prefect server starts: no API here."""
    path = tmp_path / "build.yaml"
    config = _config({"url": str(tmp_path / "store")}, {"kind": "vllm", "model": "./no-such-model"})
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    start = time.monotonic()
    assert cli.main(["run", str(path)]) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert f"sampling teacher model folder {Path('no-such-model').absolute()} does not exist" in err


def test_a_store_under_a_file_fails_at_preflight(prefect_api, tmp_path):
    (tmp_path / "a-file").write_text("")
    with FakeOpenAI() as server:
        TeacherEndpoint(base_url=server.url, model="fake-teacher").save("preflight-teacher", overwrite=True)
        config = _config(
            {"url": str(tmp_path / "a-file" / "store")}, {"kind": "endpoint", "block": "preflight-teacher"}
        )
        _fails_at_preflight(
            config,
            f"store {tmp_path / 'a-file' / 'store'}: {tmp_path / 'a-file'} is a file, so the store folder "
            f"{tmp_path / 'a-file' / 'store'} cannot be created there",
        )


def test_s3_without_or_with_wrong_credentials_fails_at_preflight(prefect_api, s3_server, tmp_path, monkeypatch):
    # Nothing else for boto to find: no environment keys, no ~/.aws files.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    endpoint = s3_server.endpoint_url
    ObjectStore(endpoint_url=endpoint).save("preflight-no-keys", overwrite=True)
    ObjectStore(endpoint_url=endpoint, access_key_id=s3_server.access_key, secret_access_key="wrong").save(
        "preflight-wrong-secret", overwrite=True
    )
    url = f"s3://{s3_server.bucket}/preflight"
    with FakeOpenAI() as server:
        TeacherEndpoint(base_url=server.url, model="fake-teacher").save("preflight-teacher", overwrite=True)
        for block in ("preflight-no-keys", "preflight-wrong-secret"):
            config = _config({"url": url, "block": block}, {"kind": "endpoint", "block": "preflight-teacher"})
            _fails_at_preflight(config, f"store {url} (ObjectStore block '{block}'): access refused (")


def test_a_finished_build_reruns_without_its_endpoint_and_a_forced_one_names_it(prefect_api, tmp_path):
    with FakeOpenAI() as server:
        TeacherEndpoint(base_url=server.url, model="fake-teacher").save("preflight-gone", overwrite=True)
        config = _config({"url": str(tmp_path / "store")}, {"kind": "endpoint", "block": "preflight-gone"})
        locations = build_dataset(config=config)
    # The server is gone: nothing to sample, so the rerun does not need it.
    assert build_dataset(config=config) == locations
    _fails_at_preflight(
        config,
        f"sampling teacher (TeacherEndpoint block 'preflight-gone'): cannot reach {server.url}/models",
        force=True,
    )


def test_a_sampling_run_checks_its_model_at_its_entry(prefect_api, tmp_path):
    """What a GPU worker's sampling run does: the model lives there, so it is checked there."""
    missing = tmp_path / "no-such-model"
    config = _config({"url": str(tmp_path / "store")}, {"kind": "vllm", "model": str(missing)})
    problems = fingerprint_of(synthesize_problems(source=config.source, store=config.store))
    state = sample_problems(problems=problems, sampling_config=config.sampling, store=config.store, return_state=True)
    with pytest.raises(PreflightError, match=f"sampling teacher model folder {missing} does not exist"):
        state.result()
    assert task_states(state) == {}


def test_a_failed_stage_says_whether_a_rerun_can_help():
    def refused():
        raise PreflightError(["store s3://lake/x (ObjectStore block 'lake'): access refused (PermissionError)"])

    def outage():
        raise StoreUnavailableError("s3://lake/x/part-00000.parquet", "storage unavailable: connection reset")

    with pytest.raises(
        StageFailedError, match=r"\)\. Finished shards are kept: fix the cause above, then rerun"
    ) as raised:
        run_stage("judging", refused)
    assert "rerun the build to resume" not in str(raised.value)
    with pytest.raises(
        StageFailedError, match=r"connection reset\. Finished shards are kept: rerun the build to resume"
    ):
        run_stage("judging", outage)
