"""Configuration of teachers (part of the sampling, judging and scoring configs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from tracemill.config import _Model
from tracemill.form import KindPicker

if TYPE_CHECKING:
    from tracemill.preflight import Problem
    from tracemill.teachers.base import Teacher
    from tracemill.teachers.factory import EndpointSettings


class _TeacherConfig(_Model):
    """What the teacher factory (``tracemill.teachers.factory``) asks of every teacher config."""

    def endpoint_block(self) -> str | None:
        """The TeacherEndpoint block whose settings (URL, model, key, limits) this teacher needs; None: none."""
        return None

    def build(self, endpoint: EndpointSettings | None) -> Teacher:
        """The backend; its module is imported here, so a config loads without the backend's packages."""
        raise NotImplementedError

    def check(self, endpoint: EndpointSettings | None, label: str) -> Problem | None:
        """Preflight: is the model or endpoint there (see ``tracemill.preflight``)."""
        raise NotImplementedError


class VllmTeacherConfig(_TeacherConfig):
    """The vLLM offline engine, loaded once per flow run (a GPU worker in production, the CPU build here)."""

    # Engine sizing and prefix caching change how fast, never which tokens a seed draws.
    identity_exclude = frozenset(
        {
            "tensor_parallel_size",
            "gpu_memory_utilization",
            "max_num_seqs",
            "kv_cache_memory_bytes",
            "enforce_eager",
            "enable_chunked_prefill",
            "max_num_batched_tokens",
            "enable_prefix_caching",
        }
    )
    identity_if_set = frozenset({"kv_cache_dtype", "speculative_method", "speculative_model", "num_speculative_tokens"})

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

    def build(self, endpoint: EndpointSettings | None) -> Teacher:
        from tracemill.teachers.offline import VllmTeacher

        return VllmTeacher(self.model, **self.engine_args())

    def check(self, endpoint: EndpointSettings | None, label: str) -> Problem | None:
        from tracemill.preflight import check_model

        return check_model(self.model, f"{label} model")

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


class EndpointTeacherConfig(_TeacherConfig):
    """An OpenAI-compatible endpoint (vllm serve, SGLang, DeepSeek, Together…), named by a TeacherEndpoint block."""

    # The endpoint's URL and model name it (the factory adds them), not the block's name; one request for n
    # samples is seeded as n requests are (vLLM seeds choice i with seed + i); time limits and retries only
    # decide when a request fails.
    identity_exclude = frozenset({"block", "supports_n", "timeout_s", "max_retries"})

    kind: Literal["endpoint"] = "endpoint"
    block: str = Field(..., min_length=1, description="Name of the TeacherEndpoint block: URL, model, key, limits.")
    supports_n: bool = Field(False, description="Ask for n samples in one request (vLLM, SGLang); else one each.")
    timeout_s: float = Field(600.0, gt=0, le=86_400, description="Time limit of one request in seconds.")
    max_retries: int = Field(6, ge=0, le=50, description="Retries of a request on 429, 5xx, timeouts and resets.")

    def endpoint_block(self) -> str | None:
        return self.block

    def build(self, endpoint: EndpointSettings | None) -> Teacher:
        from tracemill.teachers.endpoint import EndpointTeacher

        assert endpoint is not None  # the factory checks
        return EndpointTeacher(
            **vars(endpoint), timeout_s=self.timeout_s, max_retries=self.max_retries, supports_n=self.supports_n
        )

    def check(self, endpoint: EndpointSettings | None, label: str) -> Problem | None:
        from tracemill.preflight import check_endpoint

        assert endpoint is not None  # the factory checks
        return check_endpoint(endpoint.base_url, endpoint.model, endpoint.api_key, label)


TeacherConfig = Annotated[VllmTeacherConfig | EndpointTeacherConfig, Field(discriminator="kind"), KindPicker()]
