"""The user's own problems: jsonl, json, parquet or csv files on any fsspec URL (or a Hub dataset),
with a mapping from the file's columns to the problem fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tracemill.problems.choice import choice_problem, choice_reader, gold_letter, options, split_options
from tracemill.problems.config import FileSource
from tracemill.problems.hub import Mapped, extra_json, field, optional_text, plain_number, read_problems, text
from tracemill.problems.rows import RowError, RowReport


def read_files(
    source: FileSource, storage_options: dict[str, Any] | None = None, report: RowReport | None = None
) -> list[dict[str, Any]]:
    """Problem rows of the user's files, each field read from the column ``source.fields`` names."""
    return read_problems(
        source,
        source.name,
        choice_reader(source, file_problem),
        data_format=source.format,
        storage_options=storage_options,
        report=report,
        id_column=source.fields.id,
    )


def file_problem(row: Mapping[str, Any], where: str, source: FileSource) -> Mapped:
    """One row of a user's file; answers are checked against ``answer_type``."""
    names = source.fields
    question = text(row, names.question, where)
    missing = [name for name in names.extra if name not in row]
    if missing:
        raise ValueError(f"{where}: field {missing[0]!r} is missing (the row has: {', '.join(sorted(row))})")
    fields: dict[str, Any] = {
        "subject": optional_text(row, names.subject, where),
        "level": optional_text(row, names.level, where),
        "extra": extra_json({name: row[name] for name in names.extra}),
    }
    own_id = text(row, names.id, where) if names.id else None
    if source.answer_type == "choice":
        if names.choices:
            choices = _choices(row, names.choices, where)
        else:  # options_in_question
            found = split_options(question)
            if found is None:
                raise RowError(where, "no options '(A) …' found in the question text")
            question, choices = found
        answer = gold_letter(row, names.answer, where, choices)
        return own_id, choice_problem(question, choices, answer, **fields) | _template(source)
    answer = text(row, names.answer, where)
    if source.answer_type in ("integer", "number"):
        number = plain_number(answer)
        if number is not None and source.answer_type == "integer" and re.fullmatch(r"-?\d+\.0*", number):
            number = number.split(".")[0]  # a csv column with an empty cell is read as floats: 4.0 is 4
        if number is None or (source.answer_type == "integer" and not number.lstrip("-").isdigit()):
            kind = "an integer" if source.answer_type == "integer" else "a number"
            raise RowError(where, f"field {names.answer!r} is not {kind}", repr(answer))
        answer = number
    problem = {"question": question, "answer": answer, "answer_type": source.answer_type, **fields}
    return own_id, problem | _template(source)


def _template(source: FileSource) -> dict[str, str]:
    default = "choice" if source.answer_type == "choice" else "math_boxed"
    return {"prompt_template": source.prompt_template or default}


def _choices(row: Mapping[str, Any], columns: list[str], where: str) -> list[str]:
    # One column holding a list (a JSON array in csv files), or one column per option.
    if len(columns) == 1:
        value = field(row, columns[0], where)
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise RowError(where, f"field {columns[0]!r} is not a JSON list", str(exc)) from exc
        return options({columns[0]: value}, columns[0], where)
    return [text(row, column, where) for column in columns]
