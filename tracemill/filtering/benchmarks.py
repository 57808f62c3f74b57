"""Benchmark texts for decontamination, read once per run from the store and from files."""

from __future__ import annotations

import hashlib
import json

import fsspec
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tracemill.filtering.config import ContaminationConfig
from tracemill.filtering.dedup import NgramIndex
from tracemill.problems.stage import STAGE as PROBLEMS_STAGE
from tracemill.store import Store


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
