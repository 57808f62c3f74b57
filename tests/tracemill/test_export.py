"""Every export read back with `datasets` or pyarrow, field by field; the card; the Hub upload at the client call."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from tracemill.export import card
from tracemill.export import layouts as export
from tracemill.export.config import ExportConfig
from tracemill.filtering import funnel, rules
from tracemill.filtering import stage as filters
from tracemill.filtering.config import ContaminationConfig, FilterConfig, LengthOutlierConfig
from tracemill.filtering.dedup import NgramIndex
from tracemill.filtering.stage import Plan
from tracemill.records import VERDICT, to_table
from tracemill.sampling.prompts import PromptTemplate, prompt_columns
from tracemill.store import Store

SECRETS = ("sk-teacher-SECRET-1", "S3-SECRET-2", "hf_TOKEN_SECRET_3")
BUILD_INFO = {
    "sampling": {"n": 8, "temperature": 0.6, "top_p": 0.95, "max_tokens": 4096},
    "teacher": {"kind": "endpoint", "model": "deepseek-reasoner", "api_key": SECRETS[0]},
    "store": {"url": "s3://bucket/x", "secret_access_key": SECRETS[1]},
    "hub": {"repo_id": "me/data", "token": SECRETS[2]},
    "source_rows": {  # the problems manifest's count of rows the source skipped or repaired
        "skipped": {"duplicate question (de-duplication)": 2},
        "repaired": {"answer letter and answer_index disagree (the letter is kept)": 1},
        "examples": {
            "skipped: duplicate question (de-duplication)": "mmlu_pro (p.jsonl): row 3 (question_id 72)",
            "repaired: answer letter and answer_index disagree (the letter is kept)": "mmlu_pro (p.jsonl): row 2",
        },
    },
}
FILTERS = FilterConfig(
    length=LengthOutlierConfig(method="std", k=2),
    contamination=ContaminationConfig(files=["bench.jsonl"], n=5),
    max_per_problem=2,
)


@pytest.fixture
def exported(tmp_path, trace_tables):
    """Kept and rejected datasets from the crafted traces, exported with every layout on."""
    relabels, verdicts = trace_tables
    store = Store(str(tmp_path / "store"))
    kept = store.dataset("kept", "k0", "kept")
    rejected = store.dataset("rejected", "k0", "rejected")
    tokens = np.concatenate([rules.measured_tokens(v) for v in verdicts])
    plan = Plan(
        FILTERS,
        rules.length_bound(tokens, FILTERS.length),
        NgramIndex.build(["the quick brown fox jumps over the lazy dog"], 5),
    )
    shard_funnels = []
    for shard, (relabel, verdict) in enumerate(zip(relabels, verdicts, strict=True)):
        k, r = filters.filter_shard(relabel, verdict, plan, shard=shard)
        kept.write_shard(shard, k)
        rejected.write_shard(shard, r)
        shard_funnels.append(funnel.shard_counts(relabel, verdict, k, r))
    kept.commit(2, config=FILTERS, code_version="t")
    rejected.commit(2, config=FILTERS, code_version="t")
    config = ExportConfig(pretty_name="Crafted traces", license="mit")
    out = export.export_dir(store, "k0", config)
    markers = [export.export_shard(kept.read_shard(i), rejected.read_shard(i), out, i, config) for i in range(2)]
    configs = export.configs(markers)
    written = export.write_card(
        out, kept, funnel=funnel.merge(shard_funnels), filter_config=FILTERS, export_config=config,
        build_info=BUILD_INFO, fingerprints={"kept": "k0", "verdicts": "v0"}, hub_configs=configs,
    )  # fmt: skip
    export.save_dataset_dict(out, configs)
    for name, files in configs.items():
        if files.endswith(".jsonl"):
            assert export.merge_jsonl(out, name, markers) == str(Path(out.path) / files)
    return kept, rejected, out, configs, written


def _load(out, name: str) -> list[dict]:
    """Load an export: a Parquet config as the Hub would (through the card's YAML), a jsonl one as json files."""
    prefix, suffix = export.LAYOUTS[name].prefix, export.LAYOUTS[name].suffix
    cache = str(Path(out.store.root).parent / "hf-cache")
    if suffix == "parquet":
        return datasets.load_dataset(out.path, name, split="train", cache_dir=cache).to_list()
    merged = datasets.load_dataset("json", data_files=f"{out.path}/{name}.jsonl", split="train", cache_dir=cache)
    parts = datasets.load_dataset("json", data_files=f"{out.path}/{prefix}-*.jsonl", split="train", cache_dir=cache)
    assert merged.to_list() == parts.to_list()  # the one file is the shard files in shard order
    return merged.to_list()


def _kept(kept, problem_id: str, sample_idx: int) -> dict:
    return next(r for r in kept.read().to_pylist() if (r["problem_id"], r["sample_idx"]) == (problem_id, sample_idx))


def test_parquet_and_dataset_dict(exported):
    kept, rejected, out, configs, _ = exported
    assert configs["default"] == "data/train-*.parquet" and configs["rejected"] == "rejected/train-*.parquet"
    files = sorted(Path(out.path, "data").glob("train-*.parquet"))
    assert [f.name for f in files] == ["train-00000.parquet", "train-00001.parquet"]
    assert pq.read_table(files[1]).to_pylist() == kept.read_shard(1).to_pylist()

    saved = datasets.load_from_disk(str(Path(out.path) / export.HF_DATASET))
    assert set(saved) == {"train", "rejected"}
    assert saved["train"].to_list() == kept.read().to_pylist()
    assert saved["rejected"].num_rows == rejected.read().num_rows == 12
    assert sorted(saved["rejected"]["reason"]) == sorted(rejected.read()["reason"].to_pylist())


def test_sft_files(exported):
    kept, _, out, _, _ = exported
    correct = _load(out, "sft_correct")
    assert len(correct) == 3 and set(correct[0]) == {"prompt", "response"}
    first = _kept(kept, "p0", 0)
    assert correct[0] == {
        "prompt": first["prompt"],
        "response": "<think>\nI add two and two to get four.\n</think>\n\nThe answer is \\boxed{4}.",
    }
    assert first["prompt"].startswith("What is 2+2?") and "\\boxed{}" in first["prompt"]

    labelled = _load(out, "sft_all")
    # Kept rows plus those rejected only for their label, in (problem, sample) order.
    assert [(r["ground_truth"], r["predicted"], r["is_correct"]) for r in labelled] == [
        ("4", "4", True), ("4", "5", False), ("4", "4", True), ("4", "5", None), ("4", "4", True),
    ]  # fmt: skip
    assert labelled[1]["response"] == "<think>\nTwo plus two is five, I think.\n</think>\n\n\\boxed{5}"
    assert labelled[0]["prompt"] == correct[0]["prompt"]


def test_messages(exported):
    kept, _, out, _, _ = exported
    rows = _load(out, "messages")
    assert len(rows) == 3
    clevr = _kept(kept, "p2", 0)
    assert rows[1]["messages"][0] == {"role": "user", "content": clevr["prompt"]}
    assert rows[1]["messages"][1]["role"] == "assistant"
    assert rows[1]["messages"][1]["content"].startswith("<think>\nstep 0 counts")
    assert rows[1]["messages"][1]["content"].endswith("</think>\n\nThere are 4 cubes. **The answer is: ** 4")
    assert "Scene Description:\nA large red cube" in clevr["prompt"]


# Custom prompts that filters and exports are never given: the samples alone say what was sent.
CHAT = PromptTemplate("terse", 1, "Solve: {question}", system="Be brief.")
COMPLETION = PromptTemplate("open", 1, "Problem: {problem}\nAnswer: <think>", mode="completion")


def _sampled_with(template: PromptTemplate, relabel: pa.Table, verdicts: pa.Table) -> pa.Table:
    """The verdicts as if sampled with ``template``: its id and the prompt it sent, recorded as the Sampler does."""
    problems = {p["problem_id"]: p for p in relabel.to_pylist()}
    rows = verdicts.to_pylist()
    for row in rows:
        row.update(prompt_version=template.id, **prompt_columns(template.render(problems[row["problem_id"]])))
    return to_table(rows, VERDICT)


def test_exports_carry_the_prompts_the_samples_recorded(tmp_path, trace_tables):
    relabels, verdicts = trace_tables
    sampled = [_sampled_with(COMPLETION, relabels[0], verdicts[0]), _sampled_with(CHAT, relabels[1], verdicts[1])]
    config = ExportConfig(r1v=False, weaver=False, include_rejected=False)
    out = export.export_dir(Store(str(tmp_path)), "k0", config)
    files = {}
    for shard, (relabel, verdict) in enumerate(zip(relabels, sampled, strict=True)):
        kept, rejected = filters.filter_shard(relabel, verdict, Plan(FilterConfig()), shard=shard)
        for name, info in export.export_shard(kept, rejected, out, shard, config)["files"].items():
            files[name, shard] = Path(out.path, info["file"])
    rows = {key: [json.loads(line) for line in path.read_text().splitlines()] for key, path in files.items()
            if path.suffix == ".jsonl"}  # fmt: skip

    # The chat prompt: its system message and user message exactly, in the messages export and the SFT files.
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Solve: How many cubes?"}]
    assert rows["messages", 1] and all(r["messages"][:2] == chat for r in rows["messages", 1])
    assert [r["messages"][2]["role"] for r in rows["messages", 1]] == ["assistant"] * len(rows["messages", 1])
    assert {r["prompt"] for r in rows["sft_correct", 1] + rows["sft_all", 1]} == {"Solve: How many cubes?"}
    # The completion prompt: its text exactly; it opens <think>, so the SFT response continues inside it.
    text = "Problem: What is 2+2?\nAnswer: <think>"
    response = "I add two and two to get four.\n</think>\n\nThe answer is \\boxed{4}."
    assert rows["sft_correct", 0][0] == {"prompt": text, "response": response}
    assert rows["messages", 0][0]["messages"][0] == {"role": "user", "content": text}
    assert pq.read_table(files["default", 1])["prompt_messages"].to_pylist()[0] == chat


def test_r1v_layout(exported):
    _, _, out, _, _ = exported
    rows = _load(out, "r1v")
    assert list(rows[1]) == ["image", "problem", "thinking", "solution"]
    assert rows[1]["image"] == "CLEVR_1.png" and rows[0]["image"] is None
    assert rows[1]["problem"] == "How many cubes?"
    assert rows[1]["thinking"].startswith("<think>step 0 counts object 0") and rows[1]["thinking"].endswith("</think>")
    assert rows[1]["solution"] == "<answer> 4 </answer>"  # the (relabelled) gold


def test_weaver_layout(exported):
    kept, _, out, _, _ = exported
    rows = {r["problem_id"]: r for r in _load(out, "weaver")}
    assert set(rows) == {"p0", "p2"}
    p2 = rows["p2"]
    assert p2["instruction"] == _kept(kept, "p2", 0)["prompt"]
    assert p2["answer"] == "4" and p2["source"] == "clevr"
    assert p2["answer_correct"] == [True, None, True] and p2["extracted_answers"] == ["4", "5", "4"]
    assert len(p2["samples"]) == 3 and p2["samples"][2].startswith("<think>\nI add two and two")
    assert rows["p0"]["answer_correct"] == [True, False]


def test_card(exported):
    _, _, out, configs, written = exported
    text = written.text
    assert Path(out.path, export.CARD).read_text() == text
    header = yaml.safe_load(text.split("---\n")[1])
    assert header["license"] == "mit" and header["size_categories"] == ["n<1K"]
    assert header["task_categories"] == ["text-generation", "question-answering"]
    assert [c["config_name"] for c in header["configs"]] == ["default", "rejected", "r1v", "weaver"]
    assert set(configs) == {"default", "rejected", "sft_correct", "sft_all", "messages", "r1v", "weaver"}
    assert "| sft_all | `sft_all.jsonl` |" in text
    assert header["configs"][0]["default"] is True
    assert "# Crafted traces" in text
    assert "| all | 3 | 0 | 1 | 15 | 1 | 14 | 12 | 3 |" in text  # the funnel summary row (no verified gold)
    assert "| all | contaminated | 14 | 2 | 12 |" in text  # one filter step
    assert "1 of 3 problems (33.3%)" in text
    assert "| skipped | duplicate question (de-duplication) | 2 | mmlu_pro (p.jsonl): row 3 (question_id 72) |" in text
    assert "| repaired | answer letter and answer_index disagree (the letter is kept) | 1 |" in text
    assert "source_rows" not in text  # shown as the table, not again in the build configuration
    assert "`tiny-teacher`" in text and "temperature | 0.6" in text
    assert "| kept | `k0` |" in text and "![Response length histogram](length_histogram.png)" in text
    image = Image.open(io.BytesIO(Path(out.path, export.HISTOGRAM).read_bytes()))
    assert image.format == "PNG" and image.size == (640, 320)
    assert "deepseek-reasoner" in text  # the build config is there, its secrets are not
    _assert_no_secrets(Path(out.path), SECRETS)


def test_card_page_for_the_ui(exported):
    """The artifact shows the card's body: no YAML header (the UI draws it as headings), the histogram inlined."""
    kept, _, out, configs, written = exported
    page = written.page
    assert written.text.startswith("---\nlicense: mit\n") and page.startswith("# Crafted traces\n")
    assert "size_categories:" not in page and "\n---\n" not in page
    image = re.search(r"!\[Response length histogram\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", page)
    assert image is not None and base64.b64decode(image[1]) == Path(out.path, export.HISTOGRAM).read_bytes()
    # Otherwise the page is the card's body, word for word.
    assert written.text.endswith("\n" + page.replace(image[0], f"![Response length histogram]({export.HISTOGRAM})"))
    _assert_no_secrets(Path(out.path), SECRETS)
    assert not any(secret in page for secret in SECRETS)

    # Without a pretty_name, the build's name titles the card and the page (not the fingerprint).
    unnamed = export.write_card(
        out, kept, funnel={}, filter_config=FILTERS, export_config=ExportConfig(),
        build_info={**BUILD_INFO, "name": "crafted-traces"}, fingerprints={"kept": "k0"}, hub_configs=configs,
    )  # fmt: skip
    assert unnamed.page.startswith("# crafted-traces\n") and "pretty_name: crafted-traces" in unnamed.text


def _assert_no_secrets(folder: Path, secrets) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret} in {path}"


