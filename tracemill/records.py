"""Record types of the pipeline and their Arrow schemas, declared once.

Every writer goes through :func:`to_table` or hands the store a table with exactly one of
these schemas; a table that does not match is an error, never a silent cast.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

ANSWER_TYPES = ("integer", "number", "math", "choice", "text")
# Option letters of choice problems, one table for sources, prompts and answer extraction: a choice
# answer is the letter of its option, so a problem has at most this many options.
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# How far a source's gold answer can be trusted: ``verified`` golds are exact by construction (CLEVR
# answers from the program executor, procedural scenes) and are never relabelled; ``reference`` golds
# come from a dataset and may be wrong; ``none`` means the source has no real gold at all.
DEFAULT_TRUST = "reference"


def _field(name: str, type_: pa.DataType, required: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=not required)


PROBLEM = pa.schema(
    [
        _field("problem_id", pa.string(), required=True),
        _field("source", pa.string(), required=True),
        _field("split", pa.string(), required=True),
        _field("question", pa.string(), required=True),
        _field("answer", pa.string(), required=True),
        _field("answer_type", pa.string(), required=True),
        _field("prompt_template", pa.string()),  # the source's default template: math_boxed, choice, clevr_v2, …
        # Source metadata; null where a source has no such field.
        _field("description", pa.string()),
        _field("img_filename", pa.string()),
        _field("family", pa.string()),
        _field("program", pa.string()),  # JSON list of program nodes (CLEVR)
        _field("choices", pa.list_(pa.string())),
        _field("subject", pa.string()),
        _field("level", pa.string()),
        _field("extra", pa.string()),  # JSON object with any other source fields
        _field("answer_trust", pa.string()),  # verified, reference or none; null reads as DEFAULT_TRUST
    ]
)

MESSAGES = pa.list_(pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())]))

SAMPLE_FIELDS = [
    _field("problem_id", pa.string(), required=True),
    _field("sample_idx", pa.int32(), required=True),
    _field("teacher", pa.string(), required=True),
    _field("prompt_version", pa.string(), required=True),  # the template's id: name@vN:content hash
    # The prompt exactly as sent, so later stages never render it again: the text of a completion prompt,
    # or the user message(s) of a chat prompt; and a chat prompt's messages (system first, if any).
    _field("prompt", pa.string(), required=True),
    _field("prompt_messages", MESSAGES),  # null for a completion prompt
    _field("seed", pa.int64()),
    _field("reasoning", pa.string()),
    _field("response", pa.string()),
    _field("finish_reason", pa.string()),
    _field("prompt_tokens", pa.int32()),
    _field("completion_tokens", pa.int32()),
    _field("latency_s", pa.float64()),
    _field("error", pa.string()),  # error kind of a request that failed for good; null for a sample
]
SAMPLE = pa.schema(SAMPLE_FIELDS)

VERDICT = pa.schema(
    SAMPLE_FIELDS
    + [
        _field("extracted", pa.string()),
        _field("correct", pa.bool_()),
        _field("decided_by", pa.string(), required=True),
    ]
)

RELABEL = pa.schema(
    list(PROBLEM)
    + [
        _field("original_answer", pa.string(), required=True),
        _field("relabeled", pa.bool_(), required=True),
        _field("votes", pa.map_(pa.string(), pa.int32())),
    ]
)

# A sample that passed (kept) or failed (rejected) the filters, with what exports need: its verdict (the prompt
# as sent among the sample's fields) and its problem's fields (the current gold in `answer`); rejected rows add
# the reason.
KEPT = pa.schema(
    list(VERDICT)
    + [
        _field("source", pa.string(), required=True),
        _field("split", pa.string(), required=True),
        _field("question", pa.string(), required=True),
        _field("answer", pa.string(), required=True),
        _field("answer_type", pa.string(), required=True),
        _field("description", pa.string()),
        _field("img_filename", pa.string()),
        _field("choices", pa.list_(pa.string())),
        _field("subject", pa.string()),
        _field("level", pa.string()),
        _field("original_answer", pa.string(), required=True),
        _field("relabeled", pa.bool_(), required=True),
    ]
)

REJECTED = pa.schema(list(KEPT) + [_field("reason", pa.string(), required=True)])

# One verifier's score of one sample (long format; Weaver's wide columns are an export). ``score`` is the
# reward model's score, a process reward model's lowest step score (its weakest step) or an LM judge's mean
# parsed verdict; null when there was nothing to score or no verdict parsed. Step scores, min/max/avg are a
# process reward model's, verdicts an LM judge's (1.0 yes, 0.0 no, null unparsed).
SCORE = pa.schema(
    [
        _field("problem_id", pa.string(), required=True),
        _field("sample_idx", pa.int32(), required=True),
        _field("verifier", pa.string(), required=True),
        _field("kind", pa.string(), required=True),  # reward_model | process_reward_model | lm_judge
        _field("score", pa.float64()),
        _field("step_scores", pa.list_(pa.float64())),
        _field("min_score", pa.float64()),
        _field("max_score", pa.float64()),
        _field("avg_score", pa.float64()),
        _field("verdicts", pa.list_(pa.float64())),
        _field("tokens", pa.int32()),  # tokens the model read (reward models) or generated (LM judges)
        _field("truncated", pa.bool_()),  # the text lost its start to the verifier's max_length
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "problem": PROBLEM,
    "sample": SAMPLE,
    "verdict": VERDICT,
    "relabel": RELABEL,
    "kept": KEPT,
    "rejected": REJECTED,
    "score": SCORE,
}


class RecordError(ValueError):
    """A row that does not fit its record type; the message names the row and the field."""


def problem_id(source: str, key: str) -> str:
    """Stable id of a problem: the same source and source key give the same id on every run."""
    return hashlib.sha256(f"{source}\x1f{key}".encode()).hexdigest()[:16]


def to_table(rows: Iterable[Mapping[str, Any]], schema: pa.Schema, *, what: str = "rows") -> pa.Table:
    """Build a table of exactly ``schema`` from dict rows.

    Missing nullable fields become null; an unknown field, a missing required field or a value
    of the wrong type raises :class:`RecordError` naming ``what``, the row index and the field.
    """
    names = set(schema.names)
    required = [f.name for f in schema if not f.nullable]
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    # Arrow would silently split a string into a list of characters.
    list_fields = {f.name for f in schema if pa.types.is_list(f.type)}
    for index, row in enumerate(rows):
        unknown = set(row) - names
        if unknown:
            raise RecordError(f"{what}: row {index} has unknown field(s) {sorted(unknown)}")
        for name in required:
            if row.get(name) is None:
                raise RecordError(f"{what}: row {index} is missing required field {name!r}")
        for name in schema.names:
            value = row.get(name)
            if isinstance(value, (str, bytes)) and name in list_fields:
                raise RecordError(f"{what}: row {index} field {name!r}: expected a list, got a string")
            columns[name].append(value)
    arrays = []
    for field in schema:
        try:
            arrays.append(pa.array(columns[field.name], type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            bad = _first_bad_row(columns[field.name], field.type)
            raise RecordError(f"{what}: row {bad} field {field.name!r}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=schema)


def _first_bad_row(values: list[Any], type_: pa.DataType) -> int | str:
    for index, value in enumerate(values):
        try:
            pa.array([value], type=type_)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            return index
    return "?"


def check_schema(actual: pa.Schema, expected: pa.Schema) -> str | None:
    """Describe how ``actual`` differs from ``expected`` (names, order, types, nullability)."""
    if actual.equals(expected, check_metadata=False):
        return None
    problems = []
    if actual.names != expected.names:
        missing = [n for n in expected.names if n not in actual.names]
        extra = [n for n in actual.names if n not in expected.names]
        if missing:
            problems.append(f"missing fields {missing}")
        if extra:
            problems.append(f"unexpected fields {extra}")
        if not missing and not extra:
            problems.append(f"field order {actual.names} != {expected.names}")
    for field in expected:
        if field.name in actual.names:
            got = actual.field(field.name)
            if not got.type.equals(field.type):
                problems.append(f"field {field.name!r} is {got.type}, expected {field.type}")
            elif got.nullable != field.nullable:
                problems.append(f"field {field.name!r} nullable={got.nullable}, expected {field.nullable}")
    return "; ".join(problems) or "schemas differ"
