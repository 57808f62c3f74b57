"""The filter-and-export flow on a real Prefect API: datasets, exports, artifacts, caching, no secret anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pytest
from pydantic import SecretStr

from blocks.hub_target import HubTarget
from flows.filtering import filter_and_export
from tests.flows.prefect_runs import artifacts, task_states
from tracemill.config import StoreConfig
from tracemill.export.config import ExportConfig
from tracemill.filtering.config import ContaminationConfig, FilterConfig, LengthOutlierConfig
from tracemill.store import Store

TOKEN = "hf_flow_TOKEN_never_written_1"
CUSTOM_CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Solve: How many cubes?"}]
API_KEY = "sk-flow-teacher-KEY-2"


def _write_inputs(store: Store, trace_tables) -> tuple[str, str]:
    relabels, verdicts = trace_tables
    relabel = store.dataset("relabel", "r0", "relabel")
    rejudged = store.dataset("rejudged", "v0", "verdict")
    for shard, (r, v) in enumerate(zip(relabels, verdicts, strict=True)):
        relabel.write_shard(shard, r)
        rejudged.write_shard(shard, v)
    relabel.commit(2, config={}, code_version="t")
    rejudged.commit(2, config={}, code_version="t")
    return "r0", "v0"


@pytest.fixture
def fake_hub(monkeypatch):
    """The Hub is unreachable: record the upload at the client call instead."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append((self.token, repo_id, kw)))

    def upload_folder(self, **kw):  # what the client would upload: the folder's files less the ignore patterns
        files = [str(p.relative_to(kw["folder_path"])) for p in Path(kw["folder_path"]).rglob("*") if p.is_file()]
        calls.append(
            (self.token, kw["repo_id"], set(filter_repo_objects(files, ignore_patterns=kw["ignore_patterns"])))
        )

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def _custom_chat(verdicts: pa.Table) -> pa.Table:
    """The verdicts as if sampled with a custom chat prompt that the flow is never given."""
    for name, value in (("prompt", CUSTOM_CHAT[1]["content"]), ("prompt_messages", CUSTOM_CHAT)):
        at = verdicts.schema.get_field_index(name)
        field = verdicts.schema.field(at)
        verdicts = verdicts.set_column(at, field, pa.array([value] * verdicts.num_rows, field.type))
    return verdicts


