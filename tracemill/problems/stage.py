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
from tracemill.problems import choice, files, gsm8k, hub, math500, openmath
from tracemill.problems.clevr import read_counting_problems
from tracemill.problems.clevr_questions import procedural_problems
from tracemill.problems.rows import RowReport, seeded_sample
from tracemill.records import DEFAULT_TRUST, PROBLEM, to_table
from tracemill.store import Store, fingerprint

STAGE = "problems"
# Bump when a change in the sources changes the rows they produce: it is part of every fingerprint.
CODE_VERSION = "problems-3"

Source = ClevrFilesSource | ClevrProceduralSource | DatasetSource

# How each dataset source reads its rows: (source, storage options, report) -> problem rows.
READERS: dict[type[DatasetSource], Callable[[Any, dict[str, Any], RowReport], list[dict[str, Any]]]] = {
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
    return [_checksum(path, store) for path in (source.scenes_path, *_questions_paths(source))]


def stage_fingerprint(source: Source, store: Store) -> str:
    return fingerprint(STAGE, source, CODE_VERSION, input_fingerprints(source, store))


def num_shards(source: Source, store: Store) -> int:
    if isinstance(source, ClevrProceduralSource):
        return -(-source.num_scenes // source.scenes_per_shard)
    return max(1, -(-len(_read_problems(source, store)[0]) // source.problems_per_shard))


def row_report(source: Source, store: Store) -> dict[str, Any]:
    """Rows the source skipped or repaired, per reason (see ``sources.rows``): the manifest's ``rows`` entry."""
    if isinstance(source, ClevrProceduralSource):
        return RowReport().to_dict()
    return _read_problems(source, store)[1].to_dict()


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
        rows = _read_problems(source, store)[0][start : start + source.problems_per_shard]
        where = ", ".join(_questions_paths(source)) if isinstance(source, ClevrFilesSource) else source.path
        what = f"{where} problems {start}..{start + len(rows) - 1}"
    rows = [{**row, "answer_trust": row.get("answer_trust") or DEFAULT_TRUST} for row in rows]
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


def _questions_paths(source: ClevrFilesSource) -> list[str]:
    return [source.questions_path] if isinstance(source.questions_path, str) else source.questions_path


_parsed: dict[tuple[Any, ...], tuple[list[dict[str, Any]], RowReport]] = {}
_parsed_lock = threading.Lock()


def _read_problems(source: ClevrFilesSource | DatasetSource, store: Store) -> tuple[list[dict[str, Any]], RowReport]:
    # The inputs are read once per process however many shards read them; the checksums in the
    # key make an edited file a miss. Only the latest source is kept in memory. ``max_problems``
    # is a seeded sample of the problems, so a trial build is a fair sample of the whole.
    key = (source.model_dump_json(), *input_fingerprints(source, store))
    with _parsed_lock:
        if key not in _parsed:
            report = RowReport()
            if isinstance(source, ClevrFilesSource):
                rows = read_counting_problems(
                    source.scenes_path,
                    source.questions_path,
                    storage_options=_options_for(source.scenes_path, store),
                    shuffle_seed=source.shuffle_seed,
                    count_all=source.count_all,
                    on_bad_row=source.on_bad_row,
                    report=report,
                )
            else:
                rows = READERS[type(source)](source, _options_for(source.path, store), report)
            _parsed.clear()
            _parsed[key] = (seeded_sample(rows, source.max_problems, source.sample_seed), report)
        return _parsed[key]
