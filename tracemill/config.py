"""Configuration models: one pydantic model each for the CLI, the YAML files and the Prefect UI form.

Every field has a description and bounds, so the UI renders a form and rejects bad input before
anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Model):
    """Where datasets are written: a local folder or an object-store prefix."""

    url: str = Field(
        "./tracemill-data",
        min_length=1,
        description="Root of the dataset store: a local folder or an fsspec URL such as s3://bucket/prefix.",
    )
    block: str | None = Field(
        None,
        min_length=1,
        description="Name of an ObjectStore block holding the endpoint URL and credentials (for s3:// stores).",
    )


class ClevrFilesSource(_Model):
    """Counting problems from real CLEVR scene and question files."""

    kind: Literal["clevr_files"] = "clevr_files"
    scenes_path: str = Field(
        ..., min_length=1, description="CLEVR scenes JSON ({'info', 'scenes'}): a local path or a store URL."
    )
    questions_path: str = Field(
        ..., min_length=1, description="CLEVR questions JSON ({'info', 'questions'}): a local path or a store URL."
    )
    problems_per_shard: int = Field(5_000, ge=1, le=1_000_000, description="Problems per Parquet shard.")
    shuffle_seed: int | None = Field(
        None, ge=0, description="Shuffle the object lines of each scene description with this seed; off when empty."
    )


class ClevrProceduralSource(_Model):
    """Counting problems on procedurally generated scenes that follow CLEVR's rules."""

    kind: Literal["clevr_procedural"] = "clevr_procedural"
    num_scenes: int = Field(200, ge=1, le=10_000_000, description="Number of scenes to generate.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the generator; the same seed gives the same scenes.")
    questions_per_scene: int = Field(
        4, ge=0, le=50, description="Counting questions per scene, besides the 'how many items' question."
    )
    min_objects: int = Field(3, ge=1, le=10, description="Fewest objects in a scene.")
    max_objects: int = Field(10, ge=1, le=10, description="Most objects in a scene.")
    scenes_per_shard: int = Field(500, ge=1, le=100_000, description="Scenes per Parquet shard.")
    shuffle_seed: int | None = Field(
        None, ge=0, description="Shuffle the object lines of each scene description with this seed; off when empty."
    )

    @model_validator(mode="after")
    def _objects_range(self) -> ClevrProceduralSource:
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects ({self.min_objects}) is above max_objects ({self.max_objects})")
        return self


ClevrSource = Annotated[ClevrFilesSource | ClevrProceduralSource, Field(discriminator="kind")]


class ProblemsConfig(_Model):
    """The problems stage on its own: a source and a store."""

    source: ClevrSource = Field(default_factory=ClevrProceduralSource, description="Where problems come from.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="Where datasets are written.")


def load_yaml(path: str | Path, model: type[_Model] = ProblemsConfig) -> Any:
    """Load a YAML config file into ``model``; validation errors name the file and the field."""
    text = Path(path).read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
