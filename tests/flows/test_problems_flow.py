"""The problems flow on a real Prefect API: shards cached across runs, new fingerprints, force."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.problems import synthesize_problems
from tracemill.config import StoreConfig
from tracemill.problems.config import ClevrFilesSource, ClevrProceduralSource, MmluProSource
from tracemill.store import Store


def _task_states(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {run.name: run.state.name for run in runs}


def _shard_states(state) -> list[str]:
    states = _task_states(state.state_details.flow_run_id)
    return [value for name, value in sorted(states.items()) if name.startswith("problems-0")]


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("part-*.parquet"))}


def test_rerun_is_cached_new_config_new_dataset_force_recomputes(prefect_api, tmp_path):
    source = ClevrProceduralSource(num_scenes=12, scenes_per_shard=4, seed=7, questions_per_scene=3)
    store = StoreConfig(url=str(tmp_path / "store"))

    first = synthesize_problems(source=source, store=store, return_state=True)
    assert first.is_completed()
    uri = first.result()
    assert _shard_states(first) == ["Completed"] * 3
    folder = Path(uri)
    ds = Store(store.url).dataset("problems", folder.name, "problem")
    table = ds.read()
    assert table.num_rows == 12 * 4  # three questions plus "how many items" per scene
    assert len(set(table.column("problem_id").to_pylist())) == table.num_rows
    before = _mtimes(folder)
    assert len(before) == 3

    second = synthesize_problems(source=source, store=store, return_state=True)
    assert second.result() == uri
    assert _shard_states(second) == ["Cached"] * 3
    assert _mtimes(folder) == before

    # A lost cache record does not recompute: the task finds the shard in the store.
    shutil.rmtree(tmp_path / "store" / "_prefect")
    third = synthesize_problems(source=source, store=store, return_state=True)
    assert _shard_states(third) == ["Completed"] * 3
    assert _mtimes(folder) == before

    changed = source.model_copy(update={"seed": 8})
    other = Path(synthesize_problems(source=changed, store=store))
    assert other.parent == folder.parent and other != folder
    assert (folder / "_manifest.json").exists() and (other / "_manifest.json").exists()
    assert _mtimes(folder) == before

    forced = synthesize_problems(source=source, store=store, force=True, return_state=True)
    assert forced.result() == uri
    assert _shard_states(forced) == ["Completed"] * 3
    after = _mtimes(folder)
    assert all(after[name] > before[name] for name in before)
    assert ds.read().equals(table)  # same config, same rows


def test_files_source_and_artifacts(prefect_api, tmp_path, clevr_files):
    scenes, questions = clevr_files
    source = ClevrFilesSource(scenes_path=str(scenes), questions_path=str(questions), problems_per_shard=2)
    state = synthesize_problems(source=source, store=StoreConfig(url=str(tmp_path)), return_state=True)
    uri = state.result()
    manifest = json.loads((Path(uri) / "_manifest.json").read_text())
    assert manifest["rows"] == 3 and [s["rows"] for s in manifest["shards"]] == [2, 1]
    assert manifest["inputs"][0].startswith(str(scenes))

    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    by_key = {a.key: a for a in artifacts}
    assert {"problems-progress", "problems-shards", "problems-summary"} <= set(by_key)
    assert uri in by_key["problems-summary"].data
    assert by_key["problems-progress"].data == 100.0

    # Editing an input file changes the fingerprint: a new dataset, the old one kept.
    text = json.loads(questions.read_text())
    text["questions"] = text["questions"][:1]
    questions.write_text(json.dumps(text))
    assert synthesize_problems(source=source, store=StoreConfig(url=str(tmp_path))) != uri


def test_missing_input_fails_naming_the_file(prefect_api, tmp_path):
    source = ClevrFilesSource(scenes_path=str(tmp_path / "nope.json"), questions_path=str(tmp_path / "q.json"))
    state = synthesize_problems(source=source, store=StoreConfig(url=str(tmp_path)), return_state=True)
    assert state.is_failed()
    with pytest.raises(FileNotFoundError, match="nope.json"):
        state.result()


MMLU_PRO = Path(__file__).parents[1] / "tracemill" / "problems" / "fixtures" / "mmlu_pro_test.jsonl"


def test_rows_skipped_and_repaired_are_in_the_manifest_and_summary(prefect_api, tmp_path):
    state = synthesize_problems(
        source=MmluProSource(path=str(MMLU_PRO)), store=StoreConfig(url=str(tmp_path)), return_state=True
    )
    uri = state.result()
    manifest = json.loads((Path(uri) / "_manifest.json").read_text())
    assert manifest["rows"] == 4
    rows = manifest["metadata"]["rows"]
    assert rows["skipped"] == {"duplicate question (de-duplication)": 1, "field 'question' is empty": 1}
    assert rows["repaired"] == {
        "answer letter and answer_index disagree (the letter is kept)": 1,
        "answer is not an option letter (answer_index is kept)": 1,
    }
    assert rows["examples"]["skipped: duplicate question (de-duplication)"].endswith("row 3 (question_id 72)")

    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    summary = next(a for a in artifacts if a.key == "problems-summary").data
    assert "| skipped | field 'question' is empty | 1 |" in summary
