"""What the Prefect API recorded about a flow run: its task runs' states and its artifacts."""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import Artifact
from prefect.states import State


def task_states(state: State[Any]) -> dict[str, str]:
    """Task run name → state name, for the flow run that ended in ``state``."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    return {run.name: run.state.name for run in runs if run.state is not None}


def stage_task_states(state: State[Any]) -> dict[str, dict[str, str]]:
    """Stage flow name → its task runs' states, for every stage (subflow) the build that ended in ``state`` ran."""
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
        names = {flow.id: flow.name for flow in client.read_flows()}
    return {names[child.flow_id]: task_states(child.state) for child in children if child.state is not None}


def artifacts(state: State[Any]) -> dict[str, Artifact]:
    """Artifact key → artifact, for the flow run that ended in ``state``."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    return {a.key: a for a in found if a.key is not None}
