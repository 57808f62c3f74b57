"""tracemill.verify: datasets and an export folder checked against their manifests, damage removed."""

from __future__ import annotations

import json
from pathlib import Path

from tracemill.export import layouts as export
from tracemill.export.config import ExportConfig
from tracemill.filtering import stage as filters
from tracemill.filtering.config import FilterConfig
from tracemill.filtering.stage import Plan
from tracemill.store import Store
from tracemill.verify import CORRUPT, MISSING, OK, check_dataset, check_export, repair, table


def _built(tmp_path, trace_tables):
    """Kept and rejected datasets of two shards and their export, every layout and the DatasetDict on."""
    store = Store(str(tmp_path / "store"))
    kept = store.dataset("kept", "k0", "kept")
    rejected = store.dataset("rejected", "k0", "rejected")
    for shard, (relabel, verdict) in enumerate(zip(*trace_tables, strict=True)):
        k, r = filters.filter_shard(relabel, verdict, Plan(FilterConfig(), None, None), shard=shard)
        kept.write_shard(shard, k)
        rejected.write_shard(shard, r)
    for dataset in (kept, rejected):
        dataset.commit(2, config={}, code_version="t")
    config = ExportConfig()
    out = export.export_dir(store, "k0", config)
    markers = [export.export_shard(kept.read_shard(i), rejected.read_shard(i), out, i, config) for i in range(2)]
    configs = export.configs(markers)
    for name, files in configs.items():
        if files.endswith(".jsonl"):
            export.merge_jsonl(out, name, markers)
    export.save_dataset_dict(out, configs)
    export.publish(out, "funnel.json", lambda f: f.write(b"{}"))
    manifest = export.write_manifest(out)
    return kept, out, manifest


def test_a_sound_build_checks_ok_and_damage_is_found_and_removed(tmp_path, trace_tables):
    kept, out, manifest = _built(tmp_path, trace_tables)
    folder = Path(out.path)
    files = {f["file"] for f in manifest["files"]}
    assert {"sft_all.jsonl", "data/train-00001.parquet", "funnel.json", "hf_dataset/dataset_dict.json"} <= files
    assert all(f.get("sha256") for f in manifest["files"])
    reports = [check_dataset("kept", kept), check_export("exports", out)]
    assert [r.status for r in reports] == [OK, OK] and reports[1].files == len(files)

    # Truncated, flipped (same size: only the checksum tells) and lost files.
    shard = Path(kept.shard_path(1))
    shard.write_bytes(shard.read_bytes()[:100])
    merged = folder / "sft_all.jsonl"
    text = merged.read_bytes()
    merged.write_bytes(text[:-2] + b"X\n")
    (folder / "weaver/train-00000.parquet").unlink()
    arrow = next((folder / "hf_dataset").rglob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:-1])
    reports = [check_dataset("kept", kept), check_export("exports", out)]
    assert [(r.status, r.count(MISSING), r.count(CORRUPT)) for r in reports] == [(CORRUPT, 0, 1), (CORRUPT, 1, 2)]
    damaged = {Path(f.uri).name: f for r in reports for f in r.damaged}
    assert "the manifest records" in damaged["part-00001.parquet"].detail
    assert damaged["sft_all.jsonl"].detail == "checksum differs from the manifest's"
    printed = table(reports)
    assert "exports  corrupt" in printed and str(merged) in printed and "train-00000.parquet" in printed

    # Repair removes each damaged file and what says it is done: the shard's entry, the export shard's
    # marker, the merged file's record, the DatasetDict's marker; nothing else.
    before = {p for p in folder.rglob("*") if p.is_file()}
    removed = set(repair(reports))
    assert removed == {
        kept.shard_path(1), kept.entry_path(1), str(merged), str(folder / "_done/files/sft_all.jsonl.json"),
        str(folder / "weaver/train-00000.parquet"), str(folder / "_done/00000.json"), str(arrow),
        str(folder / "hf_dataset/_done"),
    }  # fmt: skip
    gone = before - {p for p in folder.rglob("*") if p.is_file()}
    assert gone == {Path(p) for p in removed if p.startswith(out.path)} - {folder / "weaver/train-00000.parquet"}
    assert not kept.has_shard(1) and export.shard_done(out, 0) is None and export.shard_done(out, 1)


def test_missing_and_old_manifests(tmp_path, problem_table):
    store = Store(str(tmp_path))
    ds = store.dataset("problems", "p0", "problem")
    ds.write_shard(0, problem_table(2))
    assert check_dataset("problems", ds).status == MISSING  # not committed yet
    out = store.dataset(export.STAGE, "e0", "kept")
    assert check_export("exports", out).damaged[0].detail == "no manifest: the export has not finished"

    # A manifest without sizes and checksums (older versions): each shard is read as Parquet instead.
    manifest = ds.commit(1, config={}, code_version="v1")
    manifest["shards"] = [{k: s[k] for k in ("index", "file", "rows")} for s in manifest["shards"]]
    Path(ds.manifest_path).write_text(json.dumps(manifest))
    assert check_dataset("problems", ds).status == OK
    Path(ds.shard_path(0)).write_bytes(b"PAR1 nothing")
    assert "not a readable Parquet file" in check_dataset("problems", ds).damaged[0].detail
