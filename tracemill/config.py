"""Configuration models: one pydantic model each for the CLI, the YAML files and the Prefect UI form.

Every field has a description and bounds, so the UI renders a form and rejects bad input before
anything runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tracemill.form import KindPicker
from tracemill.overrides import apply_overrides


def _compiles(pattern: str | None) -> str | None:
    """A pattern that does not compile is a config error when the config loads, not a failure mid-run."""
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


Regex = Annotated[str | None, AfterValidator(_compiles)]


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


_MAX_PROBLEMS = "Keep a seeded random sample of this many problems (a trial build); all when empty."
_SAMPLE_SEED = "Seed of the max_problems sample: the same seed, the same problems."


class ClevrFilesSource(_Model):
    """Counting problems from real CLEVR scene and question files."""

    kind: Literal["clevr_files"] = "clevr_files"
    scenes_path: str = Field(
        ..., min_length=1, description="CLEVR scenes JSON ({'info', 'scenes'}): a local path or a store URL."
    )
    questions_path: str | list[str] = Field(
        ...,
        min_length=1,
        description="CLEVR questions JSON ({'info', 'questions'}), or a list of them (CLOSURE ships one per "
        "family): local paths or store URLs.",
    )
    count_all: bool = Field(True, description="Add the question 'How many items are there…' for every scene.")
    on_bad_row: Literal["skip", "fail"] = Field(
        "skip",
        description="A question whose image is not in the scenes file: skip and count it, or fail the build.",
    )
    max_problems: int | None = Field(None, ge=1, le=100_000_000, description=_MAX_PROBLEMS)
    sample_seed: int = Field(0, ge=0, le=2**63 - 1, description=_SAMPLE_SEED)
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


_PATH = (
    "Hugging Face Hub dataset name, or a local copy: a Hub snapshot folder, or a jsonl, json, parquet or csv file "
    "(a glob or any fsspec URL)."
)
_CONFIG = "Dataset configuration (subset) on the Hub or in a snapshot folder; none when empty."
_SPLIT = "Split to read; rows from a single file are labelled with it."
_STREAMING = "Stream the rows instead of downloading the whole split first (large sets, with max_rows)."
_MAX_ROWS = "Keep the first this many problems (after filters and de-duplication); all when empty."


class DatasetSource(_Model):
    """Options every dataset source shares: where the rows are, and which of them become problems."""

    path: str = Field(..., min_length=1, description=_PATH)
    config: str | None = Field(None, min_length=1, description=_CONFIG)
    revision: str | None = Field(
        None, min_length=1, description="Hub branch, tag or commit to pin; the default branch when empty."
    )
    split: str = Field("test", min_length=1, description=_SPLIT)
    streaming: bool = Field(False, description=_STREAMING)
    max_rows: int | None = Field(None, ge=1, le=100_000_000, description=_MAX_ROWS)
    max_problems: int | None = Field(None, ge=1, le=100_000_000, description=_MAX_PROBLEMS)
    sample_seed: int = Field(0, ge=0, le=2**63 - 1, description=_SAMPLE_SEED)
    dedup: bool = Field(
        True, description="Drop a problem whose question (and options) repeats an earlier one; counted as skipped."
    )
    on_bad_row: Literal["repair", "skip", "fail"] = Field(
        "repair",
        description="A row that does not fit (a null field, an answer outside its options): 'repair' by the "
        "source's stated rule where it has one and skip otherwise, 'skip', or 'fail' the build. Every row "
        "repaired or skipped is counted in the manifest, the funnel and the card.",
    )
    problems_per_shard: int = Field(5_000, ge=1, le=1_000_000, description="Problems per Parquet shard.")


class Math500Source(DatasetSource):
    """MATH-500: competition math with a LaTeX answer, graded as math."""

    kind: Literal["math500"] = "math500"
    path: str = Field("HuggingFaceH4/MATH-500", min_length=1, description=_PATH)


class Gsm8kSource(DatasetSource):
    """GSM8K: grade-school word problems; the gold is the number on the solution's final '#### N' line."""

    kind: Literal["gsm8k"] = "gsm8k"
    path: str = Field("openai/gsm8k", min_length=1, description=_PATH)
    config: str | None = Field("main", min_length=1, description=_CONFIG)


class ChoiceOptions(_Model):
    """Options of multiple-choice sources: how the options are found and ordered."""

    shuffle_options: bool = Field(
        False,
        description="Shuffle each problem's options with a permutation seeded by shuffle_seed and the problem, "
        "recorded in the problem's extra as option_order (original index of each shown option).",
    )
    shuffle_seed: int = Field(
        0, ge=0, le=2**63 - 1, description="Seed of the option shuffle: the same seed, the same letter for each answer."
    )
    options_in_question: bool = Field(
        False,
        description="Read the options from the question text ('(A) … (B) …' or 'A. …' lines) when the rows "
        "have no options column.",
    )


class MmluSource(ChoiceOptions, DatasetSource):
    """MMLU: four-option multiple choice over 57 subjects."""

    kind: Literal["mmlu"] = "mmlu"
    path: str = Field("cais/mmlu", min_length=1, description=_PATH)
    config: str | None = Field("all", min_length=1, description=_CONFIG)


