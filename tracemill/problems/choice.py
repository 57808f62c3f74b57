"""Multiple-choice benchmarks: MMLU, MMLU-Pro and GPQA, as ``choice`` problems answered by a letter.

The options go in ``choices`` in the order shown to the teacher, and the gold is the letter of
the correct one. Public copies lay the options out differently: a list column (``choices`` or
``options``), one column per letter (``A``, ``B``, …), GPQA's ``Correct Answer`` and
``Incorrect Answer 1..3``, or inside the question text (``(A) … (B) …``, read with
``options_in_question``). With ``shuffle_options`` the options are permuted with a seed derived
from each problem, and the permutation is recorded in ``extra`` as ``option_order``; GPQA lists
the correct answer first, so it shuffles by default.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import posixpath
import random
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import fsspec

from tracemill.problems.config import ChoiceOptions, GpqaSource, MmluProSource, MmluSource
from tracemill.problems.hub import (
    Mapped,
    ToProblem,
    column,
    extra_json,
    field,
    find_column,
    optional_text,
    read_problems,
    text,
)
from tracemill.problems.rows import RowError, RowReport
from tracemill.records import OPTION_LETTERS
from tracemill.seeds import derive_seed
from tracemill.user_files import file_format, files_of

GPQA_OPTIONS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
LIST_COLUMNS = ("choices", "options")
QUESTION_COLUMNS = ("question", "input", "problem")
ANSWER_COLUMNS = ("answer", "target", "label")
# MMLU's original CSV files have no header: the question, options A to D and the answer letter.
ORIGINAL_MMLU_COLUMNS = ("question", "A", "B", "C", "D", "answer")
ORIGINAL_MMLU_LETTERS = tuple(OPTION_LETTERS[:4])
# Option markers in a question's text: "(A) …" anywhere, or "A. …", "A) …", "A: …" at a line's start.
_MARKERS = (re.compile(r"^[ \t]*\(?([A-Z])[.):][ \t]+", re.M), re.compile(r"\(([A-Z])\)[ \t]*"))

RowMapper = Callable[[Mapping[str, Any], str, Any], Mapped]


def options(row: Mapping[str, Any], name: str, where: str, most: int = len(OPTION_LETTERS)) -> list[str]:
    """A list field of 2..``most`` option texts (numbers are written as text)."""
    value = field(row, name, where)
    if isinstance(value, str) or not isinstance(value, list | tuple) or not 2 <= len(value) <= most:
        raise RowError(where, f"field {name!r} is not a list of 2 to {most} options")
    for letter, option in zip(OPTION_LETTERS, value, strict=False):
        if isinstance(option, bool) or not isinstance(option, str | int | float):
            raise RowError(where, f"field {name!r}: option {letter} is not text", repr(option))
    return [str(option).strip() for option in value]


def choice_problem(question: str, choices: list[str], answer: str, **fields: Any) -> dict[str, Any]:
    """The problem fields every choice source writes."""
    return {
        "question": question,
        "answer": answer,
        "answer_type": "choice",
        "prompt_template": "choice",
        "choices": choices,
        **fields,
    }


def split_options(question: str) -> tuple[str, list[str]] | None:
    """``question`` split into its stem and the options written in it (``(A) … (B) …``); None when it has none.

    The options are the last run of markers that starts at A and goes on letter by letter.
    """
    for pattern in _MARKERS:
        marks = list(pattern.finditer(question))
        for first in reversed([i for i, m in enumerate(marks) if m.group(1) == "A"]):
            run = [marks[first]]
            for mark in marks[first + 1 :]:
                if len(run) == len(OPTION_LETTERS) or mark.group(1) != OPTION_LETTERS[len(run)]:
                    break
                run.append(mark)
            ends = [m.start() for m in run[1:]] + [len(question)]
            texts = [question[m.end() : end].strip() for m, end in zip(run, ends, strict=True)]
            stem = question[: run[0].start()].strip()
            if len(run) >= 2 and stem and all(texts):
                return stem, texts
    return None


def question_and_options(
    row: Mapping[str, Any], where: str, source: ChoiceOptions, most: int = len(OPTION_LETTERS)
) -> tuple[str, list[str]]:
    """The question and its options from any common layout; an unknown layout names what it expected."""
    question = text(row, column(row, QUESTION_COLUMNS, where, "the question"), where)
    list_column = find_column(row, LIST_COLUMNS)
    if list_column is not None:
        return question, options(row, list_column, where, most)
    letters = [name for name in OPTION_LETTERS if name in row]
    if len(letters) >= 2 and "".join(letters) == OPTION_LETTERS[: len(letters)]:
        return question, [text(row, name, where) for name in letters]
    if source.options_in_question:
        found = split_options(question)
        if found is None:
            raise RowError(where, "no options '(A) …' found in the question text")
        return found
    raise ValueError(
        f"{where}: expected the options in a column 'choices' or 'options', or one column per letter "
        f"('A', 'B', …), or in the question text with options_in_question: true; the file has: "
        + ", ".join(repr(k) for k in row)
    )


def gold_letter(row: Mapping[str, Any], name: str, where: str, choices: list[str]) -> str:
    """The gold as the text of the correct option, a letter (``B``, ``(B)``) or an index.

    Text first: options such as "c, a, b, d" are one letter long, and the gold "c" is then option A, not C.
    """
    value = field(row, name, where)
    letters = OPTION_LETTERS[: len(choices)]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(choices):
        return letters[value]
    if isinstance(value, str):
        answer = value.strip()
        if answer in choices:
            return letters[choices.index(answer)]
        letter = answer.strip("().: ").upper()
        if len(letter) == 1 and letter in letters:
            return letter
    raise RowError(
        where,
        f"field {name!r} is not a letter A-{letters[-1]}, an index 0..{len(choices) - 1} or the text of an option",
        repr(value),
    )


def shuffled_order(size: int, seed: int, key: str) -> list[int]:
    """A permutation of ``range(size)`` that depends only on ``seed`` and the problem's ``key``."""
    order = list(range(size))
    random.Random(derive_seed(seed, key)).shuffle(order)
    return order


