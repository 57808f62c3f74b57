"""The deployment and work-pool files are accepted by Prefect itself."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import FlowRun
from prefect.flows import load_flow_from_entrypoint
from prefect.workers.process import ProcessJobConfiguration

ROOT = Path(__file__).resolve().parents[2]


def test_deployments_point_at_flows_with_valid_parameters():
    spec = yaml.safe_load((ROOT / "deployments/prefect.yaml").read_text())
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
        parameters = {**PASSED_AT_RUN.get(deployment["name"], {}), **deployment.get("parameters", {})}
        validated = flow.validate_parameters(parameters)
        assert set(validated) <= set(flow.parameters.properties), deployment["name"]


def test_cpu_pool_template_is_accepted_by_the_server(prefect_api):
    template = json.loads((ROOT / "infra/work-pools/cpu-process.json").read_text())
    with get_client(sync_client=True) as client:
        pool = client.create_work_pool(
            WorkPoolCreate(name="cpu-template-test", type="process", base_job_template=template), overwrite=True
        )
    assert pool.base_job_template["job_configuration"] == template["job_configuration"]


# Parameters the flow that runs a deployment passes itself (the build gives the sampling runs their
# problems dataset); the UI form asks for them when the deployment is run by hand.
PASSED_AT_RUN = {"gpu": {"problems": "0123456789abcdef"}}
POOL_TEMPLATES = {
    "cpu": ("process", "cpu-process.json"),
    "gpu": ("kubernetes", "gpu-kubernetes.json"),
    "gpu-one-machine": ("process", "gpu-process.json"),
}


def _deployments() -> dict[str, dict]:
    spec = yaml.safe_load((ROOT / "deployments/prefect.yaml").read_text())
    return {d["name"]: d for d in spec["deployments"]}


def test_builds_fan_sampling_out_to_the_gpu_deployment():
    deployments = _deployments()
    for d in deployments.values():
        assert d["work_pool"]["name"] in POOL_TEMPLATES, d["name"]
    builds = [d for d in deployments.values() if d["entrypoint"] == "flows/build.py:build_dataset"]
    assert {"clevr-nightly", "math500"} <= {d["name"] for d in builds}
    assert deployments["clevr-nightly"]["schedules"][0]["cron"] == "0 2 * * *"
    assert not deployments["math500"].get("schedules"), "the MATH-500 build runs by hand"
    for build in builds:
        orchestration = build["parameters"]["config"].get("orchestration", {})
        if orchestration.get("sampling_on") == "gpu_pool":
            flow_name, name = orchestration["sampling_deployment"].split("/")
            target = deployments[name]
            assert target["entrypoint"] == "flows/sampling.py:sample_problems" and flow_name == "sample-problems"
            assert target["work_pool"]["name"] == "gpu"


@pytest.mark.parametrize("pool", sorted(POOL_TEMPLATES))
def test_pool_templates_are_accepted_by_prefect_work_pool_create(prefect_api, pool):
    kind, file = POOL_TEMPLATES[pool]
    template = ROOT / "infra/work-pools" / file
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "--no-prompt", "work-pool", "create", f"tpl-{pool}",
         "--type", kind, "--base-job-template", str(template), "--overwrite"],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        created = client.read_work_pool(f"tpl-{pool}")
    assert created.type == kind
    assert created.base_job_template == json.loads(template.read_text())


def _flow_run() -> FlowRun:
    return FlowRun(flow_id=uuid.uuid4(), name="sampling-run")


def test_gpu_kubernetes_template_makes_a_gpu_job(prefect_api):
    """The Kubernetes worker's own job configuration renders the Job the cluster would get."""
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = json.loads((ROOT / "infra/work-pools/gpu-kubernetes.json").read_text())
    values = {"gpu_count": 4, "image": "registry.example.com/tracemill-vllm:1", "env": {"HF_HOME": "/models"}}
    config = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(template, values))
    config.prepare_for_flow_run(_flow_run())
    pod = config.job_manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 4}
    assert container["image"] == "registry.example.com/tracemill-vllm:1"
    assert {"name": "HF_HOME", "value": "/models"} in container["env"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]

    default = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(template, {}))
    limits = default.job_manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"nvidia.com/gpu": 1}


def test_gpu_process_template_pins_devices_or_inherits_the_workers(prefect_api):
    template = json.loads((ROOT / "infra/work-pools/gpu-process.json").read_text())
    values = {"gpu_devices": "0,1", "env": {"HF_HOME": "/models"}}
    pinned = asyncio.run(ProcessJobConfiguration.from_template_and_values(template, values))
    pinned.prepare_for_flow_run(_flow_run())
    assert pinned.env["CUDA_VISIBLE_DEVICES"] == "0,1" and pinned.env["HF_HOME"] == "/models"

    inherited = asyncio.run(ProcessJobConfiguration.from_template_and_values(template, {}))
    inherited.prepare_for_flow_run(_flow_run())
    assert "CUDA_VISIBLE_DEVICES" not in inherited.env


def test_failed_build_automation_installs_and_replaces_itself(prefect_api):
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    spec = importlib.util.spec_from_file_location("automations", ROOT / "deployments/automations.py")
    automations = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(automations)
    block_id = CustomWebhookNotificationBlock(name="alerts", url="http://127.0.0.1:9/hook").save(
        "tm-alerts", overwrite=True
    )
    automations.install("custom-webhook/tm-alerts")
    again = automations.install("custom-webhook/tm-alerts")  # rerunning replaces, never duplicates

    with get_client(sync_client=True) as client:
        named = [a for a in client.read_automations() if a.name == automations.NAME]
    assert [a.id for a in named] == [again.id]
    automation = Automation.read(id=again.id)
    assert automation.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert automation.trigger.match_related.model_dump() == {
        "prefect.resource.role": "flow",
        "prefect.resource.name": "build-dataset",
    }
    (action,) = automation.actions
    assert action.type == "send-notification" and action.block_document_id == block_id
