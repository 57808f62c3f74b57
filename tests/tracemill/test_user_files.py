"""The one reader of user files: every format, compressed jsonl, fsspec URLs, errors by file and line,
and the contamination filter's benchmark files read through it."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracemill.filtering.benchmarks import benchmark_index
from tracemill.filtering.config import ContaminationConfig
from tracemill.store import Store
from tracemill.user_files import file_format, read_rows

ROWS = [{"question": "What is two plus two?", "answer": "four"}, {"question": "Name a prime.", "answer": "seven"}]


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    """``rows`` in the format ``path``'s extension names."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path
    if name.endswith(".csv"):
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path
    text = json.dumps(rows) if name.endswith(".json") else "".join(json.dumps(r) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()) if path.name.endswith(".gz") else text.encode())
    return path


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("name", ["rows.jsonl", "rows.jsonl.gz", "rows.json", "rows.csv", "rows.parquet"])
def test_every_format_reads_the_same_rows(tmp_path, name, streaming):
    path = write(tmp_path / name, ROWS)
    assert [dict(r) for r in read_rows(str(path), what="mine", streaming=streaming)] == ROWS


def test_any_fsspec_url():
    with fsspec.open("memory://user-files/rows.jsonl", "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in ROWS))
    assert [dict(r) for r in read_rows("memory://user-files/rows.jsonl", what="mine")] == ROWS


def test_formats_by_extension_and_errors_that_name_the_file(tmp_path):
    assert [file_format(p) for p in ("a.jsonl.gz", "a.ndjson", "s3://b/a.PARQUET", "a.csv.zst", "a.txt")] == [
        "json",
        "json",
        "parquet",
        "csv",
        None,
    ]
    with pytest.raises(ValueError, match=r"^mine: unknown file type"):
        read_rows(str(tmp_path / "rows.txt"), what="mine")
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_rows(str(tmp_path / "missing.jsonl"), what="mine")
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress((json.dumps(ROWS[0]) + "\n{oops\n").encode()))
    with pytest.raises(ValueError, match=r"^mine: line 2: not valid JSON"):
        list(read_rows(str(bad), what="mine"))


def test_benchmark_files_are_read_by_the_same_reader(tmp_path):
    store = Store(str(tmp_path / "store"))
    gz = write(tmp_path / "bench.jsonl.gz", [{"problem": "the quick brown fox jumps over the lazy dog"}])
    write(tmp_path / "part-0.json", [{"problem": "alpha beta gamma delta epsilon"}])
    write(tmp_path / "part-1.json", [{"problem": "zeta eta theta iota kappa"}])
    config = ContaminationConfig(files=[str(gz), str(tmp_path / "part-*.json")], field="problem", n=5)
    index, inputs = benchmark_index(config, store)
    for text in ("a quick brown fox jumps over", "alpha beta gamma delta epsilon", "zeta eta theta iota kappa"):
        assert index.overlaps(text), text
    assert inputs[0].startswith(f"{gz}#")
    assert [i.split("#")[0] for i in inputs[1:]] == [f"file://{tmp_path}/part-0.json", f"file://{tmp_path}/part-1.json"]

    (tmp_path / "part-1.json").write_text('[{"problem": "zeta"},\n {"problem": }]\n')
    with pytest.raises(ValueError, match=rf"benchmark file .*part-\*\.json: {tmp_path / 'part-1.json'}: line 2"):
        benchmark_index(config, store)
