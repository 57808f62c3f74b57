"""Benchmark texts for decontamination, read once per run from problems datasets in the store and from
the user's files (any format and URL :mod:`tracemill.user_files` reads)."""

from __future__ import annotations

import hashlib
from typing import Any

import fsspec

from tracemill.filtering.config import ContaminationConfig
from tracemill.filtering.dedup import NgramIndex
from tracemill.problems.source import options_for
from tracemill.problems.stage import STAGE as PROBLEMS_STAGE
from tracemill.store import Store
from tracemill.user_files import files_of, read_rows


def benchmark_index(config: ContaminationConfig, store: Store) -> tuple[NgramIndex, list[str]]:
    """The n-gram index of every benchmark text, and the input fingerprints of the benchmarks."""
    texts: list[str | None] = []
    inputs = []
    for fp in config.benchmarks:
        dataset = store.dataset(PROBLEMS_STAGE, fp, "problem")
        texts += dataset.read(columns=["question"])["question"].to_pylist()
        inputs.append(f"problems/{fp}")
    for path in config.files:
        options = options_for(path, store)
        what = f"benchmark file {path}"
        for i, row in enumerate(read_rows(path, what=what, storage_options=options)):
            if config.field not in row:
                raise ValueError(f"{what}: row {i}: no column {config.field!r} (columns: {sorted(row)})")
            value = row[config.field]
            texts.append(str(value) if value is not None else None)
        inputs += _digests(path, options)
    return NgramIndex.build(texts, config.n), inputs


def _digests(path: str, storage_options: dict[str, Any]) -> list[str]:
    """``{file}#{sha256 prefix}`` of each file ``path`` names: an edited benchmark file is a new input."""
    fs, files = files_of(path, storage_options)
    named = len(files) == 1 and not fsspec.core.has_magic(path)
    digests = []
    for file in files:
        digest = hashlib.sha256()
        with fs.open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digests.append(f"{path if named else fs.unstrip_protocol(file)}#{digest.hexdigest()[:16]}")
    return digests
