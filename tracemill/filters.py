"""The filter stage: every verdict row is kept or rejected with one reason.

Each filter is a small function that returns ``None`` (keep) or a reason string. Row filters look at
one sample; group filters (duplicates, the per-problem cap) look at the samples of one problem that
passed everything before them. A row is rejected by the first filter that objects, in the order
of :data:`REASONS`, so every reason counts rows the previous filters let through and the funnel adds up.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from tracemill.answers import boxed_answers
from tracemill.config import _Model
from tracemill.grading import compare
from tracemill.problems import STAGE as PROBLEMS_STAGE
from tracemill.prompts import PromptTemplate, templates
from tracemill.records import KEPT, REJECTED, VERDICT
from tracemill.store import Store
from tracemill.teachers.config import PromptConfig

KEPT_STAGE = "kept"
REJECTED_STAGE = "rejected"
# Bump when a change here keeps or rejects other rows, or writes other fields, for the same config.
CODE_VERSION = "filters-1"

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
        description="Benchmark files (jsonl, json, parquet or csv; local paths or fsspec URLs).",
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
    custom_prompts: list[PromptConfig] = Field(
        default_factory=list,
        description="The sampling stage's custom prompt templates, to render kept prompts; a build fills them in "
        "from sampling.custom_prompts.",
    )


# --- normalisation and hashing --------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def words(text: str | None) -> list[str]:
    """Lower-case word tokens: punctuation, case and whitespace do not make texts differ."""
    return _WORD.findall(text.lower()) if text else []


def sample_text(row: Mapping[str, Any]) -> str:
    return f"{row.get('reasoning') or ''}\n{row.get('response') or ''}"


def sample_words(row: dict[str, Any]) -> list[str]:
    """The words of a sample's reasoning and response, computed once per row for both duplicate filters."""
    if "_words" not in row:
        row["_words"] = words(sample_text(row))
    return row["_words"]


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def ngram_hashes(text: str | None, n: int) -> set[int]:
    """Stable 64-bit hashes of the word n-grams of ``text``; a shorter text is one n-gram."""
    tokens = words(text)
    if not tokens:
        return set()
    if len(tokens) <= n:
        return {_hash64(" ".join(tokens))}
    return {_hash64(" ".join(tokens[i : i + n])) for i in range(len(tokens) - n + 1)}


@dataclass(frozen=True, eq=False)
class NgramIndex:
    """The n-grams of a set of benchmark texts, as a sorted array (cheap to hand to every shard task)."""

    n: int
    hashes: np.ndarray  # sorted unique uint64

    @classmethod
    def build(cls, texts: Iterable[str | None], n: int) -> NgramIndex:
        found: set[int] = set()
        for text in texts:
            found |= ngram_hashes(text, n)
        return cls(n, np.unique(np.fromiter(found, dtype=np.uint64, count=len(found))))

    def overlaps(self, text: str | None) -> bool:
        grams = np.fromiter(ngram_hashes(text, self.n), dtype=np.uint64)
        if not grams.size or not self.hashes.size:
            return False
        at = np.minimum(np.searchsorted(self.hashes, grams), self.hashes.size - 1)
        return bool((self.hashes[at] == grams).any())


_PRIME = np.uint64(4_294_967_311)  # the first prime above 2**32: a*x + b stays below 2**64


