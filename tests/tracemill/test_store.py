import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracemill.records import PROBLEM
from tracemill.store import (
    CorruptShardError,
    SchemaMismatchError,
    ShardNotFoundError,
    Store,
    StoreUnavailableError,
    fingerprint,
)


def test_round_trip_list_read_stream(tmp_path, problem_table):
    store = Store(str(tmp_path / "store"))
    ds = store.dataset("problems", "abc123", "problem")
    tables = [problem_table(5), problem_table(0, 5), problem_table(7, 5)]
    for index, table in enumerate(tables):
        info = ds.write_shard(index, table)
        assert info.rows == table.num_rows and info.path.endswith(f"part-{index:05d}.parquet")
    assert ds.shard_indices() == [0, 1, 2]
    assert not ds.is_complete() and store.fingerprints("problems") == []

    manifest = ds.commit(3, config={"seed": 1}, code_version="v1", inputs=["in1"])
    assert ds.is_complete() and store.fingerprints("problems") == ["abc123"]
    assert manifest["rows"] == 12 and [s["rows"] for s in manifest["shards"]] == [5, 0, 7]
    on_disk = json.loads((tmp_path / "store/problems/abc123/_manifest.json").read_text())
    assert on_disk["config"] == {"seed": 1} and on_disk["inputs"] == ["in1"] and on_disk["code_version"] == "v1"
    assert on_disk["record"] == "problem" and "problem_id: string not null" in on_disk["schema"]

    expected = pa.concat_tables(tables)
    assert ds.read().equals(expected)
    assert ds.read_shard(2).equals(tables[2])
    assert ds.read(columns=["answer"]).column("answer").to_pylist() == [str(i) for i in range(12)]
    batches = list(ds.iter_batches(batch_size=3))
    assert all(b.num_rows <= 3 for b in batches)
    assert pa.Table.from_batches(batches).equals(expected)


def test_layout_is_stage_fingerprint_part(tmp_path, problem_table):
    ds = Store(str(tmp_path)).dataset("problems", "f00d", "problem")
    ds.write_shard(7, problem_table(1))
    assert (tmp_path / "problems/f00d/part-00007.parquet").is_file()
    assert pq.read_table(tmp_path / "problems/f00d/part-00007.parquet").num_rows == 1


def test_fingerprint_covers_stage_config_code_and_inputs():
    base = fingerprint("problems", {"a": 1, "b": 2}, "v1", ["x"])
    assert base == fingerprint("problems", {"b": 2, "a": 1}, "v1", ["x"])
    assert len(base) == 16
    variants = {
        fingerprint("samples", {"a": 1, "b": 2}, "v1", ["x"]),
        fingerprint("problems", {"a": 1, "b": 3}, "v1", ["x"]),
        fingerprint("problems", {"a": 1, "b": 2}, "v2", ["x"]),
        fingerprint("problems", {"a": 1, "b": 2}, "v1", ["y"]),
        fingerprint("problems", {"a": 1, "b": 2}, "v1", []),
    }
    assert base not in variants and len(variants) == 5


def test_missing_shard_and_manifest_name_the_path(tmp_path, problem_table):
    ds = Store(str(tmp_path)).dataset("problems", "abc", "problem")
    with pytest.raises(ShardNotFoundError, match=r"problems/abc/part-00003\.parquet: does not exist"):
        ds.read_shard(3)
    with pytest.raises(ShardNotFoundError, match=r"problems/abc/_manifest\.json"):
        ds.read()
    ds.write_shard(0, problem_table(2))
    with pytest.raises(ShardNotFoundError, match=r"part-00001\.parquet"):
        ds.commit(2, config={}, code_version="v1")
    assert not ds.is_complete()


def test_corrupt_shard_and_manifest_name_the_path(tmp_path, problem_table):
    ds = Store(str(tmp_path)).dataset("problems", "abc", "problem")
    ds.write_shard(0, problem_table(3))
    path = tmp_path / "problems/abc/part-00000.parquet"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptShardError, match=r"part-00000\.parquet: not a readable Parquet file") as caught:
        ds.read_shard(0)
    assert str(caught.value).endswith("; tracemill verify CONFIG --repair recomputes damaged shards")
    (tmp_path / "problems/abc/_manifest.json").write_text("{not json")
    with pytest.raises(CorruptShardError, match=r"_manifest\.json: not a valid manifest"):
        ds.manifest()


def test_schema_mismatch_on_write_and_read(tmp_path, problem_table):
    ds = Store(str(tmp_path)).dataset("problems", "abc", "problem")
    wrong = problem_table(2).drop_columns(["extra"])
    with pytest.raises(
        SchemaMismatchError, match=r"part-00000\.parquet: not a problem table: missing fields \['extra'\]"
    ):
        ds.write_shard(0, wrong)
    assert not (tmp_path / "problems/abc/part-00000.parquet").exists()
    cast = problem_table(2).cast(PROBLEM.set(PROBLEM.get_field_index("level"), pa.field("level", pa.large_string())))
    with pytest.raises(SchemaMismatchError, match="field 'level' is large_string, expected string"):
        ds.write_shard(0, cast)
    # A shard written by someone else with another schema is refused on read.
    (tmp_path / "problems/abc").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"problem_id": ["x"]}), tmp_path / "problems/abc/part-00001.parquet")
    with pytest.raises(SchemaMismatchError, match=r"part-00001\.parquet: not a problem shard"):
        ds.read_shard(1)
    with pytest.raises(ValueError, match="unknown record type 'problems'"):
        Store(str(tmp_path)).dataset("problems", "abc", "problems")


