"""The problems stage: a source config in, problem shards out.

Shards are independent, so any worker can build any shard: a procedural shard generates its
range of scenes; a shard of any other source takes its slice of the problems read once per process
from the CLEVR files, the benchmark or the user's files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import fsspec
import pyarrow as pa

from tracemill.config import (
    ClevrFilesSource,
    ClevrProceduralSource,
    DatasetSource,
    FileSource,
    GpqaSource,
    Gsm8kSource,
    Math500Source,
    MmluProSource,
    MmluSource,
    OpenMathReasoningSource,
)
from tracemill.records import PROBLEM, to_table
from tracemill.sources import choice, files, gsm8k, hub, math500, openmath
from tracemill.sources.clevr import read_counting_problems
from tracemill.sources.clevr_questions import procedural_problems
from tracemill.store import Store, fingerprint

STAGE = "problems"
# Bump when a change in the sources changes the rows they produce: it is part of every fingerprint.
CODE_VERSION = "problems-2"

Source = ClevrFilesSource | ClevrProceduralSource | DatasetSource

# How each dataset source reads its rows: (source, storage options) -> problem rows.
READERS: dict[type[DatasetSource], Callable[[Any, dict[str, Any]], list[dict[str, Any]]]] = {
    Math500Source: math500.read_math500,
    Gsm8kSource: gsm8k.read_gsm8k,
    MmluSource: choice.read_mmlu,
    MmluProSource: choice.read_mmlu_pro,
    GpqaSource: choice.read_gpqa,
    OpenMathReasoningSource: openmath.read_openmathreasoning,
    FileSource: files.read_files,
}


def input_fingerprints(source: Source, store: Store) -> list[str]:
    """Identities of the inputs: each file's size and modification time (or ETag); a Hub dataset's name and revision."""
    if isinstance(source, ClevrProceduralSource):
        return []
    if isinstance(source, DatasetSource):
        return hub.input_identity(source, _options_for(source.path, store))
    return [_checksum(path, store) for path in (source.scenes_path, source.questions_path)]


def stage_fingerprint(source: Source, store: Store) -> str:
    return fingerprint(STAGE, source, CODE_VERSION, input_fingerprints(source, store))


def num_shards(source: Source, store: Store) -> int:
    if isinstance(source, ClevrProceduralSource):
        return -(-source.num_scenes // source.scenes_per_shard)
    return max(1, -(-len(_read_problems(source, store)) // source.problems_per_shard))


def build_shard(source: Source, shard: int, store: Store) -> pa.Table:
    """The problem rows of one shard as a table of the PROBLEM schema."""
    if isinstance(source, ClevrProceduralSource):
        start = shard * source.scenes_per_shard
        stop = min(source.num_scenes, start + source.scenes_per_shard)
        rows = procedural_problems(
            source.seed,
            start,
            stop,
            questions_per_scene=source.questions_per_scene,
            min_objects=source.min_objects,
            max_objects=source.max_objects,
            shuffle_seed=source.shuffle_seed,
        )
        what = f"procedural CLEVR scenes {start}..{stop - 1}"
    else:
        start = shard * source.problems_per_shard
        rows = _read_problems(source, store)[start : start + source.problems_per_shard]
        where = source.questions_path if isinstance(source, ClevrFilesSource) else source.path
        what = f"{where} problems {start}..{start + len(rows) - 1}"
    return to_table(rows, PROBLEM, what=what)


def _options_for(path: str, store: Store) -> dict[str, Any]:
    # The store's credentials apply to input files kept in the same kind of storage.
    same = fsspec.utils.get_protocol(path) == fsspec.utils.get_protocol(store.url)
    return dict(store.storage_options) if same and not store.is_local else {}


def _checksum(path: str, store: Store) -> str:
    fs, local = fsspec.core.url_to_fs(path, **_options_for(path, store))
    try:
        return f"{path}@{fs.checksum(local)}"
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: input file does not exist") from None


_parsed: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
_parsed_lock = threading.Lock()


def _read_problems(source: ClevrFilesSource | DatasetSource, store: Store) -> list[dict[str, Any]]:
    # The inputs are read once per process however many shards read them; the checksums in the
    # key make an edited file a miss. Only the latest source is kept in memory.
    key = (source.model_dump_json(), *input_fingerprints(source, store))
    with _parsed_lock:
        if key not in _parsed:
            if isinstance(source, ClevrFilesSource):
                rows = read_counting_problems(
                    source.scenes_path,
                    source.questions_path,
                    storage_options=_options_for(source.scenes_path, store),
                    shuffle_seed=source.shuffle_seed,
                )
            else:
                rows = READERS[type(source)](source, _options_for(source.path, store))
            _parsed.clear()
            _parsed[key] = rows
        return _parsed[key]
