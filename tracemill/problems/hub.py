"""Dataset rows from the Hugging Face Hub or a local copy, turned into problem rows.

Users name a Hub dataset or point at a local copy (a Hub snapshot folder, or jsonl, json, parquet
or csv files on any fsspec URL); both go through ``datasets.load_dataset``, so a local copy reads
exactly as the Hub would (a snapshot folder with a loading script is read from its data files).
The options every source shares live here: streaming, skipping repeated questions, the first
``max_rows`` problems, what a row that does not fit does (``on_bad_row``). Each benchmark module
only maps one raw row to one problem, finding its columns under any of the names public copies
use, and raising errors that name the dataset, the row (with its own id) and the field.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import fsspec

from tracemill.problems.config import DatasetSource
from tracemill.problems.rows import DUPLICATE, RowError, RowReport
from tracemill.records import problem_id
from tracemill.user_files import FORMATS, file_format, read_rows

# A mapped row: the source's own id (None to key on the question) and the problem fields.
Mapped = tuple[str | None, dict[str, Any]]
ToProblem = Callable[[Mapping[str, Any], str], Mapped | None]

_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


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
    script = _loading_script(path) if fmt is None else None
    if script is not None:
        path, fmt = _script_folder_data(source, path, script, what)
    if fmt is not None:
        return read_rows(
            path,
            what=what,
            data_format=fmt,
            split=source.split,
            streaming=source.streaming,
            storage_options=storage_options,
        )
    try:
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


def _loading_script(path: str) -> str | None:
    """The loading script of a local snapshot folder (``gpqa.py``), which ``datasets`` no longer runs."""
    if not os.path.isdir(path):
        return None
    return next((name for name in sorted(os.listdir(path)) if name.endswith(".py")), None)


def _script_folder_data(source: DatasetSource, path: str, script: str, what: str) -> tuple[str, str]:
    """The data files of ``source``'s split (and config) in a folder with a loading script, as (glob, format).

    The split's files are those whose path names the split and the config, else the config
    (``gpqa_diamond.csv``), else the split (``data/test-00000-of-00001.parquet``). They are read
    directly when one glob names exactly them; otherwise the message lists them.
    """
    files = []
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [os.path.join(folder, n) for n in sorted(names) if file_format(n) and not n.startswith(".")]
    chosen: list[str] = []
    for words in ([source.split, source.config], [source.config], [source.split]):
        if all(words) and not chosen:
            chosen = [f for f in files if all(w in os.path.relpath(f, path) for w in words)]
    hint = f"datasets no longer runs loading scripts ({script}); point `path` at the data files instead"
    if not chosen:
        listed = ", ".join(os.path.relpath(f, path) for f in files[:10]) or "none"
        raise ValueError(
            f"{what}: {hint}: no data file names split {source.split!r} or config {source.config!r} "
            f"(data files: {listed})"
        )
    if len(chosen) == 1:
        return chosen[0], file_format(chosen[0]) or "json"
    folder, suffix = os.path.dirname(chosen[0]), os.path.splitext(chosen[0])[1]
    beside = [f for f in files if os.path.dirname(f) == folder and f.endswith(suffix)]
    for pattern in (f"*{suffix}", f"*{source.split}*{suffix}"):
        if set(chosen) == {f for f in beside if fnmatch.fnmatch(os.path.basename(f), pattern)}:
            return os.path.join(folder, pattern), file_format(chosen[0]) or "json"
    raise ValueError(f"{what}: {hint}, such as: " + ", ".join(os.path.relpath(f, path) for f in chosen[:10]))


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
    report: RowReport | None = None,
    id_column: str | None = None,
    rows: Iterable[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Problem rows of ``source``, each raw row (``rows``, else those of :func:`load_rows`) mapped by
    ``to_problem(row, where)``.

    ``to_problem`` returns None for a row the source leaves out, or the row's own id (None to key
    on the question) and its problem fields; a row that does not fit raises :class:`RowError` and
    is repaired, skipped or fails as ``on_bad_row`` says. ``where`` names the row by position and by
    the dataset's own id (``id_column``, else the first of ``ID_COLUMNS`` it has). Rows keep the
    dataset's order; a repeated question is skipped when ``dedup`` is on and otherwise gets ``#n`` in
    its key, so ids stay unique; the first ``max_rows`` are kept (reading stops there). Every row
    skipped or repaired is counted in ``report``.
    """
    what = f"{name} ({source.path})"
    report = report if report is not None else RowReport()
    seen_questions: set[str] = set()
    seen_keys: Counter[str] = Counter()
    problems: list[dict[str, Any]] = []
    first_error: RowError | None = None
    if rows is None:
        rows = load_rows(source, what=what, data_format=data_format, storage_options=storage_options)
    for index, row in enumerate(rows):
        if source.max_rows is not None and len(problems) >= source.max_rows:
            break
        where = f"{what}: row {index}{own_id_label(row, id_column)}"
        try:
            mapped = to_problem(row, where)
        except RowError as exc:
            first_error = first_error or exc
            mapped = report.handle(exc, source.on_bad_row)
        if mapped is None:
            continue
        own_key, fields = mapped
        question_key = _question_key(fields)
        if source.dedup and question_key in seen_questions:
            report.skip(DUPLICATE, where)
            continue
        seen_questions.add(question_key)
        key = own_key or question_key
        seen_keys[key] += 1
        if seen_keys[key] > 1:
            key = f"{key}#{seen_keys[key] - 1}"
        problems.append({"problem_id": problem_id(name, key), "source": name, "split": source.split, **fields})
    if not problems and first_error is not None:
        raise ValueError(f"every row was skipped; the first: {first_error}") from first_error
    report.log(what)
    return problems


