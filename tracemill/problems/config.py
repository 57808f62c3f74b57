"""The problems stage's configuration: one model per source kind, and the stage's own config.

Each source is registered (``tracemill.problems.source``); ``SourceConfig``, the union the build config
and the UI's kind picker use, is derived from the registry once every source module is imported.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from tracemill.config import StoreConfig, _Model, _validated, read_yaml
from tracemill.problems.rows import RowReport
from tracemill.problems.source import ReadSource, Row, checksum, options_for, register_source, source_union
from tracemill.records import OPTION_LETTERS

if TYPE_CHECKING:
    from tracemill.store import Store

_MAX_PROBLEMS = "Keep a seeded random sample of this many problems (a trial build); all when empty."
_SAMPLE_SEED = "Seed of the max_problems sample: the same seed, the same problems."


@register_source
class ClevrFilesSource(ReadSource):
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

    def questions_paths(self) -> list[str]:
        return [self.questions_path] if isinstance(self.questions_path, str) else self.questions_path

    def inputs(self, store: Store) -> list[str]:
        return [checksum(path, store) for path in (self.scenes_path, *self.questions_paths())]

    def where(self) -> str:
        return ", ".join(self.questions_paths())

    def read(self, store: Store, report: RowReport) -> list[Row]:
        from tracemill.problems.clevr import read_counting_problems

        return read_counting_problems(
            self.scenes_path,
            self.questions_path,
            storage_options=options_for(self.scenes_path, store),
            shuffle_seed=self.shuffle_seed,
            count_all=self.count_all,
            on_bad_row=self.on_bad_row,
            report=report,
        )


@register_source
class ClevrProceduralSource(ReadSource):
    """Counting problems on procedurally generated scenes that follow CLEVR's rules.

    Each shard generates its own range of scenes, so any worker builds any shard. With ``max_problems`` (a
    trial build) every scene is generated once, range by range as the shards would be (the same rows), and the
    seeded sample is cut into shards of about the size of a full one.
    """

    kind: Literal["clevr_procedural"] = "clevr_procedural"
    # Added after stores were written: in the fingerprint only when set, so existing builds keep theirs.
    identity_if_set = frozenset({"max_problems", "sample_seed"})
    num_scenes: int = Field(200, ge=1, le=10_000_000, description="Number of scenes to generate.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the generator; the same seed gives the same scenes.")
    questions_per_scene: int = Field(
        4, ge=0, le=50, description="Counting questions per scene, besides the 'how many items' question."
    )
    min_objects: int = Field(3, ge=1, le=10, description="Fewest objects in a scene.")
    max_objects: int = Field(10, ge=1, le=10, description="Most objects in a scene.")
    max_problems: int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="Keep a seeded random sample of this many problems (a trial build); all when empty. Every "
        "scene is generated once to draw it.",
    )
    sample_seed: int = Field(0, ge=0, le=2**63 - 1, description=_SAMPLE_SEED)
    scenes_per_shard: int = Field(500, ge=1, le=100_000, description="Scenes per Parquet shard.")
    shuffle_seed: int | None = Field(
        None, ge=0, description="Shuffle the object lines of each scene description with this seed; off when empty."
    )

    @model_validator(mode="after")
    def _objects_range(self) -> ClevrProceduralSource:
        if self.min_objects > self.max_objects:
            raise ValueError(f"min_objects ({self.min_objects}) is above max_objects ({self.max_objects})")
        return self

    @property
    def problems_per_shard(self) -> int:
        """Shard size of a sample: the most problems a full shard of scenes holds."""
        return self.scenes_per_shard * (self.questions_per_scene + 1)

    def where(self) -> str:
        return f"procedural CLEVR scenes (seed {self.seed})"

    def read(self, store: Store, report: RowReport) -> list[Row]:
        shards = -(-self.num_scenes // self.scenes_per_shard)
        return [row for shard in range(shards) for row in self._scene_rows(shard)[0]]

    def num_shards(self, store: Store) -> int:
        if self.max_problems is not None:
            return super().num_shards(store)
        return -(-self.num_scenes // self.scenes_per_shard)

    def shard(self, shard: int, store: Store) -> tuple[list[Row], str]:
        return super().shard(shard, store) if self.max_problems is not None else self._scene_rows(shard)

    def row_report(self, store: Store) -> RowReport:
        return RowReport()  # generated problems always fit

    def _scene_rows(self, shard: int) -> tuple[list[Row], str]:
        """The rows of the scenes of shard ``shard`` (of ``scenes_per_shard`` scenes), and what they are."""
        from tracemill.problems.clevr_questions import procedural_problems

        start = shard * self.scenes_per_shard
        stop = min(self.num_scenes, start + self.scenes_per_shard)
        rows = procedural_problems(
            self.seed,
            start,
            stop,
            questions_per_scene=self.questions_per_scene,
            min_objects=self.min_objects,
            max_objects=self.max_objects,
            shuffle_seed=self.shuffle_seed,
        )
        return rows, f"procedural CLEVR scenes {start}..{stop - 1}"


_PATH = (
    "Hugging Face Hub dataset name, or a local copy: a Hub snapshot folder, or a jsonl, json, parquet or csv file "
    "(a glob or any fsspec URL)."
)
_CONFIG = "Dataset configuration (subset) on the Hub or in a snapshot folder; none when empty."
_SPLIT = "Split to read; rows from a single file are labelled with it."
_STREAMING = "Stream the rows instead of downloading the whole split first (large sets, with max_rows)."
_MAX_ROWS = "Keep the first this many problems (after filters and de-duplication); all when empty."


class DatasetSource(ReadSource):
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

    # ``module:function`` reading (source, storage options, report) -> problem rows; imported on first read, so
    # a config loads without the readers' packages.
    reader: ClassVar[str]

    def inputs(self, store: Store) -> list[str]:
        from tracemill.problems.hub import input_identity

        return input_identity(self, options_for(self.path, store))

    def where(self) -> str:
        return self.path

    def read(self, store: Store, report: RowReport) -> list[Row]:
        module, name = self.reader.split(":")
        return getattr(importlib.import_module(module), name)(self, options_for(self.path, store), report)


@register_source
class Math500Source(DatasetSource):
    """MATH-500: competition math with a LaTeX answer, graded as math."""

    kind: Literal["math500"] = "math500"
    reader = "tracemill.problems.math500:read_math500"
    path: str = Field("HuggingFaceH4/MATH-500", min_length=1, description=_PATH)


@register_source
class Gsm8kSource(DatasetSource):
    """GSM8K: grade-school word problems; the gold is the number on the solution's final '#### N' line."""

    kind: Literal["gsm8k"] = "gsm8k"
    reader = "tracemill.problems.gsm8k:read_gsm8k"
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


