"""Dataset rows from the Hugging Face Hub or a local copy, turned into problem rows.

Users name a Hub dataset or point at a local copy (a Hub snapshot folder, or jsonl, json, parquet
or csv files on any fsspec URL); both go through ``datasets.load_dataset``, so a local copy reads
exactly as the Hub would. The options every source shares live here: streaming, dropping repeated
questions, the first ``max_rows`` problems, a seeded subsample. Each benchmark module only maps one
raw row to one problem, raising errors that name the dataset, the row and the field.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import fsspec

from tracemill.config import DatasetSource
from tracemill.records import problem_id

# A mapped row: the source's own id (None to key on the question) and the problem fields.
Mapped = tuple[str | None, dict[str, Any]]
ToProblem = Callable[[Mapping[str, Any], str], Mapped | None]

FORMATS = {".jsonl": "json", ".json": "json", ".ndjson": "json", ".parquet": "parquet", ".csv": "csv"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".lz4")
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


def file_format(path: str) -> str | None:
    """The ``datasets`` builder that reads a data file (json, parquet, csv), from its extension."""
    name = path.lower()
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    return next((fmt for ext, fmt in FORMATS.items() if name.endswith(ext)), None)


def is_hub_name(path: str) -> bool:
    """True for a Hub dataset name such as ``openai/gsm8k``; false for local paths and URLs."""
    return not ("://" in path or path.startswith((".", "/", "~")) or os.path.exists(path) or file_format(path))


def load_rows(
    source: DatasetSource, *, what: str, data_format: str = "auto", storage_options: dict[str, Any] | None = None
) -> Iterable[Mapping[str, Any]]:
    """The raw rows of ``source``'s split, from the Hub, a snapshot folder or data files."""
    import datasets  # deferred: a second to import, and only dataset sources need it

    path = os.path.expanduser(source.path) if source.path.startswith("~") else source.path
    fmt = file_format(path) if data_format == "auto" else data_format
    try:
        if fmt is not None:
            # A file (or glob) is read as the configured split, whatever its name.
            return datasets.load_dataset(
                fmt,
                data_files={source.split: path},
                split=source.split,
                streaming=source.streaming,
                storage_options=storage_options or None,
            )
        if not is_hub_name(path) and not os.path.isdir(path):
            raise ValueError(f"{path} is not a folder, and its format is not one of {sorted(set(FORMATS.values()))}")
        return datasets.load_dataset(
            path,
            source.config,
            revision=source.revision if is_hub_name(path) else None,
            split=source.split,
            streaming=source.streaming,
        )
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{what}: {exc}") from exc
    except ValueError as exc:
        # datasets' own messages name the config or split that is not there.
        raise ValueError(f"{what}: {exc}") from exc


def input_identity(source: DatasetSource, storage_options: dict[str, Any] | None = None) -> list[str]:
    """What identifies the input: Hub name, revision, config and split, or every local file's checksum."""
    if is_hub_name(source.path):
        return [f"hf:{source.path}@{source.revision or 'default'}/{source.config or 'default'}/{source.split}"]
    fs, local = fsspec.core.url_to_fs(os.path.expanduser(source.path), **(storage_options or {}))
    if fs.isdir(local):
        files = [f for f in fs.find(local) if not any(part.startswith(".") for part in f[len(local) :].split("/"))]
    else:
        files = fs.glob(local) if fsspec.core.has_magic(local) else [local] if fs.exists(local) else []
    if not files:
        raise FileNotFoundError(f"{source.path}: input file does not exist")
    return [f"{fs.unstrip_protocol(f)}@{fs.checksum(f)}" for f in sorted(files)]


def read_problems(
    source: DatasetSource,
    name: str,
    to_problem: ToProblem,
    *,
    data_format: str = "auto",
    storage_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Problem rows of ``source``, each raw row mapped by ``to_problem(row, where)``.

    ``to_problem`` returns None for a row the source leaves out, or the row's own id (None to key
    on the question) and its problem fields. Rows keep the dataset's order; a repeated question is
    dropped when ``dedup`` is on and otherwise gets ``#n`` in its key, so ids stay unique; then
    the first ``max_rows`` are kept (reading stops there), then a seeded subsample of ``sample_size``.
    """
    what = f"{name} ({source.path})"
    seen_questions: set[str] = set()
    seen_keys: Counter[str] = Counter()
    problems: list[dict[str, Any]] = []
    rows = load_rows(source, what=what, data_format=data_format, storage_options=storage_options)
    for index, row in enumerate(rows):
        if source.max_rows is not None and len(problems) >= source.max_rows:
            break
        mapped = to_problem(row, f"{what}: row {index}")
        if mapped is None:
            continue
        own_key, fields = mapped
        question_key = _question_key(fields)
        if source.dedup and question_key in seen_questions:
            continue
        seen_questions.add(question_key)
        key = own_key or question_key
        seen_keys[key] += 1
        if seen_keys[key] > 1:
            key = f"{key}#{seen_keys[key] - 1}"
        problems.append({"problem_id": problem_id(name, key), "source": name, "split": source.split, **fields})
    if source.sample_size is not None and source.sample_size < len(problems):
        picked = random.Random(source.sample_seed).sample(range(len(problems)), source.sample_size)
        problems = [problems[i] for i in sorted(picked)]
    return problems


def _question_key(fields: Mapping[str, Any]) -> str:
    # Whitespace aside; options in any order are the same options.
    key = " ".join(fields["question"].split())
    options = sorted(" ".join(option.split()) for option in fields.get("choices") or [])
    return "\x1f".join([key, *options])


def field(row: Mapping[str, Any], name: str, where: str) -> Any:
    """A field's value; a missing or null field is an error naming the row and the field."""
    value = row.get(name)
    if value is None:
        have = ", ".join(sorted(k for k, v in row.items() if v is not None))
        raise ValueError(f"{where}: field {name!r} is missing (the row has: {have})")
    return value


def text(row: Mapping[str, Any], name: str, where: str) -> str:
    """A field as non-empty text; numbers are written as text (levels, numeric answers)."""
    value = field(row, name, where)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{where}: field {name!r} is not text: {_short(value)}")
    value = str(value).strip()
    if not value:
        raise ValueError(f"{where}: field {name!r} is empty")
    return value


def optional_text(row: Mapping[str, Any], name: str | None, where: str) -> str | None:
    """A field as text, or None where the field is absent or null."""
    if name is None or row.get(name) is None:
        return None
    return text(row, name, where)


def index(row: Mapping[str, Any], name: str, where: str, size: int) -> int:
    """A field holding a 0-based index into ``size`` options."""
    value = field(row, name, where)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise ValueError(f"{where}: field {name!r} is not an option index 0..{size - 1}: {_short(value)}")
    return value


def plain_number(text: str) -> str | None:
    """``text`` as a number without thousands separators (``'1,234'`` → ``'1234'``); None if not a number."""
    number = text.strip().replace(",", "").removeprefix("+")
    return number if _NUMBER.fullmatch(number) else None


def extra_json(values: Mapping[str, Any]) -> str | None:
    """The ``extra`` column: the non-null values as a JSON object, None when there are none."""
    kept = {k: v for k, v in values.items() if v is not None}
    return json.dumps(kept, sort_keys=True, default=str) if kept else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
