"""The stage contract (``tracemill.stage``): what every stage gets from the code written once for all of them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tracemill.stage import Stage, aligned_shards, commit, reuse_or_make, shards_to_make
from tracemill.store import Dataset, Store

PROBLEMS = Stage("problems", "problem", "test-1", {"n": 2}, ("input-a",))


def _store(tmp_path: Path) -> Store:
    return Store(str(tmp_path))


def test_fingerprint_is_the_stage_name_identity_code_and_inputs(tmp_path):
    assert PROBLEMS.fingerprint == Stage("problems", "problem", "test-1", {"n": 2}, ("input-a",)).fingerprint
    others = [
        Stage("other", "problem", "test-1", {"n": 2}, ("input-a",)),
        Stage("problems", "problem", "test-2", {"n": 2}, ("input-a",)),
        Stage("problems", "problem", "test-1", {"n": 3}, ("input-a",)),
        Stage("problems", "problem", "test-1", {"n": 2}, ("input-b",)),
    ]
    assert len({PROBLEMS.fingerprint, *(s.fingerprint for s in others)}) == 5
    # What the manifest records does not name the dataset; where it lives does not either.
    assert Stage("problems", "problem", "test-1", {"n": 2}, ("input-a",), {"n": 2, "workers": 8}).fingerprint == (
        PROBLEMS.fingerprint
    )
    kept = Stage("kept", "kept", "f-1", {}, (), also=(("rejected", "rejected"),))
    assert [(d.stage, d.fingerprint, d.record) for d in kept.outputs(_store(tmp_path))] == [
        ("kept", kept.fingerprint, "kept"),
        ("rejected", kept.fingerprint, "rejected"),
    ]


def test_a_whole_shard_is_reused_unless_forced_a_damaged_one_is_made_again(tmp_path, problem_table):
    dataset = PROBLEMS.dataset(_store(tmp_path))
    made = []

    def make() -> list[pa.Table]:
        made.append(1)
        return [problem_table(2)]

    assert reuse_or_make([dataset], 0, make) is True
    assert reuse_or_make([dataset], 0, make) is False and len(made) == 1
    assert reuse_or_make([dataset], 0, make, force=True) is True and len(made) == 2
    with open(dataset.shard_path(0), "ab") as f:  # overwritten behind the store's back: not the recorded size
        f.write(b"junk")
    assert reuse_or_make([dataset], 0, make) is True and len(made) == 3
    assert dataset.read_shard(0).num_rows == 2


def test_every_output_must_be_whole_to_reuse_the_shard(tmp_path, problem_table):
    store = _store(tmp_path)
    first, second = Stage("a", "problem", "t", {}).dataset(store), Stage("b", "problem", "t", {}).dataset(store)
    first.write_shard(0, problem_table(1))
    assert reuse_or_make([first, second], 0, lambda: [problem_table(3), problem_table(4)]) is True
    assert first.read_shard(0).num_rows == 3 and second.read_shard(0).num_rows == 4


def test_checkpoints_go_when_the_shard_is_reused_or_forced_and_stay_for_a_resume(tmp_path, problem_table):
    dataset = PROBLEMS.dataset(_store(tmp_path))
    checkpoints = dataset.checkpoints(0, "stream")
    checkpoints.write_shard(0, problem_table(1))
    resumed = []

    def make_itself() -> None:  # a stage that writes its shard itself, from its checkpoints
        resumed.append(checkpoints.shard_indices())
        dataset.write_shard(0, problem_table(2))

    assert reuse_or_make([dataset], 0, make_itself, checkpoints="stream") is True
    assert resumed == [[0]]  # the checkpoint was there to resume from
    checkpoints.write_shard(0, problem_table(1))  # left behind by a run that died after writing the shard
    assert reuse_or_make([dataset], 0, make_itself, checkpoints="stream") is False
    assert checkpoints.shard_indices() == []
    checkpoints.write_shard(0, problem_table(1))
    assert reuse_or_make([dataset], 0, make_itself, force=True, checkpoints="stream") is True
    assert resumed[-1] == []  # forced: started over


def test_commit_waits_for_every_shard_keeps_a_current_manifest_and_records_the_stage(tmp_path, problem_table):
    dataset = PROBLEMS.dataset(_store(tmp_path))
    dataset.write_shard(1, problem_table(2))
    with pytest.raises(RuntimeError, match=r"shard\(s\) \[0\] of 2 are missing, so it cannot be committed"):
        commit(PROBLEMS, [dataset], 2)
    assert commit(PROBLEMS, [dataset], 2, partial=True) == [0]  # another run may write the rest
    assert not dataset.is_complete()
    dataset.write_shard(0, problem_table(3))
    assert commit(PROBLEMS, [dataset], 2, metadata=lambda: {"rows": 5}) == []
    manifest = dataset.manifest()
    assert (manifest["rows"], manifest["config"], manifest["code_version"], manifest["inputs"]) == (
        5, {"n": 2}, "test-1", ["input-a"]
    )  # fmt: skip
    assert manifest["metadata"] == {"rows": 5}

    def not_again() -> dict:
        raise AssertionError("a current manifest is kept: its metadata is not computed again")

    assert commit(PROBLEMS, [dataset], 2, metadata=not_again) == []
    assert dataset.manifest()["created_at"] == manifest["created_at"]
    commit(PROBLEMS, [dataset], 2, force=True)
    assert dataset.manifest()["created_at"] != manifest["created_at"]


def test_inputs_must_be_complete_and_shard_aligned(tmp_path, problem_table):
    store = _store(tmp_path)

    def committed(name: str, shards: int) -> Dataset:
        stage = Stage(name, "problem", "t", {})
        dataset = stage.dataset(store)
        for i in range(shards):
            dataset.write_shard(i, problem_table(1, start=i))
        commit(stage, [dataset], shards)
        return dataset

    assert aligned_shards(committed("a", 2), committed("b", 2)) == 2
    with pytest.raises(ValueError, match=r"has 2 shard\(s\) but .*/c/.* has 3: they must be shard-aligned"):
        aligned_shards(committed("a", 2), committed("c", 3))
    with pytest.raises(ValueError, match="no manifest: the d dataset is missing or incomplete"):
        aligned_shards(committed("a", 2), Stage("d", "problem", "t", {}).dataset(store))


def test_shards_to_make_are_the_missing_and_damaged_ones_or_all_when_forced(tmp_path, problem_table):
    dataset = PROBLEMS.dataset(_store(tmp_path))
    for shard in (0, 1):
        dataset.write_shard(shard, problem_table(2, start=2 * shard))
    assert shards_to_make(dataset, range(3)) == [2]
    commit(PROBLEMS, [dataset], 2)
    with open(dataset.shard_path(1), "ab") as f:  # not the size its manifest records
        f.write(b"junk")
    assert shards_to_make(dataset, range(3)) == [1, 2]
    assert shards_to_make(dataset, [0, 2], force=True) == [0, 2]
