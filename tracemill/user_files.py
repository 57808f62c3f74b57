"""Rows of the user's data files: jsonl (also compressed, e.g. .jsonl.gz), json, parquet and csv, on a local
path, a glob or any fsspec URL.

One reader for every file a user points a build at: the ``files`` source and local copies of Hub datasets
(:mod:`tracemill.problems.hub`) and the contamination filter's benchmark files
(:mod:`tracemill.filtering.benchmarks`). Files go through ``datasets.load_dataset``, so a local copy reads
exactly as the Hub would. ``datasets`` reads jsonl and csv in blocks, so its errors name nothing a user can
open: an empty jsonl gives ``StopIteration``, an empty csv ``DatasetGenerationError``, a malformed jsonl line
a byte offset into a block. Only after such a failure are the files read again here, line by line, to say
which file and line is wrong, so the happy path pays nothing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, NoReturn

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

FORMATS = {".jsonl": "json", ".json": "json", ".ndjson": "json", ".parquet": "parquet", ".csv": "csv"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".lz4")


def file_format(path: str) -> str | None:
    """The ``datasets`` builder that reads a data file (json, parquet, csv), from its extension."""
    name = path.lower()
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    return next((fmt for ext, fmt in FORMATS.items() if name.endswith(ext)), None)


def read_rows(
    path: str,
    *,
    what: str,
    data_format: str = "auto",
    split: str = "train",
    streaming: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> Iterable[Mapping[str, Any]]:
    """The rows of data files (a file or glob), read as ``split`` whatever their name; errors start with ``what``.

    A failure, or no rows at all, is explained by file and line; a stream, or a text column that is not
    UTF-8, fails only as the rows are read, so they pass through a check.
    """
    import datasets  # deferred: a second to import, and only file and dataset sources need it

    # Reading a user's file is not a download: without this, datasets pings the Hub to count one, which
    # costs seconds (a DNS timeout) on a machine without network, once per file.
    datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
    fmt = file_format(path) if data_format == "auto" else data_format
    if fmt is None:
        raise ValueError(f"{what}: unknown file type; expected one of {', '.join(FORMATS)} (or set the format)")
    try:
        rows = datasets.load_dataset(
            fmt,
            data_files={split: path},
            split=split,
            streaming=streaming,
            storage_options=dict(storage_options) if storage_options else None,  # it adds a key s3fs rejects
        )
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{what}: {exc}") from exc
    except Exception as exc:
        _raise_data_error(path, fmt, what, storage_options, exc)
    return _checked_rows(rows, path, fmt, what, storage_options)


def _checked_rows(
    rows: Iterable[Mapping[str, Any]], path: str, fmt: str, what: str, storage_options: dict[str, Any] | None
) -> Iterator[Mapping[str, Any]]:
    count = 0
    try:
        for row in rows:
            count += 1
            yield row
    except Exception as exc:
        _raise_data_error(path, fmt, what, storage_options, exc)
    if not count:
        _raise_data_error(path, fmt, what, storage_options, None)


def _raise_data_error(
    path: str, fmt: str, what: str, storage_options: dict[str, Any] | None, exc: Exception | None
) -> NoReturn:
    """Raise what is wrong with the files, by file and line, after ``datasets`` failed on them (or read no rows)."""
    try:
        found = find_problem(path, fmt, storage_options)
    except Exception:  # the files cannot be read again: the first error stands
        found = None
    if found:
        file, problem = found
        raise ValueError(f"{what}: {problem}" if file == path else f"{what}: {file}: {problem}") from exc
    if exc is None:
        raise ValueError(f"{what}: no rows in {path}")
    if isinstance(exc, ValueError):
        raise ValueError(f"{what}: {exc}") from exc
    raise exc


def files_of(path: str, storage_options: dict[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """The filesystem and the files ``path`` names: one file, or every match of a glob."""
    fs, local = fsspec.core.url_to_fs(path, **(storage_options or {}))
    return fs, sorted(fs.glob(local)) if fsspec.core.has_magic(local) else [local]


# --- what is wrong with a file, by line ---------------------------------------------------------------


class _LineError(ValueError):
    """A problem at one line of the file being read."""


def find_problem(path: str, data_format: str, storage_options: dict[str, Any] | None = None) -> tuple[str, str] | None:
    """The first problem in the files ``path`` names (a file, a glob, any fsspec URL): the file, its line and cause."""
    fs, files = files_of(path, storage_options)
    for file in files:
        name = file if isinstance(fs, LocalFileSystem) else fs.unstrip_protocol(file)
        with fs.open(file, "rb", compression="infer") as handle:
            problem = _problem(handle, data_format)
        if problem:
            return name, problem
    return None


def _problem(handle: IO[bytes], data_format: str) -> str | None:
    if data_format == "parquet":
        return _parquet_problem(handle)
    try:
        if data_format == "csv":
            return _csv_problem(_text_lines(handle))
        return _json_problem(handle)
    except _LineError as exc:
        return str(exc)


def _text_lines(handle: IO[bytes]) -> Iterator[str]:
    for number, line in enumerate(handle, start=1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _LineError(f"line {number}: not UTF-8 text ({exc.reason} at column {exc.start + 1})") from exc


def _json_problem(handle: IO[bytes]) -> str | None:
    """JSON lines, one object each; or one JSON document (an array of rows), which may span lines."""
    rows = 0
    for number, line in enumerate(_text_lines(handle), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            if rows == 0 and line.lstrip()[:1] in ("[", "{"):
                handle.seek(0)
                return _document_problem(handle)
            return f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
        if rows == 0 and isinstance(value, list):
            return None  # a whole JSON array on one line
        if not isinstance(value, dict):
            return f"line {number}: a row must be a JSON object, not {type(value).__name__}"
        rows += 1
    return None if rows else "the file is empty: no rows"


def _document_problem(handle: IO[bytes]) -> str | None:
    try:
        json.loads("".join(_text_lines(handle)))
    except json.JSONDecodeError as exc:
        return f"line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
    return None


def _csv_problem(lines: Iterable[str]) -> str | None:
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if not header:
            return "the file is empty: no header and no rows"
        rows = 0
        for row in reader:
            if len(row) > len(header):
                return f"line {reader.line_num}: {len(row)} fields, but the header (line 1) names {len(header)}"
            rows += bool(row)
    except csv.Error as exc:
        return f"line {reader.line_num}: {exc}"
    return None if rows else "the file has a header but no rows"


def _parquet_problem(handle: IO[bytes]) -> str | None:
    try:
        rows = pq.ParquetFile(handle).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        return f"not a readable Parquet file ({exc})"
    return None if rows else "the file has no rows"
