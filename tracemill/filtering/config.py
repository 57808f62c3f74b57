"""The filter stage's configuration, and the reasons a row can be rejected for."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tracemill.config import _Model

# Filter order: a row gets the first reason that applies.
REASONS = (
    "sampling_failed",  # the teacher request failed for good (error set)
    "contaminated",  # the question shares an n-gram with a benchmark test set
    "truncated",  # finish_reason == "length"
    "no_reasoning",  # nothing inside <think>…</think>
    "multiple_answers",  # more than one distinct \boxed{} answer in the response
    "too_long",  # completion_tokens above the length-outlier bound
    "incorrect",  # judged wrong against the (relabelled) gold
    "undecided",  # the judge could not decide
    "duplicate",  # same text as a kept sample of the problem, after normalisation
    "near_duplicate",  # MinHash Jaccard with a kept sample of the problem at or above the threshold
    "over_limit",  # beyond max_per_problem kept samples
)
# Rejected for their label only: exports "with labels" (SFT all, Weaver) include them.
LABEL_REASONS = ("incorrect", "undecided")


class LengthOutlierConfig(_Model):
    """Drop samples whose completion is unusually long, by the teacher's token count."""

    method: Literal["percentile", "std"] = Field(
        "percentile", description="Bound: a percentile of the token counts, or mean + k standard deviations."
    )
    percentile: float = Field(99.0, gt=0.0, le=100.0, description="Percentile bound (method 'percentile').")
    k: float = Field(3.0, gt=0.0, le=100.0, description="Standard deviations above the mean (method 'std').")
    scope: Literal["global", "problem"] = Field(
        "global", description="Statistics over every sample of the dataset, or over each problem's samples."
    )
    min_samples: int = Field(
        4, ge=2, le=100_000, description="Per-problem scope: a problem with fewer measured samples keeps them all."
    )


class ContaminationConfig(_Model):
    """Drop samples whose question shares a word n-gram with a benchmark test set."""

    benchmarks: list[str] = Field(
        default_factory=list,
        description="Fingerprints of problems datasets in the store (stage 'problems') holding benchmark questions.",
    )
    files: list[str] = Field(
        default_factory=list,
        description="Benchmark files, read like a files source's (jsonl, also .jsonl.gz, json, parquet or csv; a "
        "local path, a glob or any fsspec URL).",
    )
    field: str = Field("question", min_length=1, max_length=200, description="Column with the text in the files.")
    n: int = Field(13, ge=1, le=100, description="Words per n-gram; a text shorter than n is one n-gram.")

    @model_validator(mode="after")
    def _some_benchmark(self) -> ContaminationConfig:
        if not self.benchmarks and not self.files:
            raise ValueError("contamination needs at least one of benchmarks or files")
        return self


class NearDuplicateConfig(_Model):
    """MinHash near-duplicate detection among one problem's samples."""

    threshold: float = Field(0.9, gt=0.0, le=1.0, description="Estimated Jaccard similarity that makes a duplicate.")
    num_perm: int = Field(64, ge=8, le=1024, description="MinHash permutations: more is more precise and slower.")
    shingle: int = Field(5, ge=1, le=50, description="Words per shingle.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the hash permutations.")


class FilterConfig(_Model):
    """Which samples become training data; every dropped row is kept in `rejected` with its reason."""

    correct_only: bool = Field(
        True, description="Keep only samples judged correct; off: keep every sample with its label."
    )
    require_reasoning: bool = Field(True, description="Drop samples with no or empty reasoning inside <think> tags.")
    single_answer: bool = Field(True, description="Drop samples whose response has several distinct boxed answers.")
    drop_truncated: bool = Field(True, description="Drop samples cut off at max_tokens (finish_reason 'length').")
    length: LengthOutlierConfig | None = Field(None, description="Length-outlier filter; off when empty.")
    contamination: ContaminationConfig | None = Field(None, description="Benchmark decontamination; off when empty.")
    exact_dedup: bool = Field(True, description="Drop a sample whose normalised text repeats one kept for its problem.")
    near_dedup: NearDuplicateConfig | None = Field(
        default_factory=NearDuplicateConfig, description="Near-duplicate filter (MinHash); off when empty."
    )
    max_per_problem: int | None = Field(
        None, ge=1, le=100_000, description="Keep at most this many samples per problem (lowest sample_idx first)."
    )