@register_source
class MmluSource(ChoiceOptions, DatasetSource):
    """MMLU: four-option multiple choice over 57 subjects."""

    kind: Literal["mmlu"] = "mmlu"
    reader = "tracemill.problems.choice:read_mmlu"
    path: str = Field(
        "cais/mmlu",
        min_length=1,
        description="Hugging Face Hub dataset name, or a local copy: a Hub snapshot folder, the original release's "
        "folder of headerless {subject}_{split}.csv files, or a jsonl, json, parquet or csv file (a glob or any "
        "fsspec URL).",
    )
    config: str | None = Field(
        "all",
        min_length=1,
        description="A subject, or 'all' (on the Hub, in a snapshot or the original release's folder).",
    )


@register_source
class MmluProSource(ChoiceOptions, DatasetSource):
    """MMLU-Pro: multiple choice with up to ten options."""

    kind: Literal["mmlu_pro"] = "mmlu_pro"
    reader = "tracemill.problems.choice:read_mmlu_pro"
    path: str = Field("TIGER-Lab/MMLU-Pro", min_length=1, description=_PATH)


@register_source
class GpqaSource(ChoiceOptions, DatasetSource):
    """GPQA: graduate-level science questions; the correct answer comes first, so the options are shuffled."""

    kind: Literal["gpqa"] = "gpqa"
    reader = "tracemill.problems.choice:read_gpqa"
    path: str = Field("Idavidrein/gpqa", min_length=1, description=_PATH)
    config: str | None = Field("gpqa_diamond", min_length=1, description=_CONFIG)
    split: str = Field("train", min_length=1, description=_SPLIT)
    shuffle_options: bool = Field(
        True, description="Shuffle each problem's options (GPQA's files list the correct answer first)."
    )


@register_source
class OpenMathReasoningSource(DatasetSource):
    """OpenMathReasoning: millions of olympiad-style problems with extracted answers, read as a stream."""

    kind: Literal["openmathreasoning"] = "openmathreasoning"
    reader = "tracemill.problems.openmath:read_openmathreasoning"
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
        max_length=len(OPTION_LETTERS),
        description="Options of multiple-choice problems: one column holding a list, or one column per option.",
    )
    subject: str | None = Field(None, min_length=1, description="Column with the subject, kept for filtering.")
    level: str | None = Field(None, min_length=1, description="Column with the difficulty level, kept for filtering.")
    extra: list[str] = Field([], description="Further columns kept in the row's `extra` JSON, for filtering.")


@register_source
class FileSource(ChoiceOptions, DatasetSource):
    """Problems from the user's own files (jsonl, json, parquet, csv; local or any fsspec URL) or Hub dataset."""

    kind: Literal["files"] = "files"
    reader = "tracemill.problems.files:read_files"
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


# A source defined in a module of its own registers when imported: import it here, above this line.
SourceConfig = source_union()


class ProblemsConfig(_Model):
    """The problems stage on its own: a source and a store."""

    source: SourceConfig = Field(default_factory=ClevrProceduralSource, description="Where problems come from.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="Where datasets are written.")


def load_problems_config(path: str | Path) -> ProblemsConfig:
    """The ``source:`` and ``store:`` of a build config file, for running the problems stage alone."""
    data = read_yaml(path)
    return _validated(path, ProblemsConfig, {key: data[key] for key in ("source", "store") if key in data})