def shuffle_options(mapped: Mapped, seed: int) -> Mapped:
    """A choice problem with its options permuted (seeded by ``seed`` and the problem), and the order in ``extra``."""
    own_id, fields = mapped
    choices = fields.get("choices")
    if not choices:  # a files source whose answers are not choices
        return mapped
    order = shuffled_order(len(choices), seed, own_id or fields["question"])
    extra = json.loads(fields["extra"]) if fields.get("extra") else {}
    return own_id, {
        **fields,
        "choices": [choices[i] for i in order],
        "answer": OPTION_LETTERS[order.index(OPTION_LETTERS.index(fields["answer"]))],
        "extra": extra_json({**extra, "option_order": order}),
    }


def choice_reader(source: ChoiceOptions, map_row: RowMapper) -> ToProblem:
    """``map_row`` as a ``read_problems`` mapper, with the options shuffled when ``shuffle_options`` is on."""
    if not source.shuffle_options:
        return lambda row, where: map_row(row, where, source)

    def to_problem(row: Mapping[str, Any], where: str) -> Mapped:
        try:
            return shuffle_options(map_row(row, where, source), source.shuffle_seed)
        except RowError as exc:
            if exc.repaired is not None:
                exc.repaired = shuffle_options(exc.repaired, source.shuffle_seed)
            raise

    return to_problem


def read_mmlu(
    source: MmluSource, storage_options: dict[str, Any] | None = None, report: RowReport | None = None
) -> list[dict[str, Any]]:
    """Problem rows of MMLU (``question``, ``subject``, ``choices``, ``answer`` as an index, or a copy's layout,
    or the original release's CSV files)."""
    to_problem = choice_reader(source, mmlu_problem)
    files = original_mmlu_files(source, storage_options)
    if files is None:
        return read_problems(source, source.kind, to_problem, storage_options=storage_options, report=report)
    rows = original_mmlu_rows(*files, f"{source.kind} ({source.path})")
    return read_problems(source, source.kind, to_problem, report=report, id_column="file", rows=rows)


