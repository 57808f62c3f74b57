"""The build config: one pydantic model for the CLI, the YAML files in ``configs/`` and the Prefect UI form.

It composes each stage's own config model, so a field is declared once, with its description and
bounds, wherever it is edited.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field

from tracemill.config import StoreConfig, _Model, load_yaml
from tracemill.export.config import ExportConfig
from tracemill.filtering.config import FilterConfig
from tracemill.judging.config import JudgeConfig, RelabelConfig
from tracemill.problems.config import ClevrProceduralSource, SourceConfig
from tracemill.sampling.config import SamplingConfig
from tracemill.scoring.config import ScoresConfig


class OrchestrationConfig(_Model):
    """Where the stages run: sampling in the build's own process, or fanned out to the GPU work pool."""

    sampling_on: Literal["in_process", "gpu_pool"] = Field(
        "in_process",
        description="in_process: the build samples itself (local runs, the demo). gpu_pool: one run of the "
        "sampling deployment per chunk of shards, on the GPU work pool.",
    )
    sampling_deployment: str = Field(
        "sample-problems/gpu",
        min_length=3,
        pattern=r"^[^/]+/[^/]+$",
        description="The sampling deployment (flow name/deployment name) that gpu_pool runs.",
    )
    shards_per_run: int = Field(
        4, ge=1, le=100_000, description="Problem shards per sampling flow run on the GPU pool (one engine load each)."
    )


class BuildConfig(_Model):
    """A whole dataset build: source → sample → judge → relabel → re-judge → filter → export."""

    name: str = Field(
        "tracemill-dataset",
        min_length=1,
        max_length=96,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Name of the dataset, used in the dataset card and the export folder.",
    )
    source: SourceConfig = Field(ClevrProceduralSource(), description="Where problems come from.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="Where every stage's datasets are written.")
    sampling: SamplingConfig = Field(..., description="The teacher, the prompt and how many traces per problem.")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="How sampled answers are judged.")
    relabel: RelabelConfig = Field(
        default_factory=RelabelConfig, description="Majority relabel where no sample matches the gold answer."
    )
    scores: ScoresConfig = Field(
        default_factory=ScoresConfig, description="Verifiers that score every re-judged sample; none by default."
    )
    filters: FilterConfig = Field(default_factory=FilterConfig, description="Which judged samples are kept.")
    export: ExportConfig = Field(default_factory=ExportConfig, description="What is written from the kept samples.")
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig, description="Where the stages run.")


def load_build_config(path: str | Path, overrides: Sequence[str] = ()) -> BuildConfig:
    """A YAML build config plus ``--set dotted.key=value`` overrides; errors name the file and the field."""
    return load_yaml(path, BuildConfig, overrides)
