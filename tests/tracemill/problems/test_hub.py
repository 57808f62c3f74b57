"""What every dataset source shares: local copy or Hub name, max_rows, seeded max_problems, streaming, dedup."""

from __future__ import annotations

import pytest

from tracemill.problems import hub
from tracemill.problems import stage as problems
from tracemill.problems.config import Gsm8kSource, Math500Source
from tracemill.problems.gsm8k import read_gsm8k
from tracemill.records import problem_id
from tracemill.store import Store
from tracemill.user_files import file_format

ROWS = [
    {"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i:,}"} for i in range(0, 1000, 10)
]


def test_formats_and_hub_names(tmp_path):
    assert [file_format(p) for p in ("a.jsonl", "a.JSON", "s3://b/a.parquet", "a.csv.gz", "a.txt", "org/ds")] == [
        "json",
        "json",
        "parquet",
        "csv",
        None,
        None,
    ]
    assert hub.is_hub_name("openai/gsm8k") and hub.is_hub_name("gsm8k")
    (tmp_path / "copy").mkdir()
    for local in ("./gsm8k", "/data/gsm8k", "~/gsm8k", "s3://bucket/gsm8k", "gsm8k/test.jsonl", str(tmp_path / "copy")):
        assert not hub.is_hub_name(local), local


def test_max_rows_and_seeded_max_problems(write_rows, tmp_path):
    path = str(write_rows("gsm8k.jsonl", ROWS))
    everything = read_gsm8k(Gsm8kSource(path=path))
    assert len(everything) == 100
    assert read_gsm8k(Gsm8kSource(path=path, max_rows=7)) == everything[:7]

    # max_problems is a seeded sample the problems stage takes of whatever the source read.
    store = Store(str(tmp_path / "store"))

    def ids(**options):
        return problems.build_shard(Gsm8kSource(path=path, **options), 0, store).column("problem_id").to_pylist()

    every_id = [r["problem_id"] for r in everything]
    sample = ids(max_problems=10, sample_seed=3)
    assert len(sample) == 10 and sample == ids(max_problems=10, sample_seed=3)
    positions = [every_id.index(pid) for pid in sample]
    assert positions == sorted(positions) and positions != list(range(10))  # source order, not the head
    assert set(ids(max_problems=10, sample_seed=4)) != set(sample)
    # A sample of the first max_rows; one larger than the rows keeps them all.
    head = ids(max_rows=20, max_problems=5)
    assert len(head) == 5 and all(every_id.index(pid) < 20 for pid in head)
    assert ids(max_problems=500) == every_id


def test_streaming_reads_the_same_rows(write_rows):
    path = str(write_rows("gsm8k.parquet", ROWS))
    assert read_gsm8k(Gsm8kSource(path=path, streaming=True)) == read_gsm8k(Gsm8kSource(path=path))
    assert read_gsm8k(Gsm8kSource(path=path, streaming=True, max_rows=3)) == read_gsm8k(Gsm8kSource(path=path))[:3]


def test_duplicate_questions(write_rows):
    rows = [ROWS[0], {**ROWS[0], "question": "  What is 0 +\n0?"}, ROWS[1], ROWS[0]]
    path = str(write_rows("dups.jsonl", rows))
    kept = read_gsm8k(Gsm8kSource(path=path))
    assert [r["question"] for r in kept] == [ROWS[0]["question"], ROWS[1]["question"]]
    # Kept when asked, with ids still unique and stable: the n-th repeat gets '#n' in its key.
    every = read_gsm8k(Gsm8kSource(path=path, dedup=False))
    assert len(every) == 4 and len({r["problem_id"] for r in every}) == 4
    assert every[3]["problem_id"] == problem_id("gsm8k", "What is 0 + 0?#2")
    assert read_gsm8k(Gsm8kSource(path=path, dedup=False)) == every


def test_input_identity(write_rows, tmp_path):
    assert hub.input_identity(Gsm8kSource()) == ["hf:openai/gsm8k@default/main/test"]
    assert hub.input_identity(Gsm8kSource(revision="e53f048")) == ["hf:openai/gsm8k@e53f048/main/test"]
    path = write_rows("copy/test.jsonl", ROWS[:2])
    (tmp_path / "copy" / ".cache").mkdir()
    (tmp_path / "copy" / ".cache" / "lock").write_text("x")
    (one,) = hub.input_identity(Gsm8kSource(path=str(path)))
    assert one.startswith(f"file://{path}@")
    assert hub.input_identity(Gsm8kSource(path=str(tmp_path / "copy"))) == [one]  # hidden files aside
    assert hub.input_identity(Gsm8kSource(path=str(tmp_path / "copy" / "*.jsonl"))) == [one]
    write_rows("copy/test.jsonl", ROWS[:3])
    assert hub.input_identity(Gsm8kSource(path=str(path))) != [one]
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl: input file does not exist"):
        hub.input_identity(Gsm8kSource(path=str(tmp_path / "nope.jsonl")))


def test_a_hub_name_goes_to_the_hub_with_config_revision_split_streaming(monkeypatch):
    # The Hub is not reachable from the tests: record the call datasets would make.
    import datasets

    calls = []

    def load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return [{"problem": "1 + 1?", "answer": "2", "unique_id": "test/x/1.json"}]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    rows = hub.read_problems(
        Math500Source(revision="abc123", streaming=True),
        "math500",
        lambda row, where: (row["unique_id"], {"question": row["problem"], "answer": row["answer"]}),
    )
    assert calls == [("HuggingFaceH4/MATH-500", None, {"revision": "abc123", "split": "test", "streaming": True})]
    assert rows[0]["problem_id"] == problem_id("math500", "test/x/1.json")


def test_missing_local_copy_names_the_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"gsm8k \(.*nope\.jsonl\)"):
        read_gsm8k(Gsm8kSource(path=str(tmp_path / "nope.jsonl")))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("test.jsonl", "", "the file is empty: no rows"),
        ("test.jsonl", '{"question": "Q?", "answer": "#### 4"}\n{"question": "Q2?", "answer": "#### 5"\n',
         r"line 2: not valid JSON \(Expecting ',' delimiter at column 39\)"),
        ("test.csv", "", "the file is empty: no header and no rows"),
    ],
)  # fmt: skip
def test_a_broken_local_copy_names_the_file_and_the_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=rf"^gsm8k \({path}\): {message}$"):
        read_gsm8k(Gsm8kSource(path=str(path)))
