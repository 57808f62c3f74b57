"""User files kept in an S3-compatible store are read with the store's credentials."""

from __future__ import annotations

import gzip
import json

import s3fs

from tracemill.filtering.benchmarks import benchmark_index
from tracemill.filtering.config import ContaminationConfig
from tracemill.problems import stage as problems
from tracemill.problems.config import FileFields, FileSource
from tracemill.records import problem_id
from tracemill.store import Store


def test_user_files_on_s3(s3_server):
    fs = s3fs.S3FileSystem(**s3_server.storage_options())
    prefix = f"{s3_server.bucket}/user-files"
    rows = [{"uid": f"u{i}", "text": f"What is {i} squared?", "gold": str(i * i)} for i in range(5)]
    fs.pipe_file(f"{prefix}/part-0.jsonl", "".join(json.dumps(r) + "\n" for r in rows[:3]).encode())
    fs.pipe_file(f"{prefix}/part-1.jsonl", "".join(json.dumps(r) + "\n" for r in rows[3:]).encode())
    store = Store(f"s3://{s3_server.bucket}/store", s3_server.storage_options())
    source = FileSource(
        path=f"s3://{prefix}/*.jsonl",
        name="squares",
        answer_type="integer",
        fields=FileFields(id="uid", question="text", answer="gold"),
        problems_per_shard=2,
    )
    inputs = problems.input_fingerprints(source, store)
    assert [i.split("@")[0] for i in inputs] == [f"s3://{prefix}/part-0.jsonl", f"s3://{prefix}/part-1.jsonl"]
    assert problems.num_shards(source, store) == 3
    got = [row for i in range(3) for row in problems.build_shard(source, i, store).to_pylist()]
    assert [r["answer"] for r in got] == ["0", "1", "4", "9", "16"]
    assert got[4]["problem_id"] == problem_id("squares", "u4")


def test_benchmark_files_on_s3(s3_server):
    fs = s3fs.S3FileSystem(**s3_server.storage_options())
    path = f"s3://{s3_server.bucket}/benchmarks/test.jsonl.gz"
    fs.pipe_file(path, gzip.compress(json.dumps({"question": "the quick brown fox jumps"}).encode() + b"\n"))
    store = Store(f"s3://{s3_server.bucket}/store", s3_server.storage_options())
    index, inputs = benchmark_index(ContaminationConfig(files=[path], n=3), store)
    assert index.overlaps("a quick brown fox") and not index.overlaps("a slow red fox")
    assert inputs[0].startswith(f"{path}#")