def original_mmlu_files(
    source: MmluSource, storage_options: dict[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, list[str]] | None:
    """The files of MMLU's original release (hendrycks/test) that ``source.path`` names; None for another layout.

    The release is a folder (``data/``: ``test/``, ``dev/``, ``val/``) of headerless CSV files
    ``{subject}_{split}.csv``. A folder is read as one when it holds such files of the split (the
    subject named by ``config`` only, unless ``all``); a csv file or glob when its first row is a
    question, not a header (the last field is an answer letter, not a column name).
    """
    fs, local = fsspec.core.url_to_fs(source.path, **(storage_options or {}))
    if fs.isdir(local):
        subject = "*" if source.config in (None, "all") else source.config
        files = [
            f
            for f in sorted(fs.find(local))
            if fnmatch.fnmatch(posixpath.basename(f), f"{subject}_{source.split}.csv")
            and not any(part.startswith(".") for part in f[len(local) :].split("/"))
        ]
    elif file_format(source.path) == "csv":
        fs, files = files_of(source.path, storage_options)
    else:
        return None
    if not files:
        return None
    with fs.open(files[0], "rt", encoding="utf-8-sig", errors="replace", newline="", compression="infer") as handle:
        first = next(csv.reader(handle), [])
    headerless = len(first) == len(ORIGINAL_MMLU_COLUMNS) and first[-1].strip().upper() in ORIGINAL_MMLU_LETTERS
    return (fs, files) if headerless else None


def original_mmlu_rows(fs: fsspec.AbstractFileSystem, files: list[str], what: str) -> Iterator[dict[str, Any]]:
    """The rows of MMLU's original CSV files, each with its ``subject`` (the file's name less ``_{split}.csv``)
    and ``file`` (its name and line, to name it in messages).

    Python's csv module reads the quoted commas, newlines and doubled quotes inside fields, and keeps
    every field text (pandas would make an option "None" or "NA" a missing value). The answer letter
    is given as its index, so that an option which is itself a letter cannot be taken for it.
    """
    for file in files:
        name = posixpath.basename(file)
        subject = re.sub(r"_(test|dev|val)$", "", name.removesuffix(".csv"))
        with fs.open(file, "rt", encoding="utf-8-sig", newline="", compression="infer") as handle:
            reader = csv.reader(handle)
            line = 1
            try:
                for record in reader:
                    if any(record):  # blank lines aside
                        if len(record) != len(ORIGINAL_MMLU_COLUMNS):
                            raise ValueError(
                                f"{what}: {name} line {line}: {len(record)} fields; expected "
                                f"{len(ORIGINAL_MMLU_COLUMNS)}: the question, options A to D and the answer letter"
                            )
                        row: dict[str, Any] = dict(zip(ORIGINAL_MMLU_COLUMNS, record, strict=True))
                        letter = row["answer"].strip().upper()
                        if letter in ORIGINAL_MMLU_LETTERS:
                            row["answer"] = ORIGINAL_MMLU_LETTERS.index(letter)
                        yield {**row, "subject": subject, "file": f"{name} line {line}"}
                    line = reader.line_num + 1
            except (csv.Error, UnicodeDecodeError) as exc:
                raise ValueError(f"{what}: {name} line {line}: {exc}") from exc


def mmlu_problem(row: Mapping[str, Any], where: str, source: ChoiceOptions) -> Mapped:
    question, choices = question_and_options(row, where, source)
    answer = gold_letter(row, column(row, ANSWER_COLUMNS, where, "the gold"), where, choices)
    subject = find_column(row, ("subject", "category"))
    return None, choice_problem(question, choices, answer, subject=optional_text(row, subject, where))


def read_mmlu_pro(
    source: MmluProSource, storage_options: dict[str, Any] | None = None, report: RowReport | None = None
) -> list[dict[str, Any]]:
    """Problem rows of MMLU-Pro (``question``, ``options``, ``answer`` letter, ``answer_index``, ``category``)."""
    to_problem = choice_reader(source, mmlu_pro_problem)
    return read_problems(source, source.kind, to_problem, storage_options=storage_options, report=report)


def mmlu_pro_problem(row: Mapping[str, Any], where: str, source: ChoiceOptions) -> Mapped:
    """One MMLU-Pro row. The ``answer`` letter wins over ``answer_index`` when it names an option; a row
    where they disagree raises :class:`RowError` with the letter's version as its repair."""
    question, choices = question_and_options(row, where, source, most=10)
    own_id = optional_text(row, "question_id", where)

    def problem(letter: str) -> Mapped:
        extra = extra_json({"src": row.get("src")})
        return own_id, choice_problem(
            question, choices, letter, subject=optional_text(row, "category", where), extra=extra
        )

    letters = OPTION_LETTERS[: len(choices)]
    letter = str(row.get("answer") or "").strip().strip("()").upper()
    index = row.get("answer_index")
    index_ok = isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(choices)
    if letter in letters and len(letter) == 1:
        if index is None or (index_ok and letters[index] == letter):
            return problem(letter)
        reason = "answer letter and answer_index disagree (the letter is kept)"
        raise RowError(where, reason, f"answer {letter!r}, answer_index {index!r}", repaired=problem(letter))
    if index_ok:
        reason = "answer is not an option letter (answer_index is kept)"
        raise RowError(where, reason, f"answer {row.get('answer')!r}", repaired=problem(letters[index]))
    if "answer" not in row and index is None:
        raise ValueError(f"{where}: expected a column 'answer' or 'answer_index'; the file has: {', '.join(row)}")
    raise RowError(where, f"field 'answer' is not a letter A-{letters[-1]}", repr(row.get("answer")))


def read_gpqa(
    source: GpqaSource, storage_options: dict[str, Any] | None = None, report: RowReport | None = None
) -> list[dict[str, Any]]:
    """Problem rows of GPQA: its CSV's ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3`` (any case), or a
    copy with ``question``, the options as columns ``A``..``D`` or in the question, and ``answer`` a letter."""
    to_problem = choice_reader(source, gpqa_problem)
    return read_problems(source, source.kind, to_problem, storage_options=storage_options, report=report)


def gpqa_problem(row: Mapping[str, Any], where: str, source: ChoiceOptions) -> Mapped:
    if find_column(row, ("Correct Answer",)) is None:
        _, problem = mmlu_problem(row, where, source)
        return optional_text(row, find_column(row, ("Record ID", "id")), where), problem
    question = text(row, column(row, ("Question",), where), where)
    texts = [text(row, column(row, (name,), where), where) for name in GPQA_OPTIONS]
    own_id = optional_text(row, find_column(row, ("Record ID",)), where)
    domain = find_column(row, ("High-level domain",))
    problem = choice_problem(
        question,
        texts,
        "A",
        subject=optional_text(row, find_column(row, ("Subdomain",)), where),
        extra=extra_json({"domain": row.get(domain) if domain else None, "record_id": own_id}),
    )
    return own_id, problem
