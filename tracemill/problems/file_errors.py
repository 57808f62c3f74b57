"""What is wrong with a data file, by file and line, for when ``datasets`` fails on it.

``datasets`` reads jsonl and csv in blocks, so its errors name nothing a user can open: an empty
jsonl gives ``StopIteration``, an empty csv ``DatasetGenerationError``, a malformed jsonl line a
byte offset into a block. Only after such a failure are the files read again here, line by line,
so the happy path pays nothing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem


class _LineError(ValueError):
    """A problem at one line of the file being read."""


def find_problem(path: str, data_format: str, storage_options: dict[str, Any] | None = None) -> tuple[str, str] | None:
    """The first problem in the files ``path`` names (a file, a glob, any fsspec URL): the file, its line and cause."""
    fs, local = fsspec.core.url_to_fs(path, **(storage_options or {}))
    files = sorted(fs.glob(local)) if fsspec.core.has_magic(local) else [local]
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