def test_filter_and_export_flow(prefect_api, tmp_path, trace_tables, fake_hub):
    store = StoreConfig(url=str(tmp_path / "store"))
    relabels, sampled = trace_tables
    relabel, verdicts = _write_inputs(Store(store.url), (relabels, [sampled[0], _custom_chat(sampled[1])]))
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question": "the quick brown fox jumps over the lazy dog"}) + "\n")
    HubTarget(repo_id="me/traces", private=True, token=SecretStr(TOKEN)).save("flow-hub", overwrite=True)
    filter_config = FilterConfig(
        length=LengthOutlierConfig(method="std", k=2),
        contamination=ContaminationConfig(files=[str(bench)], n=5),
        max_per_problem=2,
    )
    export_config = ExportConfig(hub_target="flow-hub", pretty_name="Flow traces")
    build_info = {"sampling": {"n": 8, "temperature": 0.6}, "teacher": {"model": "m", "api_key": API_KEY}}
    build_info["source_rows"] = {"skipped": {"duplicate question (de-duplication)": 2}, "repaired": {}, "examples": {}}

    state = filter_and_export(
        relabel, verdicts, filter_config, export_config, store=store, build_info=build_info, return_state=True
    )
    result = state.result()
    assert set(result) == {
        "kept", "rejected", "exports", "card", "funnel", "parquet", "rejected_parquet", "sft_correct", "sft_all",
        "messages", "r1v", "weaver", "hf_dataset", "hub",
    }  # fmt: skip
    funnel_file = json.loads(Path(result["funnel"]).read_text())
    assert {"source": "all", "stage": "kept", "rows_in": 3, "dropped": 0, "rows_out": 3} in funnel_file[
        "through the filters"
    ]
    assert [row["kept"] for row in funnel_file["per source"] if row["source"] == "all"] == [3]
    assert funnel_file["source rows skipped or repaired"] == [
        {"action": "skipped", "reason": "duplicate question (de-duplication)", "rows": 2, "first": ""}
    ]
    kept = Store(store.url).dataset("kept", Path(result["kept"]).name, "kept")
    rejected = Store(store.url).dataset("rejected", Path(result["rejected"]).name, "rejected")
    assert kept.manifest()["rows"] == 3 and rejected.manifest()["rows"] == 12
    assert kept.manifest()["inputs"][:2] == ["r0", "v0"] and kept.manifest()["inputs"][2].startswith(str(bench))
    assert sorted(rejected.read()["reason"].to_pylist()).count("contaminated") == 2
    assert Path(result["exports"]).parent == Path(store.url) / "exports"
    assert datasets.load_from_disk(result["hf_dataset"])["train"].num_rows == 3

    (token, repo, kwargs), (token2, repo2, files) = fake_hub
    assert token == token2 == TOKEN and repo == repo2 == "me/traces" and kwargs["private"] is True
    assert {"README.md", "length_histogram.png", "data/train-00000.parquet"} <= files
    assert not any(f.startswith(("hf_dataset/", "_done/", "sft_correct/", "sft_all/", "messages/")) for f in files)
    assert {"sft_correct.jsonl", "sft_all.jsonl", "messages.jsonl"} <= files
    assert Path(result["sft_all"]).name == "sft_all.jsonl" and Path(result["sft_all"]).is_file()
    assert result["hub"] == "https://huggingface.co/datasets/me/traces"
    # The prompts exported are those the samples recorded as sent (p0's built-in one, p2's custom chat messages).
    messages = [json.loads(line)["messages"][:-1] for line in Path(result["messages"]).read_text().splitlines()]
    assert messages == [sampled[0]["prompt_messages"][0].as_py(), CUSTOM_CHAT, CUSTOM_CHAT]

    states = task_states(state)
    assert [states[f"filter-{i:05d}"] for i in range(2)] == ["Completed"] * 2
    by_key = artifacts(state)
    funnel_rows = by_key["filter-funnel"].data
    funnel_rows = json.loads(funnel_rows) if isinstance(funnel_rows, str) else funnel_rows
    assert {"source": "all", "stage": "kept", "rows_in": 3, "dropped": 0, "rows_out": 3} in funnel_rows
    assert by_key["filter-export-progress"].data == 100.0
    # The artifact is the card's body as the UI shows it: no YAML header, the histogram inlined.
    card = by_key["dataset-card"].data
    assert card.startswith("# Flow traces\n") and "| all | 3 | 0 | 1 | 15 |" in card
    assert "![Response length histogram](data:image/png;base64," in card
    assert Path(result["card"]).read_text().startswith("---\n") and "size_categories:" not in card

    # No secret in any file of the store (datasets, exports, card, Prefect result records) or any artifact.
    for path in Path(store.url).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert TOKEN.encode() not in data and API_KEY.encode() not in data, path
    for artifact in by_key.values():
        text = json.dumps(artifact.data) + (artifact.description or "")
        assert TOKEN not in text and API_KEY not in text

    # A rerun reuses every shard; a new filter config writes a new kept dataset and reuses the verdicts.
    again = filter_and_export(
        relabel, verdicts, filter_config, export_config, store=store, build_info=build_info, return_state=True
    )
    assert again.result() == result
    states = task_states(again)
    assert {states[f"{kind}-{i:05d}"] for kind in ("filter", "export") for i in range(2)} == {"Cached"}

    other = filter_and_export(
        relabel, verdicts, filter_config.model_copy(update={"max_per_problem": None}), ExportConfig(), store=store
    )
    assert other["kept"] != result["kept"] and other["exports"] != result["exports"]
    assert Store(store.url).dataset("kept", Path(other["kept"]).name, "kept").manifest()["rows"] == 4
    assert "hub" not in other and len(fake_hub) == 4  # the rerun pushed again (2 calls), this one did not


def test_inputs_must_be_complete_and_aligned(prefect_api, tmp_path, trace_tables):
    store = StoreConfig(url=str(tmp_path / "store"))
    relabel, verdicts = _write_inputs(Store(store.url), trace_tables)
    with pytest.raises(ValueError, match=r"relabel/nope: no manifest"):
        filter_and_export("nope", verdicts, FilterConfig(), ExportConfig(), store=store)
    short = Store(store.url).dataset("relabel", "r1", "relabel")
    short.write_shard(0, trace_tables[0][0])
    short.commit(1, config={}, code_version="t")
    with pytest.raises(ValueError, match=r"has 1 shard\(s\) but .*rejudged/v0 has 2: they must be shard-aligned"):
        filter_and_export("r1", verdicts, FilterConfig(), ExportConfig(), store=store)
