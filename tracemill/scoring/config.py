"""Configuration of the scores stage: a list of verifiers, each with a name, a kind and its settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from tracemill.config import Regex, _Model, identity_of
from tracemill.form import KindPicker
from tracemill.judging.llm_judge import VERDICT_REGEX
from tracemill.teachers.base import SamplingParams
from tracemill.teachers.config import TeacherConfig

_NAME = "Verifier name: the `verifier` of its score rows and the prefix of its Weaver columns ({name}_scores…)."


class PoolingEngineConfig(_Model):
    """The vLLM pooling engine of a reward model: sizing only, never part of a fingerprint."""

    gpu_memory_utilization: float = Field(
        0.9, gt=0.0, le=1.0, description="Share of accelerator memory (host memory on the CPU build) vLLM may use."
    )
    max_num_seqs: int = Field(256, ge=1, le=65_536, description="Sequences the engine scores at once.")
    kv_cache_memory_bytes: int | None = Field(
        None, ge=1 << 20, description="Explicit KV-cache size in bytes (the CPU build needs one on small hosts)."
    )
    enforce_eager: bool = Field(False, description="Skip graph capture and compilation: faster start, slower run.")
    enable_chunked_prefill: bool | None = Field(None, description="Split long prefills across steps; empty: vLLM's.")
    max_num_batched_tokens: int | None = Field(
        None, ge=256, le=10_000_000, description="Tokens per engine step; at least max_length without chunked prefill."
    )
    tensor_parallel_size: int = Field(1, ge=1, le=64, description="GPUs one engine spans.")


class _PoolingVerifier(_Model):
    """A model with a classification head, served by vLLM's pooling runner."""

    identity_exclude = frozenset({"engine"})  # engine sizing changes how fast, not the scores

    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", description=_NAME)
    model: str = Field(..., min_length=1, description="Hugging Face model id or local folder of the reward model.")
    dtype: str = Field("auto", description="Weights dtype: auto, bfloat16, float16 or float32.")
    text: Literal["full", "answer"] = Field(
        "full",
        description="What is scored after the prompt: the full trace (reasoning and response) or the answer part "
        "(the response after the reasoning).",
    )
    max_length: int = Field(
        4096,
        ge=16,
        le=1_048_576,
        description="Most tokens scored (prompt and text); past it starts are cut (the text keeps its end and at "
        "least half of the tokens) and the row is marked truncated.",
    )
    engine: PoolingEngineConfig = Field(default_factory=PoolingEngineConfig, description="Engine sizing.")

    def engine_args(self) -> dict[str, Any]:
        args = {**self.engine.model_dump(), "dtype": self.dtype, "max_model_len": self.max_length}
        return {key: value for key, value in args.items() if value is not None}


class RewardModelVerifier(_PoolingVerifier):
    """An outcome reward model: one score per sample from a sequence-classification head (vLLM ``classify``)."""

    kind: Literal["reward_model"] = "reward_model"


class ProcessRewardModelVerifier(_PoolingVerifier):
    """A process reward model: one score per reasoning step, read at each step's last token (``token_classify``)."""

    kind: Literal["process_reward_model"] = "process_reward_model"
    step_separator: str = Field(
        "\n\n", min_length=1, max_length=100, description="Text between steps (a blank line by default)."
    )


class LmJudgeVerifier(_Model):
    """An LM judge: a model asked whether a sample's answer is right, parsed strictly to 1.0 / 0.0 (else null)."""

    kind: Literal["lm_judge"] = "lm_judge"
    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", description=_NAME)
    teacher: TeacherConfig = Field(..., description="The judge model (vLLM engine or endpoint).")
    verdicts_per_sample: int = Field(
        1, ge=1, le=64, description="Verdicts asked per sample, each with its own seed (Weaver's {name}_verdicts)."
    )
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Judge sampling temperature.")
    max_tokens: int = Field(512, ge=1, le=131_072, description="Most tokens of one judge reply.")
    guided_regex: Regex = Field(
        None,
        max_length=10_000,
        description=f"Regular expression the reply must match (vLLM), e.g. {VERDICT_REGEX!r} to force the verdict.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Base seed of the judge requests.")

    def params(self) -> SamplingParams:
        return SamplingParams(
            n=self.verdicts_per_sample,
            temperature=self.temperature,
            top_p=1.0,
            max_tokens=self.max_tokens,
            guided_regex=self.guided_regex,
        )

    def identity(self, teacher: dict[str, Any]) -> dict[str, Any]:
        """What decides the verdicts (``teacher``: the judge model's identity)."""
        return identity_of(self, {"teacher": teacher})


VerifierConfig = Annotated[
    RewardModelVerifier | ProcessRewardModelVerifier | LmJudgeVerifier, Field(discriminator="kind"), KindPicker()
]


class ScoresConfig(_Model):
    """The scores stage: verifiers that score every re-judged sample; off while the list is empty."""

    verifiers: list[VerifierConfig] = Field(
        default_factory=list, max_length=64, description="Verifiers run on every sample; none: no scores stage."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> ScoresConfig:
        names = [v.name for v in self.verifiers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"verifier names must be unique; repeated: {repeated}")
        return self
