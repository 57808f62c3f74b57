"""The sampling stage's configuration: a teacher, a prompt and how many traces per problem."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tracemill.config import _Model, identity_of
from tracemill.sampling.prompts import PromptTemplate, templates
from tracemill.teachers.base import SamplingParams
from tracemill.teachers.config import TeacherConfig


class PromptConfig(_Model):
    """A user prompt template; ``{question}``, ``{description}``, ``{problem}`` and ``{options}`` are filled in."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Template name.")
    version: int = Field(1, ge=1, le=1_000_000, description="Bump when the text changes meaning.")
    text: str = Field(..., min_length=1, description="Template text with {fields}.")
    mode: Literal["chat", "completion"] = Field("chat", description="Chat messages, or raw completion text.")
    system: str | None = Field(None, description="System message (chat mode).")

    def template(self) -> PromptTemplate:
        return PromptTemplate(self.name, self.version, self.text, self.mode, self.system)


class SamplingConfig(_Model):
    """The sampling stage: a teacher, a prompt and how many traces per problem."""

    # Checkpointing and concurrency decide when and how work is sent and saved, the failure bound whether a shard
    # fails: never what a sample is.
    identity_exclude = frozenset(
        {"checkpoint_every_problems", "checkpoint_every_s", "shards_at_once", "max_failed_share"}
    )

    teacher: TeacherConfig = Field(..., description="Which model generates the traces, and where.")
    prompt: str | None = Field(
        None, description="Prompt template name (clevr_v1, clevr_v2, math_boxed, choice, r1_think_answer or a custom "
        "one); empty: each problem's default template."
    )  # fmt: skip
    custom_prompts: list[PromptConfig] = Field(default_factory=list, description="Extra prompt templates.")
    n: int = Field(4, ge=1, le=1024, description="Samples per problem.")
    temperature: float = Field(0.6, ge=0.0, le=2.0, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(4096, ge=1, le=1_048_576, description="Most tokens generated per sample.")
    seed: int = Field(
        0, ge=0, le=2**31 - 1, description="Base seed; each problem's samples derive their seeds from it."
    )
    guided_regex: str | None = Field(None, description="Regular expression every sample must match (vLLM).")
    guided_json: str | None = Field(None, description="JSON schema every sample must match (vLLM), as JSON text.")
    checkpoint_every_problems: int = Field(
        64,
        ge=1,
        le=1_000_000,
        description="Checkpoint finished problems every this many (or every checkpoint_every_s): a crash redoes at "
        "most this window.",
    )
    checkpoint_every_s: float = Field(
        60.0, gt=0.0, le=86_400.0, description="Checkpoint finished problems at least this often, in seconds."
    )
    shards_at_once: int = Field(
        4,
        ge=1,
        le=1024,
        description="Shards of a run whose requests stream into the teacher together (more: a fuller queue, "
        "more memory).",
    )
    max_failed_share: float = Field(
        0.05, ge=0.0, le=1.0, description="A shard fails when more than this share of its requests failed for good."
    )

    @field_validator("guided_json")
    @classmethod
    def _json_schema(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                json.loads(value)
            except ValueError as exc:
                raise ValueError(f"guided_json is not valid JSON: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _known_prompt(self) -> SamplingConfig:
        if self.prompt is not None and self.prompt not in self.templates():
            raise ValueError(f"unknown prompt template {self.prompt!r}; known: {sorted(self.templates())}")
        return self

    def templates(self) -> dict[str, PromptTemplate]:
        return templates(p.template() for p in self.custom_prompts)

    def params(self) -> SamplingParams:
        return SamplingParams(
            n=self.n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            guided_regex=self.guided_regex,
            guided_json=json.loads(self.guided_json) if self.guided_json else None,
        )

    def identity(self, teacher: dict[str, Any]) -> dict[str, Any]:
        """The part of the config that decides the samples: checkpointing, concurrency and failure bound do not."""
        return {
            **identity_of(self, {"teacher": teacher}),
            "templates": {name: t.id for name, t in sorted(self.templates().items())},
        }