def test_redact():
    from pydantic import SecretStr

    from blocks.hub_target import HubTarget

    block = HubTarget(repo_id="me/data", token=SecretStr("hf_x"))
    assert card.redact(block)["token"] == card.REDACTED and card.redact(block)["repo_id"] == "me/data"
    assert card.redact({"a": [{"API_KEY": "x", "keep": 1}], "token": None}) == {
        "a": [{"API_KEY": card.REDACTED, "keep": 1}],
        "token": None,
    }
    assert card.size_category(999) == "n<1K" and card.size_category(1000) == "1K<n<10K"


def test_push_uploads_the_folder_with_the_token(exported, monkeypatch):
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    _, _, out, _, _ = exported
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", self.token, repo_id, kwargs))

    def upload_folder(self, **kwargs):  # what the client would upload: the folder's files less the ignore patterns
        folder = Path(kwargs["folder_path"])
        files = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
        calls.append(
            (
                "upload_folder",
                self.token,
                kwargs,
                set(filter_repo_objects(files, ignore_patterns=kwargs["ignore_patterns"])),
            )
        )

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    url = export.push_to_hub(out.path, repo_id="me/data", token=SECRETS[2], private=True, message="m")
    assert url == "https://huggingface.co/datasets/me/data"
    (_, token, repo, kwargs), (_, token2, upload, files) = calls
    assert token == token2 == SECRETS[2]
    assert repo == "me/data" and kwargs == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload["repo_type"] == "dataset" and upload["folder_path"] == out.path
    assert {"README.md", "length_histogram.png", "data/train-00000.parquet", "weaver/train-00001.parquet"} <= set(files)
    assert not any(f.startswith(("hf_dataset/", "_done/")) for f in files)
    assert Path(out.path, "hf_dataset", "dataset_dict.json").exists()  # there, but not uploaded