class MmluProSource(ChoiceOptions, DatasetSource):
    """MMLU-Pro: multiple choice with up to ten options."""

    kind: Literal["mmlu_pro"] = "mmlu_pro"
    path: str = Field("TIGER-Lab/MMLU-Pro", min_length=1, description=_PATH)


class GpqaSource(ChoiceOptions, DatasetSource):
    """GPQA: graduate-level science questions; the correct answer comes first, so the options are shuffled."""

    kind: Literal["gpqa"] = "gpqa"
    path: str = Field("Idavidrein/gpqa", min_length=1, description=_PATH)
    config: str | None = Field("gpqa_diamond", min_length=1, description=_CONFIG)
    split: str = Field("train", min_length=1, description=_SPLIT)
    shuffle_options: bool = Field(
        True, description="Shuffle each problem's options (GPQA's files list the correct answer first)."
    )


class OpenMathReasoningSource(DatasetSource):
    """OpenMathReasoning: millions of olympiad-style problems with extracted answers, read as a stream."""

    kind: Literal["openmathreasoning"] = "openmathreasoning"
    path: str = Field("nvidia/OpenMathReasoning", min_length=1, description=_PATH)
    split: str = Field("cot", min_length=1, description=_SPLIT)
    streaming: bool = Field(True, description=_STREAMING)
    max_rows: int | None = Field(10_000, ge=1, le=100_000_000, description=_MAX_ROWS)
    problem_types: list[Literal["has_answer_extracted", "no_answer_extracted", "converted_proof"]] = Field(
        ["has_answer_extracted", "no_answer_extracted"],
        min_length=1,
        description="Problem types to keep; proofs turned into answer problems (converted_proof) are out by default.",
    )


class FileFields(_Model):
    """Which column of a user's file holds each problem field."""

    question: str = Field("question", min_length=1, description="Column with the question text.")
    answer: str = Field(
        "answer", min_length=1, description="Column with the gold answer (for choices: a letter, an index or the text)."
    )
    id: str | None = Field(
        None, min_length=1, description="Column with a stable problem id; the question text is the key when empty."
    )
    choices: list[str] = Field(
        [],
        max_length=26,
        description="Options of multiple-choice problems: one column holding a list, or one column per option.",
    )
    subject: str | None = Field(None, min_length=1, description="Column with the subject, kept for filtering.")
    level: str | None = Field(None, min_length=1, description="Column with the difficulty level, kept for filtering.")
    extra: list[str] = Field([], description="Further columns kept in the row's `extra` JSON, for filtering.")


class FileSource(ChoiceOptions, DatasetSource):
    """Problems from the user's own files (jsonl, json, parquet, csv; local or any fsspec URL) or Hub dataset."""

    kind: Literal["files"] = "files"
    name: str = Field(
        ..., min_length=1, max_length=100, description="Source name written in each row; part of every problem id."
    )
    format: Literal["auto", "json", "parquet", "csv"] = Field(
        "auto", description="File format; 'auto' goes by the extension (.jsonl and .json are json)."
    )
    split: str = Field("train", min_length=1, description=_SPLIT)
    fields: FileFields = Field(default_factory=FileFields, description="Which column holds each problem field.")
    answer_type: Literal["integer", "number", "math", "choice", "text"] = Field(
        "math", description="How answers are graded; 'choice' needs fields.choices."
    )
    prompt_template: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Prompt template name; 'choice' for choice problems and 'math_boxed' otherwise when empty.",
    )

    @model_validator(mode="after")
    def _choices_need_choice(self) -> FileSource:
        if self.answer_type == "choice" and not (self.fields.choices or self.options_in_question):
            raise ValueError("answer_type 'choice' and fields.choices go together: set both, or options_in_question")
        if self.answer_type != "choice" and (self.fields.choices or self.options_in_question):
            raise ValueError("answer_type 'choice' and fields.choices go together: set both or neither")
        return self


BenchmarkSource = Math500Source | Gsm8kSource | MmluSource | MmluProSource | GpqaSource | OpenMathReasoningSource

SourceConfig = Annotated[
    ClevrFilesSource | ClevrProceduralSource | BenchmarkSource | FileSource, Field(discriminator="kind"), KindPicker()
]


class ProblemsConfig(_Model):
    """The problems stage on its own: a source and a store."""

    source: SourceConfig = Field(default_factory=ClevrProceduralSource, description="Where problems come from.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="Where datasets are written.")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping; an unreadable file names itself."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def load_yaml(path: str | Path, model: type[_Model] = ProblemsConfig, overrides: Sequence[str] = ()) -> Any:
    """Load a YAML config file, plus ``dotted.key=value`` overrides, into ``model``; errors name the file and field."""
    return _validated(path, model, apply_overrides(read_yaml(path), overrides))


def load_problems_config(path: str | Path) -> ProblemsConfig:
    """The ``source:`` and ``store:`` of a build config file, for running the problems stage alone."""
    data = read_yaml(path)
    return _validated(path, ProblemsConfig, {key: data[key] for key in ("source", "store") if key in data})


def _validated(path: str | Path, model: type[_Model], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