class MinHasher:
    """A small MinHash: CRC32 words, rotate-xor shingles, ``num_perm`` universal hashes (a*x + b) mod p."""

    def __init__(self, config: NearDuplicateConfig):
        rng = np.random.default_rng(config.seed)
        self.a = rng.integers(1, 2**31, size=config.num_perm, dtype=np.uint64)
        self.b = rng.integers(0, 2**31, size=config.num_perm, dtype=np.uint64)
        self.shingle = config.shingle

    def signature(self, tokens: Sequence[str]) -> np.ndarray:
        return self.signatures([tokens])[0]

    def signatures(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """One signature per text, as rows; texts of at least ``shingle`` words share one vectorised pass."""
        out = np.full((len(token_lists), self.a.size), _PRIME, dtype=np.uint64)
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        for i in np.flatnonzero((lengths > 0) & (lengths < self.shingle)):  # short texts: one shingle of all
            out[i] = self._min_hashes(self._shingles(self._hashed(token_lists[i]), len(token_lists[i])))
        full = np.flatnonzero(lengths >= self.shingle)
        if full.size:
            hashed = self._hashed([token for i in full for token in token_lists[i]])
            shingles = self._shingles(hashed, self.shingle)
            # Keep the shingles that lie inside one text: text r's start at its offset, len - shingle + 1 of them.
            per_text = lengths[full] - self.shingle + 1
            offsets = np.concatenate(([0], np.cumsum(lengths[full])[:-1]))
            firsts = np.concatenate(([0], np.cumsum(per_text)[:-1]))
            inside = np.arange(per_text.sum()) + np.repeat(offsets - firsts, per_text)
            out[full] = np.minimum.reduceat(self._hashes(shingles[inside]), firsts, axis=0)
        return out

    @staticmethod
    def _hashed(tokens: Sequence[str]) -> np.ndarray:
        return np.fromiter(map(zlib.crc32, map(str.encode, tokens)), dtype=np.uint64, count=len(tokens))

    @staticmethod
    def _shingles(hashed: np.ndarray, width: int) -> np.ndarray:
        count = len(hashed) - width + 1
        shingles = np.zeros(count, dtype=np.uint64)
        for j in range(width):  # rotate word j of the shingle by j bits, so word order matters
            part = hashed[j : j + count]
            shingles ^= ((part << np.uint64(j)) | (part >> np.uint64(32 - j))) & np.uint64(0xFFFFFFFF)
        return shingles

    def _hashes(self, shingles: np.ndarray) -> np.ndarray:
        return (np.outer(shingles, self.a) + self.b) % _PRIME

    def _min_hashes(self, shingles: np.ndarray) -> np.ndarray:
        return self._hashes(shingles).min(axis=0)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two MinHash signatures."""
    return float(np.mean(a == b))


# --- row filters: keep (None) or a reason ---------------------------------------------------------


def sampling_failed(row: Mapping[str, Any]) -> str | None:
    return "sampling_failed" if row["error"] is not None else None


def truncated(row: Mapping[str, Any]) -> str | None:
    return "truncated" if row["finish_reason"] == "length" else None


def no_reasoning(row: Mapping[str, Any]) -> str | None:
    reasoning = row["reasoning"]
    return "no_reasoning" if reasoning is None or not reasoning.strip() else None


def multiple_answers(row: Mapping[str, Any]) -> str | None:
    """More than one distinct ``\\boxed{}`` answer in the response (the reasoning may try several)."""
    found = list(dict.fromkeys("".join(a.split()) for a in boxed_answers(row["response"] or "")))
    if len(found) <= 1:
        return None
    same = all(compare(other, found[0], row["answer_type"]).correct is True for other in found[1:])
    return None if same else "multiple_answers"


def too_long(row: Mapping[str, Any], limit: float | None) -> str | None:
    tokens = row["completion_tokens"]
    return "too_long" if limit is not None and tokens is not None and tokens > limit else None


def label(row: Mapping[str, Any]) -> str | None:
    """Correct-only: a wrong sample is ``incorrect``, one the judge could not decide ``undecided``."""
    correct = row["correct"]
    return None if correct is True else "incorrect" if correct is False else "undecided"


def contaminated(question: str | None, index: NgramIndex) -> str | None:
    return "contaminated" if index.overlaps(question) else None


# --- group filters: one problem's surviving samples, in sample order ------------------------------


def exact_duplicates(rows: Sequence[dict[str, Any]]) -> list[str | None]:
    seen: set[str] = set()
    reasons: list[str | None] = []
    for row in rows:
        key = " ".join(sample_words(row))
        reasons.append("duplicate" if key in seen else None)
        seen.add(key)
    return reasons


def near_duplicates(rows: Sequence[dict[str, Any]], hasher: MinHasher, threshold: float) -> list[str | None]:
    signatures = hasher.signatures([sample_words(row) for row in rows])
    kept: list[int] = []
    reasons: list[str | None] = []
    for i, signature in enumerate(signatures):
        if kept and (signatures[kept] == signature).mean(axis=1).max() >= threshold:
            reasons.append("near_duplicate")
        else:
            reasons.append(None)
            kept.append(i)
    return reasons


def over_limit(rows: Sequence[dict[str, Any]], limit: int) -> list[str | None]:
    return [None if i < limit else "over_limit" for i in range(len(rows))]


# --- length bounds --------------------------------------------------------------------------------


def length_bound(tokens: np.ndarray, config: LengthOutlierConfig) -> float | None:
    """The token count above which a sample is an outlier; None without measurements."""
    if tokens.size == 0:
        return None
    if config.method == "percentile":
        return float(np.percentile(tokens, config.percentile))
    return float(tokens.mean() + config.k * tokens.std())


def measured_tokens(verdicts: pa.Table) -> np.ndarray:
    """completion_tokens of the samples that have them (failed requests excluded): the length statistics."""
    mask = pc.and_(pc.is_null(verdicts["error"]), pc.is_valid(verdicts["completion_tokens"]))
    return verdicts["completion_tokens"].filter(mask).to_numpy().astype(np.float64)


LENGTH_COLUMNS = ("completion_tokens", "error")  # all the global first pass reads


# --- the shard ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What a shard needs besides its rows: computed once per run from all shards or benchmark files."""

    config: FilterConfig
    length_limit: float | None = None  # global scope
    contamination: NgramIndex | None = None

    @property
    def templates(self) -> dict[str, PromptTemplate]:
        return {t.id: t for t in templates(p.template() for p in self.config.custom_prompts).values()}


_PROBLEM_FIELDS = [name for name in KEPT.names if name not in VERDICT.names and name not in ("system", "prompt")]


def filter_shard(relabel: pa.Table, verdicts: pa.Table, plan: Plan, *, shard: int = 0) -> tuple[pa.Table, pa.Table]:
    """Split a verdict shard into (kept, rejected) tables; ``relabel`` holds the shard's problems."""
    config = plan.config
    pids = relabel["problem_id"].to_pylist()
    position = {pid: i for i, pid in enumerate(pids)}
    rows = _rows(verdicts)
    at = []
    for i, row in enumerate(rows):
        if row["problem_id"] not in position:
            raise ValueError(
                f"verdicts shard {shard}: row {i} (problem {row['problem_id']}, sample {row['sample_idx']}) "
                "has no problem in the relabel shard: are the datasets shard-aligned?"
            )
        at.append(position[row["problem_id"]])
    questions = relabel["question"].to_pylist()
    answer_types = relabel["answer_type"].to_pylist()
    dirty = set()
    if plan.contamination is not None:
        dirty = {pid for pid, q in zip(pids, questions, strict=True) if contaminated(q, plan.contamination)}

    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        row["answer_type"] = answer_types[at[i]]
        groups.setdefault(row["problem_id"], []).append(i)
    reasons: list[str | None] = [None] * len(rows)
    group_checks = _group_checks(config)
    for pid, members in groups.items():
        members.sort(key=lambda i: rows[i]["sample_idx"])
        limit = plan.length_limit
        if config.length is not None and config.length.scope == "problem":
            limit = _problem_bound([rows[i] for i in members], config.length)
        checks = _row_checks(config, limit, pid in dirty)
        alive = []
        for i in members:
            reasons[i] = next((r for r in (check(rows[i]) for check in checks) if r), None)
            if reasons[i] is None:
                alive.append(i)
        for group_check in group_checks:
            found = group_check([rows[i] for i in alive])
            for i, reason in zip(alive, found, strict=True):
                reasons[i] = reason
            alive = [i for i, reason in zip(alive, found, strict=True) if reason is None]

    full = _join(relabel, verdicts, at, rows, plan.templates, shard)
    keep = pa.array([r is None for r in reasons], type=pa.bool_())
    kept = full.filter(keep)
    rejected = full.filter(pc.invert(keep))
    reason_column = pa.array([r for r in reasons if r is not None], type=pa.string())
    rejected = pa.Table.from_arrays([*rejected.columns, reason_column], schema=REJECTED)
    return kept, rejected


def _rows(verdicts: pa.Table) -> list[dict[str, Any]]:
    names = ["problem_id", "sample_idx", "reasoning", "response", "finish_reason", "completion_tokens"]
    names += ["error", "correct"]
    columns = {name: verdicts[name].to_pylist() for name in names}
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _row_checks(config: FilterConfig, limit: float | None, is_dirty: bool) -> list[Callable[[Any], str | None]]:
    checks: list[Callable[[Any], str | None]] = [sampling_failed]
    if is_dirty:
        checks.append(lambda row: "contaminated")
    if config.drop_truncated:
        checks.append(truncated)
    if config.require_reasoning:
        checks.append(no_reasoning)
    if config.single_answer:
        checks.append(multiple_answers)
    if config.length is not None:
        checks.append(lambda row: too_long(row, limit))
    if config.correct_only:
        checks.append(label)
    return checks


def _group_checks(config: FilterConfig) -> list[Callable[[list[dict[str, Any]]], list[str | None]]]:
    checks: list[Callable[[list[dict[str, Any]]], list[str | None]]] = []
    if config.exact_dedup:
        checks.append(exact_duplicates)
    if config.near_dedup is not None:
        hasher, threshold = MinHasher(config.near_dedup), config.near_dedup.threshold
        checks.append(lambda rows: near_duplicates(rows, hasher, threshold))
    if config.max_per_problem is not None:
        limit = config.max_per_problem
        checks.append(lambda rows: over_limit(rows, limit))
    return checks


def _problem_bound(rows: list[dict[str, Any]], config: LengthOutlierConfig) -> float | None:
    tokens = [r["completion_tokens"] for r in rows if r["error"] is None and r["completion_tokens"] is not None]
    if len(tokens) < config.min_samples:
        return None
    return length_bound(np.asarray(tokens, dtype=np.float64), config)


def _join(
    relabel: pa.Table,
    verdicts: pa.Table,
    at: list[int],
    rows: list[dict[str, Any]],
    known: Mapping[str, PromptTemplate],
    shard: int,
) -> pa.Table:
    """The verdict columns, then each row's problem fields and rendered prompt, in the KEPT schema."""
    problems = relabel.select(_PROBLEM_FIELDS).take(pa.array(at, type=pa.int64()))
    versions = verdicts["prompt_version"].to_pylist()
    rendered: dict[tuple[int, str], tuple[str | None, str]] = {}
    system, prompt = [], []
    for i, (index, version) in enumerate(zip(at, versions, strict=True)):
        key = (index, version)
        if key not in rendered:
            if version not in known:
                raise ValueError(
                    f"verdicts shard {shard}: row {i} (problem {rows[i]['problem_id']}): prompt_version {version!r} "
                    "is not a known template; add the sampling stage's custom prompts to filter_config.custom_prompts"
                )
            rendered[key] = render(known[version], relabel.slice(index, 1).to_pylist()[0])
        system.append(rendered[key][0])
        prompt.append(rendered[key][1])
    columns = [*verdicts.columns, *problems.columns, pa.array(system, pa.string()), pa.array(prompt, pa.string())]
    return pa.Table.from_arrays(columns, schema=KEPT)


def render(template: PromptTemplate, problem: Mapping[str, Any]) -> tuple[str | None, str]:
    """(system message, prompt text) of a problem: the user message of a chat prompt, or the completion text."""
    rendered = template.render(problem)
    if isinstance(rendered, str):
        return None, rendered
    system = next((m["content"] for m in rendered if m["role"] == "system"), None)
    return system, "\n\n".join(m["content"] for m in rendered if m["role"] == "user")


# --- benchmark texts, read once per run -----------------------------------------------------------


def benchmark_index(config: ContaminationConfig, store: Store) -> tuple[NgramIndex, list[str]]:
    """The n-gram index of every benchmark text, and the input fingerprints of the benchmarks."""
    texts: list[str | None] = []
    inputs = []
    for fp in config.benchmarks:
        dataset = store.dataset(PROBLEMS_STAGE, fp, "problem")
        texts += dataset.read(columns=["question"])["question"].to_pylist()
        inputs.append(f"problems/{fp}")
    for path in config.files:
        data = _read_file(path)
        table = _parse(path, data)
        if config.field not in table.column_names:
            raise ValueError(f"{path}: no column {config.field!r} (columns: {table.column_names})")
        texts += [str(v) if v is not None else None for v in table[config.field].to_pylist()]
        inputs.append(f"{path}#{hashlib.sha256(data).hexdigest()[:16]}")
    return NgramIndex.build(texts, config.n), inputs


def _read_file(path: str) -> bytes:
    try:
        with fsspec.open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: benchmark file does not exist") from exc


def _parse(path: str, data: bytes) -> pa.Table:
    name = path.lower()
    try:
        if name.endswith(".parquet"):
            return pq.read_table(pa.BufferReader(data))
        if name.endswith(".csv"):
            return pa_csv.read_csv(pa.BufferReader(data))
        if name.endswith((".jsonl", ".json")):
            text = data.decode()
            if text.lstrip().startswith("["):
                return pa.Table.from_pylist(json.loads(text))
            return pa.Table.from_pylist([json.loads(line) for line in text.splitlines() if line.strip()])
    except (ValueError, pa.ArrowInvalid) as exc:
        raise ValueError(f"{path}: not a readable benchmark file ({exc})") from exc
    raise ValueError(f"{path}: unknown benchmark file type; expected .jsonl, .json, .parquet or .csv")
