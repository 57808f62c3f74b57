"""The deployment and work-pool files are accepted by Prefect itself."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]


def test_deployments_point_at_flows_with_valid_parameters():
    spec = yaml.safe_load((ROOT / "deployments/prefect.yaml").read_text())
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
        validated = flow.validate_parameters(deployment.get("parameters", {}))
        assert set(validated) <= set(flow.parameters.properties), deployment["name"]


def test_cpu_pool_template_is_accepted_by_the_server(prefect_api):
    template = json.loads((ROOT / "infra/work-pools/cpu-process.json").read_text())
    with get_client(sync_client=True) as client:
        pool = client.create_work_pool(
            WorkPoolCreate(name="cpu-template-test", type="process", base_job_template=template), overwrite=True
        )
    assert pool.base_job_template["job_configuration"] == template["job_configuration"]
