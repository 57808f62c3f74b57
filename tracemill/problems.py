"""The problems stage: a source config in, problem shards out.

Shards are independent, so any worker can build any shard: a procedural shard generates its
range of scenes, a files shard takes its slice of the problems read from the CLEVR files.
"""

from __future__ import annotations

import threading
from typing import Any

import fsspec
import pyarrow as pa

from tracemill.config import ClevrFilesSource, ClevrProceduralSource
from tracemill.records import PROBLEM, to_table
from tracemill.sources.clevr import read_counting_problems
from tracemill.sources.clevr_questions import procedural_problems
from tracemill.store import Store, fingerprint

STAGE = "problems"
# Bump when a change in the sources changes the rows they produce: it is part of every fingerprint.
CODE_VERSION = "clevr-1"

Source = ClevrFilesSource | ClevrProceduralSource


def input_fingerprints(source: Source, store: Store) -> list[str]:
    """Identities of the input files (size and modification time, or the object's ETag)."""
    if isinstance(source, ClevrProceduralSource):
        return []
    return [_checksum(path, store) for path in (source.scenes_path, source.questions_path)]


def stage_fingerprint(source: Source, store: Store) -> str:
    return fingerprint(STAGE, source, CODE_VERSION, input_fingerprints(source, store))


def num_shards(source: Source, store: Store) -> int:
    if isinstance(source, ClevrProceduralSource):
        return -(-source.num_scenes // source.scenes_per_shard)
    return max(1, -(-len(_file_problems(source, store)) // source.problems_per_shard))


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
        rows = _file_problems(source, store)[start : start + source.problems_per_shard]
        what = f"{source.questions_path} problems {start}..{start + len(rows) - 1}"
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


def _file_problems(source: ClevrFilesSource, store: Store) -> list[dict[str, Any]]:
    # The files are parsed once per process however many shards read them; the checksums in the
    # key make an edited file a miss. Only the latest pair is kept in memory.
    key = (source.scenes_path, source.questions_path, source.shuffle_seed, *input_fingerprints(source, store))
    with _parsed_lock:
        if key not in _parsed:
            rows = read_counting_problems(
                source.scenes_path,
                source.questions_path,
                storage_options=_options_for(source.scenes_path, store),
                shuffle_seed=source.shuffle_seed,
            )
            _parsed.clear()
            _parsed[key] = rows
        return _parsed[key]
