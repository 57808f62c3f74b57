"""`python -m blocks.bootstrap` turns environment variables into block documents on a real Prefect API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect.client.orchestration import get_client
from pydantic import SecretStr

from blocks import HubTarget, ObjectStore, TeacherEndpoint

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "TRACEMILL_S3_ACCESS_KEY_ID": "AKIA-bootstrap-test-id",
    "TRACEMILL_S3_SECRET_ACCESS_KEY": "s3-secret-bootstrap-value",
    "TRACEMILL_TEACHER_API_KEY": "sk-teacher-bootstrap-value",
    "HF_TOKEN": "hf_bootstrap_token_value",
}


def _bootstrap(prefect_api: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEMILL_", "HF_TOKEN"))}
    return subprocess.run(
        [sys.executable, "-m", "blocks.bootstrap", *args],
        env={**clean, "PREFECT_API_URL": prefect_api, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_blocks_from_environment_keep_secrets_secret(prefect_api):
    env = {
        **SECRETS,
        "TRACEMILL_S3_ENDPOINT_URL": "http://seaweedfs:8333",
        "TRACEMILL_TEACHER_BASE_URL": "https://api.deepseek.com/v1",
        "TRACEMILL_TEACHER_MODEL": "deepseek-reasoner",
        "TRACEMILL_TEACHER_REQUESTS_PER_MINUTE": "600",
        "TRACEMILL_HUB_REPO_ID": "my-org/clevr-r1-traces",
    }
    done = _bootstrap(
        prefect_api, env, "--store-block", "boot-s3", "--teacher-block", "boot-ds", "--hub-block", "boot-hub"
    )
    assert done.returncode == 0, done.stderr
    assert "ObjectStore 'boot-s3' saved" in done.stdout
    assert "TeacherEndpoint 'boot-ds' saved" in done.stdout
    assert "HubTarget 'boot-hub' saved" in done.stdout
    for secret in SECRETS.values():
        assert secret not in done.stdout + done.stderr

    store = ObjectStore.load("boot-s3")
    assert isinstance(store.access_key_id, SecretStr) and isinstance(store.secret_access_key, SecretStr)
    assert store.storage_options() == {
        "key": SECRETS["TRACEMILL_S3_ACCESS_KEY_ID"],
        "secret": SECRETS["TRACEMILL_S3_SECRET_ACCESS_KEY"],
        "client_kwargs": {"endpoint_url": "http://seaweedfs:8333"},
    }
    teacher = TeacherEndpoint.load("boot-ds")
    assert teacher.api_key.get_secret_value() == SECRETS["TRACEMILL_TEACHER_API_KEY"]
    assert (teacher.model, teacher.requests_per_minute, teacher.max_concurrency) == ("deepseek-reasoner", 600.0, 16)
    hub = HubTarget.load("boot-hub")
    assert hub.repo_id == "my-org/clevr-r1-traces" and hub.token.get_secret_value() == SECRETS["HF_TOKEN"]

    # What the UI and the API show of the document: the secret fields obfuscated.
    with get_client(sync_client=True) as client:
        shown = client.read_block_document_by_name("boot-s3", "tracemill-object-store", include_secrets=False)
    assert shown.data["endpoint_url"] == "http://seaweedfs:8333"
    assert SECRETS["TRACEMILL_S3_SECRET_ACCESS_KEY"] not in str(shown.data)

    # Running it again with a rotated key updates the block in place.
    rotated = _bootstrap(
        prefect_api, {**env, "TRACEMILL_S3_SECRET_ACCESS_KEY": "rotated-secret"}, "--store-block", "boot-s3"
    )
    assert rotated.returncode == 0, rotated.stderr
    assert ObjectStore.load("boot-s3").secret_access_key.get_secret_value() == "rotated-secret"


def test_incomplete_variables_name_the_missing_ones_without_values(prefect_api):
    done = _bootstrap(
        prefect_api,
        {
            "TRACEMILL_TEACHER_API_KEY": SECRETS["TRACEMILL_TEACHER_API_KEY"],
            "TRACEMILL_TEACHER_MAX_CONCURRENCY": "lots",
        },
        "--teacher-block",
        "boot-incomplete",
    )
    assert done.returncode == 2
    assert "TRACEMILL_TEACHER_BASE_URL: Field required" in done.stderr
    assert "TRACEMILL_TEACHER_MODEL: Field required" in done.stderr
    assert "TRACEMILL_TEACHER_MAX_CONCURRENCY" in done.stderr and "lots" not in done.stderr
    assert SECRETS["TRACEMILL_TEACHER_API_KEY"] not in done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        names = {b.name for b in client.read_block_documents()}
    assert "boot-incomplete" not in names


def test_a_token_alone_makes_no_hub_block(prefect_api):
    done = _bootstrap(prefect_api, {"HF_TOKEN": SECRETS["HF_TOKEN"]})
    assert done.returncode == 0, done.stderr
    assert "nothing saved" in done.stdout
