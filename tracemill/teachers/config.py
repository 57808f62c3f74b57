"""Configuration of teachers and of the sampling stage (part of the one build config)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from tracemill.config import _Model
from tracemill.form import KindPicker
from tracemill.sampling.prompts import PromptTemplate, templates
from tracemill.teachers.base import SamplingParams


class VllmTeacherConfig(_Model):
    """The vLLM offline engine, loaded once per flow run (a GPU worker in production, the CPU build here)."""

    kind: Literal["vllm"] = "vllm"
    model: str = Field(..., min_length=1, description="Hugging Face model id or local folder of the teacher.")
    dtype: str = Field("auto", description="Weights dtype: auto, bfloat16, float16 or float32.")
    tensor_parallel_size: int = Field(1, ge=1, le=64, description="GPUs one engine spans.")
    max_model_len: int | None = Field(None, ge=128, le=1_048_576, description="Context length; empty: the model's.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0.0, le=1.0, description="Share of accelerator memory (host memory on the CPU build) vLLM may use."
    )
    max_num_seqs: int = Field(256, ge=1, le=65_536, description="Sequences the engine runs at once.")
    kv_cache_memory_bytes: int | None = Field(
        None, ge=1 << 20, description="Explicit KV-cache size in bytes (the CPU build needs one on small hosts)."
    )
    enforce_eager: bool = Field(False, description="Skip graph capture and compilation: faster start, slower run.")
    enable_chunked_prefill: bool | None = Field(
        None,
        description="Split long prefills across steps; turn off on the CPU build, where seeded sampling needs it off.",
    )
    max_num_batched_tokens: int | None = Field(
        None,
        ge=256,
        le=10_000_000,
        description="Tokens per engine step; at least max_model_len without chunked prefill.",
    )
    enable_prefix_caching: bool = Field(
        True,
        description="Reuse the KV cache of shared prompt prefixes: the n samples of a problem and a shared system "
        "prompt are prefilled once.",
    )
    kv_cache_dtype: str = Field(
        "auto",
        pattern=r"^(auto|bfloat16|float16|fp8|fp8_e4m3|fp8_e5m2|fp8_inc)$",
        description="KV-cache dtype: auto (the weights' dtype) or fp8 (about twice the sequences in the same memory, "
        "slightly different numerics, so it is part of the samples fingerprint).",
    )
    speculative_method: str | None = Field(
        None,
        pattern=r"^[a-z0-9_]+$",
        description="Speculative decoding method (ngram, eagle, eagle3, mtp, draft_model…); empty: off. It changes "
        "which tokens a seed draws, so it is part of the samples fingerprint.",
    )
    speculative_model: str | None = Field(
        None, min_length=1, description="Draft model (or EAGLE head) for speculative decoding; empty for ngram."
    )
    num_speculative_tokens: int = Field(
        4, ge=1, le=64, description="Tokens proposed per step by speculative decoding (when it is on)."
    )

    def identity(self) -> dict[str, Any]:
        """What changes the samples; engine sizing and prefix caching do not (keys appear only when they apply,
        so the fingerprints of existing stores hold)."""
        identity: dict[str, Any] = {
            "kind": self.kind,
            "model": self.model,
            "dtype": self.dtype,
            "max_model_len": self.max_model_len,
        }
        if self.kv_cache_dtype != "auto":
            identity["kv_cache_dtype"] = self.kv_cache_dtype
        if self.speculative_method is not None:
            identity["speculative"] = self._speculative_config()
        return identity

    def engine_args(self) -> dict[str, Any]:
        speculative = {"speculative_method", "speculative_model", "num_speculative_tokens"}
        args = self.model_dump(exclude={"kind", "model", *speculative})
        if self.speculative_method is not None:
            args["speculative_config"] = self._speculative_config()
        return {key: value for key, value in args.items() if value is not None}

    def _speculative_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "method": self.speculative_method,
            "num_speculative_tokens": self.num_speculative_tokens,
        }
        if self.speculative_model is not None:
            config["model"] = self.speculative_model
        return config


class EndpointTeacherConfig(_Model):
    """An OpenAI-compatible endpoint (vllm serve, SGLang, DeepSeek, Together…), named by a TeacherEndpoint block."""

    kind: Literal["endpoint"] = "endpoint"
    block: str = Field(..., min_length=1, description="Name of the TeacherEndpoint block: URL, model, key, limits.")
    supports_n: bool = Field(False, description="Ask for n samples in one request (vLLM, SGLang); else one each.")
    timeout_s: float = Field(600.0, gt=0, le=86_400, description="Time limit of one request in seconds.")
    max_retries: int = Field(6, ge=0, le=50, description="Retries of a request on 429, 5xx, timeouts and resets.")


TeacherConfig = Annotated[VllmTeacherConfig | EndpointTeacherConfig, Field(discriminator="kind"), KindPicker()]


class PromptConfig(_Model):
    """A user prompt template; ``{question}``, ``{description}``, ``{problem}`` and ``{options}`` are filled in."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Template name.")
    version: int = Field(1, ge=1, le=1_000_000, description="Bump when the text changes meaning.")
    text: str = Field(..., min_length=1, description="Template text with {fields}.")
    mode: Literal["chat", "completion"] = Field("chat", description="Chat messages, or raw completion text.")
    system: str | None = Field(None, description="System message (chat mode).")

    def template(self) -> PromptTemplate:
        return PromptTemplate(self.name, self.version, self.text, self.mode, self.system)


# Fields of SamplingConfig that decide when and how work is sent and saved, never what it is.
SCHEDULING = frozenset({"checkpoint_every_problems", "checkpoint_every_s", "shards_at_once"})


class SamplingConfig(_Model):
    """The sampling stage: a teacher, a prompt and how many traces per problem."""

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
            **self.model_dump(mode="json", exclude={"teacher", *SCHEDULING, "max_failed_share"}),
            "templates": {name: t.id for name, t in sorted(self.templates().items())},
            "teacher": teacher,
        }