def test_unreachable_storage_names_the_path(problem_table):
    store = Store(
        "s3://tracemill-nowhere/prefix",
        {
            "key": "k",
            "secret": "s",
            "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"},
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
            "skip_instance_cache": True,
        },
    )
    ds = store.dataset("problems", "abc", "problem")
    with pytest.raises(StoreUnavailableError, match=r"s3://tracemill-nowhere/prefix/problems/abc/part-00000\.parquet"):
        ds.write_shard(0, problem_table(1))
    with pytest.raises(StoreUnavailableError, match=r"s3://tracemill-nowhere/prefix/problems/abc/_manifest\.json"):
        ds.manifest()
    assert "secret" not in repr(store) and "'s'" not in repr(store)


def test_failed_write_leaves_no_shard_and_no_temporary(tmp_path, problem_table, monkeypatch):
    ds = Store(str(tmp_path)).dataset("problems", "abc", "problem")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StoreUnavailableError, match="disk full"):
        ds.write_shard(0, problem_table(3))
    assert list((tmp_path / "problems/abc").iterdir()) == []
    assert not ds.has_shard(0)


def test_killed_writer_never_leaves_a_partial_shard(tmp_path):
    """SIGKILL a process in the middle of writing large shards: every visible shard reads whole."""
    script = textwrap.dedent(
        f"""
        from tracemill.records import PROBLEM, to_table
        from tracemill.store import Store
        rows = [dict(problem_id=f"p{{i}}", source="s", split="t", question="q" * 200 + str(i),
                     answer=str(i), answer_type="integer") for i in range(200_000)]
        table = to_table(rows, PROBLEM)
        ds = Store({str(tmp_path)!r}).dataset("problems", "big", "problem")
        print("ready", flush=True)
        for index in range(1000):
            ds.write_shard(index, table)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    ds = Store(str(tmp_path)).dataset("problems", "big", "problem")
    deadline = time.monotonic() + 60
    while not ds.shard_indices() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.13)  # land somewhere inside a later write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    indices = ds.shard_indices()
    assert indices == list(range(len(indices))) and indices
    for index in indices:
        assert ds.read_shard(index, columns=["problem_id"]).num_rows == 200_000


def test_manifest_records_each_shards_size_and_checksum_as_written(tmp_path, problem_table):
    ds = Store(str(tmp_path)).dataset("problems", "abc", "problem")
    infos = [ds.write_shard(i, problem_table(3, start=3 * i)) for i in range(3)]
    manifest = ds.commit(3, config={}, code_version="v1")
    for info, shard in zip(infos, manifest["shards"], strict=True):
        data = (tmp_path / "problems/abc" / shard["file"]).read_bytes()
        assert shard["bytes"] == info.bytes == len(data) and shard["rows"] == 3
        assert shard["sha256"] == info.sha256 == hashlib.sha256(data).hexdigest()
    assert ds.is_current() and ds.intact_shards() == [0, 1, 2] and all(ds.has_shard(i) for i in range(3))

    # A truncated shard and a lost one are not there as far as a stage is concerned: they are to compute.
    shard1 = tmp_path / "problems/abc/part-00001.parquet"
    shard1.write_bytes(shard1.read_bytes()[:-10])
    (tmp_path / "problems/abc/part-00002.parquet").unlink()
    assert not ds.has_shard(1) and not ds.has_shard(2) and ds.has_shard(0)
    assert ds.intact_shards() == [0] and not ds.is_current() and ds.is_complete()
    ds.write_shard(1, problem_table(3, start=3))
    ds.write_shard(2, problem_table(4, start=6))  # recomputed with other content: the manifest follows
    assert ds.has_shard(2) and not ds.is_current()
    manifest = ds.commit(3, config={}, code_version="v1")
    assert ds.is_current() and manifest["rows"] == 10


def test_shards_without_entries_and_old_manifests_still_work(tmp_path, problem_table):
    """Shards written before sizes were recorded are measured once at commit; old manifests still read."""
    root = tmp_path / "problems/abc"
    ds = Store(str(tmp_path)).dataset("problems", "abc", "problem")
    for i in range(2):
        ds.write_shard(i, problem_table(2, start=2 * i))
    for entry in (root / "_shards").iterdir():
        entry.unlink()
    assert ds.has_shard(0)  # no entry: whole when its footer reads
    manifest = ds.commit(2, config={}, code_version="v1")
    assert manifest["shards"][1]["sha256"] == hashlib.sha256((root / "part-00001.parquet").read_bytes()).hexdigest()
    old = {**manifest, "shards": [{k: s[k] for k in ("index", "file", "rows")} for s in manifest["shards"]]}
    (root / "_manifest.json").write_text(json.dumps(old))
    assert ds.read().num_rows == 4 and ds.is_current() and ds.recorded_sizes() == {}

    # A shard that does not read is removed at commit, so the next run computes it instead of failing again.
    (root / "_shards/part-00001.json").unlink()
    (root / "part-00001.parquet").write_bytes(b"PAR1 not parquet")
    assert not ds.has_shard(1)
    with pytest.raises(CorruptShardError, match=r"part-00001\.parquet: .*removed, so the next run computes it again"):
        ds.commit(2, config={}, code_version="v1")
    assert ds.shard_indices() == [0]
