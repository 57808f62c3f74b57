"""Configuration of the judging stages: how samples are judged, and when gold answers are relabelled."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, model_validator

from tracemill.config import Regex, _Model, identity_of
from tracemill.judging.llm_judge import PROMPT_VERSION
from tracemill.teachers.base import SamplingParams
from tracemill.teachers.config import TeacherConfig


class JudgeMode(StrEnum):
    """Who decides whether a sample is correct."""

    rules = "rules"  # extraction and the grader only
    llm = "llm"  # the judge model, for every sample with a parsed answer
    cascade = "cascade"  # the judge model only where the rules are undecided (and rule negatives, if asked)


class JudgeConfig(_Model):
    """Judging: the rule grader, optionally with an LLM judge for every sample or only where the rules fail."""

    identity_exclude = frozenset({"workers"})  # how many processes grade, never what they decide
    # What only the judge model reads: no part of the verdicts in rules mode.
    JUDGE_MODEL_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"teacher", "max_tokens", "temperature", "guided_regex", "seed", "recheck_negatives"}
    )

    mode: JudgeMode = Field(
        JudgeMode.rules,
        description="rules: the grader only; llm: the judge model decides every parsed answer; cascade: the judge "
        "model decides only what the rules left undecided (and rule negatives with recheck_negatives).",
    )
    teacher: TeacherConfig | None = Field(
        None, description="The judge model (vLLM engine or endpoint); needed for the llm and cascade modes."
    )
    max_tokens: int = Field(512, ge=1, le=131_072, description="Most tokens of one judge reply.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Judge sampling temperature; 0 is greedy.")
    guided_regex: Regex = Field(
        None,
        max_length=10_000,
        description="Regular expression the judge reply must match (vLLM), e.g. "
        "tracemill.judging.llm_judge.VERDICT_REGEX 'Judgement: (Yes|No)' to force the verdict line.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Base seed of the judge requests.")
    recheck_negatives: bool = Field(
        False, description="cascade: also ask the judge about answers the rules graded wrong (catches false negatives)."
    )
    timeout_s: float = Field(
        5.0,
        gt=0.0,
        le=600.0,
        description="Wall-clock limit of one symbolic comparison; past it the verdict is timeout.",
    )
    workers: int | None = Field(
        None, ge=1, le=256, description="Grading worker processes; empty: one per available core."
    )

    @model_validator(mode="after")
    def _teacher_for_llm(self) -> JudgeConfig:
        if self.mode is not JudgeMode.rules and self.teacher is None:
            raise ValueError(f"judge mode {self.mode.value!r} needs a judge teacher (judge.teacher)")
        return self

    @property
    def uses_llm(self) -> bool:
        return self.mode is not JudgeMode.rules

    def params(self) -> SamplingParams:
        return SamplingParams(
            n=1, temperature=self.temperature, top_p=1.0, max_tokens=self.max_tokens, guided_regex=self.guided_regex
        )

    def identity(self, teacher: dict[str, Any] | None) -> dict[str, Any]:
        """What decides the verdicts (``teacher``: the judge model's identity): worker count does not, nor the
        judge model's settings in rules mode."""
        if not self.uses_llm:
            return {k: v for k, v in identity_of(self).items() if k not in self.JUDGE_MODEL_FIELDS}
        return {**identity_of(self, {"teacher": teacher}), "prompt": PROMPT_VERSION}


class RelabelConfig(_Model):
    """Majority relabel of problems no sample answered correctly."""

    enabled: bool = Field(True, description="Relabel at all; off: every gold answer is kept.")
    min_votes: int = Field(
        3, ge=1, le=100_000, description="Fewest samples the majority answer needs before it replaces the gold."
    )
    min_share: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Smallest share of the parsed answers the majority answer needs (0.5: at least half).",
    )
    sources: list[str] | None = Field(
        None,
        max_length=1000,
        description="Relabel only problems of these sources (by name); empty: every source. A verified gold "
        "(CLEVR answers from the program executor, procedural scenes) is never relabelled either way.",
    )

    def may_relabel(self, source: str, trust: str | None) -> bool:
        """Whether a problem of this source, with a gold of this trust level, may get a new gold."""
        return self.enabled and trust != "verified" and (self.sources is None or source in self.sources)