# Columns that hold a dataset's own row id, named in errors beside the row's position.
ID_COLUMNS = ("question_id", "unique_id", "id", "Record ID", "record_id", "idx")


def own_id_label(row: Mapping[str, Any], id_column: str | None = None) -> str:
    """`` (question_id 3983)``: the row's own id, for messages; empty when the row has none."""
    for name in (id_column,) if id_column else ID_COLUMNS:
        if name in row and row[name] is not None and not isinstance(row[name], list | dict):
            return f" ({name} {row[name]})"
    return ""


def column(row: Mapping[str, Any], names: Iterable[str], where: str, what: str = "") -> str:
    """The first of ``names`` the rows have as a column (case, spaces and underscores aside).

    Copies of one benchmark name their columns differently; none of them is a layout error that
    names what was expected and what the file has.
    """
    found = find_column(row, names)
    if found is None:
        expected = " or ".join(repr(n) for n in names)
        raise ValueError(
            f"{where}: expected a column {expected}{f' ({what})' if what else ''}; the file has: "
            + ", ".join(repr(k) for k in row)
        )
    return found


def find_column(row: Mapping[str, Any], names: Iterable[str]) -> str | None:
    """The column of ``row`` matching the first of ``names`` that matches (case, spaces and underscores aside)."""
    by_key = {_column_key(k): k for k in row}
    return next((by_key[_column_key(n)] for n in names if _column_key(n) in by_key), None)


def _column_key(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def _question_key(fields: Mapping[str, Any]) -> str:
    # Whitespace aside; options in any order are the same options.
    key = " ".join(fields["question"].split())
    options = sorted(" ".join(option.split()) for option in fields.get("choices") or [])
    return "\x1f".join([key, *options])


def field(row: Mapping[str, Any], name: str, where: str) -> Any:
    """A field's value. A column the rows lack is a layout error; a null in one row is a :class:`RowError`."""
    if name not in row:
        raise ValueError(f"{where}: field {name!r} is missing (the row has: {', '.join(sorted(row))})")
    value = row[name]
    if value is None:
        raise RowError(where, f"field {name!r} is null")
    return value


def text(row: Mapping[str, Any], name: str, where: str) -> str:
    """A field as non-empty text; numbers are written as text (levels, numeric answers)."""
    value = field(row, name, where)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RowError(where, f"field {name!r} is not text", _short(value))
    value = str(value).strip()
    if not value:
        raise RowError(where, f"field {name!r} is empty")
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
        raise RowError(where, f"field {name!r} is not an option index 0..{size - 1}", _short(value))
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
