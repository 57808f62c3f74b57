"""The self-hosted stack's files hold together; no container engine is needed to check them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def _compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def test_compose_stack_has_server_database_store_and_both_workers():
    services = _compose()["services"]
    assert {"postgres", "prefect-server", "seaweedfs", "setup", "cpu-worker", "gpu-worker"} <= set(services)
    server = services["prefect-server"]
    assert server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    for name, pool in (("cpu-worker", "cpu"), ("gpu-worker", "gpu")):
        worker = services[name]
        assert worker["command"][:3] == ["prefect", "worker", "start"] and worker["command"][4] == pool
        assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    devices = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert "-s3" in services["seaweedfs"]["command"]


def test_compose_setup_uses_the_repository_files_and_no_literal_secret():
    compose = _compose()
    setup = compose["services"]["setup"]
    script = setup["command"][-1]
    for path in ("infra/work-pools/cpu-process.json", "infra/work-pools/gpu-process.json", "deployments/prefect.yaml"):
        assert path in script and (ROOT / path).exists()
    assert "python -m blocks.bootstrap" in script
    # Secrets come from the env file at `up` time; the compose file holds only references to them.
    for key in ("TRACEMILL_S3_ACCESS_KEY_ID", "TRACEMILL_S3_SECRET_ACCESS_KEY"):
        assert setup["environment"][key].startswith("${" + key)
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_container_files_install_the_project_with_the_right_engine():
    for service, file in (("cpu-worker", "Containerfile.cpu"), ("gpu-worker", "Containerfile.vllm")):
        assert _compose()["services"][service]["build"]["dockerfile"] == f"infra/{file}"
        copied = re.findall(r"^COPY (\S+)", (INFRA / file).read_text(), flags=re.M)
        assert all((ROOT / path).exists() for path in copied), copied
    cpu = (INFRA / "Containerfile.cpu").read_text()
    vllm = (INFRA / "Containerfile.vllm").read_text()
    assert "pip install -e '.[cpu]'" in cpu
    assert re.search(r'pip install "vllm==[\d.]+" -e \.(\s|$)', vllm) and "[cpu]" not in vllm


def test_helm_values_run_a_kubernetes_worker_on_the_gpu_pool():
    values = yaml.safe_load((INFRA / "helm" / "worker-gpu-values.yaml").read_text())
    config = values["worker"]["config"]
    assert (config["workPool"], config["type"]) == ("gpu", "kubernetes")
    assert values["worker"]["selfHostedServerApiConfig"]["apiUrl"].endswith("/api")
