"""The store and the problems flow against a real SeaweedFS S3 server on loopback."""

from __future__ import annotations

import json

import pytest
import s3fs
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from flows.problems import synthesize_problems
from tracemill.config import StoreConfig
from tracemill.problems import stage as problems
from tracemill.problems.config import ClevrFilesSource, ClevrProceduralSource
from tracemill.store import CorruptShardError, SchemaMismatchError, ShardNotFoundError, Store, StoreUnavailableError


def test_store_round_trip_and_errors_on_s3(s3_server, problem_table):
    store = Store(f"s3://{s3_server.bucket}/store-test", s3_server.storage_options())
    ds = store.dataset("problems", "fp1", "problem")
    assert ds.uri == f"s3://{s3_server.bucket}/store-test/problems/fp1"
    ds.write_shard(0, problem_table(5))
    ds.write_shard(1, problem_table(3))
    assert ds.shard_indices() == [0, 1] and ds.has_shard(1) and not ds.has_shard(2)
    ds.commit(2, config={"k": 1}, code_version="v1")
    assert ds.is_complete() and store.fingerprints("problems") == ["fp1"]
    assert ds.read().num_rows == 8
    assert sum(b.num_rows for b in ds.iter_batches(batch_size=2)) == 8

    with pytest.raises(ShardNotFoundError, match=rf"s3://{s3_server.bucket}/store-test/problems/fp1/part-00009"):
        ds.read_shard(9)
    fs = s3fs.S3FileSystem(**s3_server.storage_options())
    fs.pipe_file(f"{s3_server.bucket}/store-test/problems/fp1/part-00001.parquet", b"PAR1garbage")
    with pytest.raises(CorruptShardError, match=r"problems/fp1/part-00001\.parquet"):
        ds.read_shard(1)
    with pytest.raises(SchemaMismatchError, match=r"part-00002\.parquet"):
        ds.write_shard(2, problem_table(1).drop_columns(["answer"]))

    wrong = Store(
        f"s3://{s3_server.bucket}/store-test",
        {**s3_server.storage_options(), "secret": "not-the-secret"},
    )
    with pytest.raises(StoreUnavailableError, match=rf"s3://{s3_server.bucket}/store-test/problems/fp1/part-00000"):
        wrong.dataset("problems", "fp1", "problem").read_shard(0)


def test_problems_flow_writes_and_reads_through_s3(prefect_api, s3_server, clevr_files_s3):
    s3_server.save_block("tracemill-s3-test")
    config = StoreConfig(url=f"s3://{s3_server.bucket}/flow-test", block="tracemill-s3-test")
    source = ClevrProceduralSource(num_scenes=9, scenes_per_shard=4, seed=3)

    state = synthesize_problems(source=source, store=config, return_state=True)
    uri = state.result()
    assert uri.startswith(f"s3://{s3_server.bucket}/flow-test/problems/")
    store = Store(config.url, s3_server.storage_options())
    ds = store.dataset("problems", uri.rsplit("/", 1)[1], "problem")
    table = ds.read()
    # The same rows as building the shards in memory: nothing lost or altered on the way.
    local = Store("memory://unused")
    expected = [problems.build_shard(source, i, local) for i in range(problems.num_shards(source, local))]
    assert table.to_pylist() == [row for t in expected for row in t.to_pylist()]

    # The rerun is all cached, its records kept in the store itself.
    again = synthesize_problems(source=source, store=config, return_state=True)
    assert again.result() == uri
    fs = s3fs.S3FileSystem(**s3_server.storage_options())
    assert fs.ls(f"{s3_server.bucket}/flow-test/_prefect")

    # CLEVR files kept in the same object store are read with the block's credentials.
    scenes, questions = clevr_files_s3
    files = ClevrFilesSource(scenes_path=scenes, questions_path=questions)
    files_uri = synthesize_problems(source=files, store=config)
    assert store.dataset("problems", files_uri.rsplit("/", 1)[1], "problem").read().num_rows >= 2

    # The secret never shows in a manifest or in the run's logs.
    manifest = fs.cat_file(f"{uri[len('s3://') :]}/_manifest.json").decode()
    assert s3_server.secret_key not in manifest and json.loads(manifest)["rows"] == table.num_rows
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
        documents = client.read_block_documents()
    assert logs and all(s3_server.secret_key not in log.message for log in logs)
    # The result-storage block refers to the ObjectStore block (a $ref) instead of copying its secrets.
    results = [d for d in documents if d.block_type and d.block_type.slug == "tracemill-store-results"]
    assert results and all("object_store" in d.block_document_references for d in results)


def test_exports_and_the_dataset_dict_on_s3(s3_server, trace_tables):
    """Every export layout and the saved DatasetDict live in the bucket and read back from it."""
    import datasets

    from tracemill.export import layouts as export
    from tracemill.export.config import ExportConfig
    from tracemill.filtering import stage as filters
    from tracemill.filtering.config import FilterConfig
    from tracemill.filtering.stage import Plan

    store = Store(f"s3://{s3_server.bucket}/exports-test", s3_server.storage_options())
    kept = store.dataset("kept", "k0", "kept")
    rejected = store.dataset("rejected", "k0", "rejected")
    plan = Plan(FilterConfig(), None, None)
    for shard, (relabel, verdict) in enumerate(zip(*trace_tables, strict=True)):
        k, r = filters.filter_shard(relabel, verdict, plan, shard=shard)
        kept.write_shard(shard, k)
        rejected.write_shard(shard, r)
    config = ExportConfig()
    out = export.export_dir(store, "k0", config)
    markers = [export.export_shard(kept.read_shard(i), rejected.read_shard(i), out, i, config) for i in range(2)]
    saved = export.save_dataset_dict(out, export.configs(markers))

    fs = s3fs.S3FileSystem(**s3_server.storage_options())
    assert saved == f"s3://{out.path}/{export.HF_DATASET}"
    assert fs.glob(f"{out.path}/sft_correct/train-*.jsonl") and fs.glob(f"{out.path}/weaver/train-*.parquet")
    loaded = datasets.load_from_disk(saved, storage_options=s3_server.storage_options())
    assert loaded["train"].num_rows == sum(kept.read_shard(i).num_rows for i in range(2)) > 0
    assert loaded["rejected"].num_rows == sum(rejected.read_shard(i).num_rows for i in range(2))
    # Saved once: a rerun finds the marker and writes nothing.
    before = fs.ls(saved, detail=True)
    assert export.save_dataset_dict(out, export.configs(markers)) == saved
    assert fs.ls(saved, detail=True) == before
