"""Exports of the kept and rejected datasets: the folder that is (also) the Hugging Face dataset repo.

``{out}/exports/{fingerprint}/`` holds, per shard of the kept dataset:

* ``data/train-*.parquet`` (kept rows, the final dataset) and ``data/rejected-*.parquet`` (with reasons);
* ``sft_correct/*.jsonl`` ``{"prompt", "response"}`` and ``sft_all/*.jsonl`` with ``ground_truth``,
  ``predicted``, ``is_correct``;
* ``messages/*.jsonl`` chat ``messages``;
* ``r1v/*.parquet`` ``image``, ``problem``, ``thinking``, ``solution`` (R1-V's vision SFT layout);
* ``weaver/*.parquet`` one row per problem with every labelled sample (Weaver's layout);

then ``README.md`` (the dataset card), ``length_histogram.png`` and ``hf_dataset/`` (a
``datasets.DatasetDict`` saved to disk). The folder minus ``hf_dataset/`` is what goes to the Hub.

SFT responses are R1 style, ``<think>\\n{reasoning}\\n</think>\\n\\n{response}``: the format DeepSeek-R1
emits and its distilled models are trained on, so a chat template that re-adds ``<think>`` is not
needed. When the prompt itself ends in ``<think>`` (a completion prompt such as r1_think_answer),
the response starts right after it, without a second ``<think>``.
"""

from __future__ import annotations

import io
import json
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from tracemill import card
from tracemill.config import _Model
from tracemill.filters import LABEL_REASONS
from tracemill.funnel import Funnel
from tracemill.store import Dataset, Store, fingerprint

STAGE = "exports"
# Bump when a change here writes other files or rows for the same kept dataset and config.
CODE_VERSION = "export-1"
DONE = "_done"
HF_DATASET = "hf_dataset"
CARD = "README.md"
HISTOGRAM = "length_histogram.png"

R1V = pa.schema(
    [
        pa.field("image", pa.string()),
        pa.field("problem", pa.string()),
        pa.field("thinking", pa.string()),
        pa.field("solution", pa.string()),
    ]
)
WEAVER = pa.schema(
    [
        pa.field("instruction", pa.string()),
        pa.field("samples", pa.list_(pa.string())),
        pa.field("extracted_answers", pa.list_(pa.string())),
        pa.field("answer_correct", pa.list_(pa.bool_())),
        pa.field("answer", pa.string()),
        pa.field("problem_id", pa.string()),
        pa.field("source", pa.string()),
    ]
)


class ExportConfig(_Model):
    """Which exports to write from the kept and rejected datasets, and how to describe them."""

    sft: bool = Field(True, description="SFT jsonl: correct-only {prompt, response} and all samples with labels.")
    messages: bool = Field(True, description="Chat jsonl: {messages: [system?, user, assistant]} of correct samples.")
    r1v: bool = Field(True, description="R1-V layout: image, problem, thinking, solution as <answer> X </answer>.")
    weaver: bool = Field(True, description="Weaver layout: one row per problem with all its labelled samples.")
    include_rejected: bool = Field(True, description="Publish rejected rows with their reason as config 'rejected'.")
    hf_dataset: bool = Field(True, description="Save a datasets.DatasetDict to disk beside the files.")
    output_url: str | None = Field(
        None,
        min_length=1,
        description="Folder or fsspec URL under which exports/{fingerprint}/ is written; empty: the store.",
    )
    hub_target: str | None = Field(
        None, min_length=1, description="Name of a HubTarget block: push the export to the Hub; empty: no push."
    )
    pretty_name: str | None = Field(None, min_length=1, max_length=200, description="Dataset name on its card.")
    license: str = Field(
        "apache-2.0", min_length=1, max_length=64, pattern=r"^[a-z0-9.\-]+$", description="License id for the card."
    )
    task_categories: list[str] = Field(
        ["text-generation", "question-answering"], min_length=1, max_length=10, description="Hub task categories."
    )
    histogram_bins: int = Field(20, ge=2, le=200, description="Bars of the response-length histogram.")

    def files_identity(self) -> dict[str, Any]:
        """What changes the exported files: the push target and the card's wording do not."""
        return self.model_dump(mode="json", include={"sft", "messages", "r1v", "weaver", "include_rejected"})


def export_dir(store: Store, kept_fingerprint: str, config: ExportConfig) -> Dataset:
    """The export folder as a dataset location (its path is ``{out}/exports/{fingerprint}``)."""
    out = Store(config.output_url) if config.output_url else store
    fp = fingerprint(STAGE, config.files_identity(), CODE_VERSION, [kept_fingerprint])
    return out.dataset(STAGE, fp, "kept")


# --- rows of each layout --------------------------------------------------------------------------


def r1_response(reasoning: str | None, response: str | None, prompt: str = "") -> str:
    """``<think>\\n{reasoning}\\n</think>\\n\\n{response}``; no opening tag when the prompt already ends in one."""
    body = f"{(reasoning or '').strip()}\n</think>\n\n{(response or '').strip()}"
    return body if prompt.rstrip().endswith("<think>") else f"<think>\n{body}"


def labelled(kept: pa.Table, rejected: pa.Table) -> pa.Table:
    """Kept rows plus those rejected only for their label (incorrect, undecided), in sample order."""
    wrong = rejected.filter(pc.is_in(rejected["reason"], pa.array(LABEL_REASONS))).drop_columns(["reason"])
    table = pa.concat_tables([kept, wrong])
    return table.take(pc.sort_indices(table, [("problem_id", "ascending"), ("sample_idx", "ascending")]))


def correct_rows(kept: pa.Table) -> pa.Table:
    return kept.filter(pc.fill_null(kept["correct"], False))


def sft_rows(table: pa.Table) -> list[dict[str, Any]]:
    return [
        {"prompt": r["prompt"], "response": r1_response(r["reasoning"], r["response"], r["prompt"])}
        for r in _pylist(table, ["prompt", "reasoning", "response"])
    ]


def sft_labelled_rows(table: pa.Table) -> list[dict[str, Any]]:
    return [
        {
            "prompt": r["prompt"],
            "response": r1_response(r["reasoning"], r["response"], r["prompt"]),
            "ground_truth": r["answer"],
            "predicted": r["extracted"],
            "is_correct": r["correct"],
        }
        for r in _pylist(table, ["prompt", "reasoning", "response", "answer", "extracted", "correct"])
    ]


def messages_rows(table: pa.Table) -> list[dict[str, Any]]:
    rows = []
    for r in _pylist(table, ["system", "prompt", "reasoning", "response"]):
        messages = [{"role": "system", "content": r["system"]}] if r["system"] else []
        messages += [
            {"role": "user", "content": r["prompt"]},
            {"role": "assistant", "content": r1_response(r["reasoning"], r["response"])},
        ]
        rows.append({"messages": messages})
    return rows


def r1v_rows(table: pa.Table) -> list[dict[str, Any]]:
    """R1-V: the image file name, the question, the reasoning in think tags, the gold in answer tags."""
    return [
        {
            "image": r["img_filename"],
            "problem": r["question"],
            "thinking": f"<think>{(r['reasoning'] or '').strip()}</think>",
            "solution": f"<answer> {r['answer']} </answer>",
        }
        for r in _pylist(table, ["img_filename", "question", "reasoning", "answer"])
    ]


def weaver_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Weaver: one row per problem; a shard holds all samples of its problems, so shards never split a row."""
    rows: dict[str, dict[str, Any]] = {}
    columns = ["problem_id", "source", "prompt", "reasoning", "response", "extracted", "correct", "answer"]
    for r in _pylist(table, columns):
        row = rows.setdefault(
            r["problem_id"],
            {
                "instruction": r["prompt"],
                "samples": [],
                "extracted_answers": [],
                "answer_correct": [],
                "answer": r["answer"],
                "problem_id": r["problem_id"],
                "source": r["source"],
            },
        )
        row["samples"].append(r1_response(r["reasoning"], r["response"], r["prompt"]))
        row["extracted_answers"].append(r["extracted"])
        row["answer_correct"].append(r["correct"])
    return list(rows.values())


def _pylist(table: pa.Table, columns: Sequence[str]) -> list[dict[str, Any]]:
    return table.select(list(columns)).to_pylist()


# --- files ----------------------------------------------------------------------------------------

# Each export: (folder, file suffix, rows of (kept, rejected), whether the config asks for it).
Layout = tuple[str, str, Callable[[pa.Table, pa.Table], Any], Callable[[ExportConfig], bool]]
LAYOUTS: dict[str, Layout] = {
    "default": ("data/train", "parquet", lambda k, r: k, lambda c: True),
    "rejected": ("rejected/train", "parquet", lambda k, r: r, lambda c: c.include_rejected),
    "sft_correct": ("sft_correct/train", "jsonl", lambda k, r: sft_rows(correct_rows(k)), lambda c: c.sft),
    "sft_all": ("sft_all/train", "jsonl", lambda k, r: sft_labelled_rows(labelled(k, r)), lambda c: c.sft),
    "messages": ("messages/train", "jsonl", lambda k, r: messages_rows(correct_rows(k)), lambda c: c.messages),
    "r1v": ("r1v/train", "parquet", lambda k, r: _table(r1v_rows(correct_rows(k)), R1V), lambda c: c.r1v),
    "weaver": ("weaver/train", "parquet", lambda k, r: _table(weaver_rows(labelled(k, r)), WEAVER), lambda c: c.weaver),
}


# The jsonl shard files: merged into one file per layout, which is what is published.
JSONL_PARTS = [f"{posixpath.dirname(prefix)}/**" for prefix, suffix, _, _ in LAYOUTS.values() if suffix == "jsonl"]


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def export_shard(kept: pa.Table, rejected: pa.Table, out: Dataset, shard: int, config: ExportConfig) -> dict[str, Any]:
    """Write one shard's files of every configured layout (empty ones are skipped), then its done marker."""
    written: dict[str, dict[str, Any]] = {}
    for name, (prefix, suffix, rows_of, wanted) in LAYOUTS.items():
        if not wanted(config):
            continue
        data = rows_of(kept, rejected)
        count = data.num_rows if isinstance(data, pa.Table) else len(data)
        if count == 0:
            continue
        path = posixpath.join(out.path, f"{prefix}-{shard:05d}.{suffix}")
        if suffix == "parquet":
            out.store.write_file(path, lambda f, data=data: pq.write_table(data, f, compression="zstd"))
        else:
            out.store.write_bytes(path, _jsonl(data))
        written[name] = {"file": posixpath.relpath(path, out.path), "rows": count}
    marker = {"shard": shard, "files": written}
    out.store.write_bytes(_marker(out, shard), json.dumps(marker, indent=1).encode())
    return marker


def shard_done(out: Dataset, shard: int) -> dict[str, Any] | None:
    """The done marker of a shard whose files are all written, else None."""
    if not out.store.exists(_marker(out, shard)):
        return None
    return json.loads(out.store.read_bytes(_marker(out, shard)))


def _marker(out: Dataset, shard: int) -> str:
    return posixpath.join(out.path, DONE, f"{shard:05d}.json")


def _jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    buffer = io.StringIO()
    for row in rows:
        buffer.write(json.dumps(row, ensure_ascii=False))
        buffer.write("\n")
    return buffer.getvalue().encode()


def configs(markers: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Files of each layout that has rows: a glob of the Parquet shards (a Hub config), or the one merged jsonl."""
    present = {name for marker in markers for name in marker["files"]}
    return {
        name: merged_name(name) if suffix == "jsonl" else f"{prefix}-*.{suffix}"
        for name, (prefix, suffix, _, _) in LAYOUTS.items()
        if name in present
    }


def merged_name(name: str) -> str:
    return f"{name}.jsonl"


def merge_jsonl(out: Dataset, name: str, markers: Sequence[Mapping[str, Any]], force: bool = False) -> str:
    """One ``{name}.jsonl`` from the layout's shard files, in shard order: the single file SFT tools take.

    Written atomically, so a file that exists is whole and a rerun of the same export skips it.
    """
    path = posixpath.join(out.path, merged_name(name))
    if force or not out.store.exists(path):
        parts = [m["files"][name]["file"] for m in sorted(markers, key=lambda m: m["shard"]) if name in m["files"]]

        def write(f: Any) -> None:
            for part in parts:
                f.write(out.store.read_bytes(posixpath.join(out.path, part)))

        out.store.write_file(path, write)
    return out.store.uri(path)


def save_dataset_dict(out: Dataset, hub_configs: Mapping[str, str], force: bool = False) -> str:
    """Load the kept (``train``) and rejected Parquet files with ``datasets``; save them as one DatasetDict.

    ``save_to_disk`` writes its index first, so a marker written after it says the copy is whole and a
    rerun of the same export skips it.
    """
    import datasets

    target = posixpath.join(out.path, HF_DATASET)
    marker = posixpath.join(target, DONE)
    if not force and out.store.exists(marker):
        return out.store.uri(target)
    # A new dict per call: load_dataset adds an "hf" entry to the one it is given, which s3fs then refuses.
    options = out.store.storage_options
    splits = {}
    with tempfile.TemporaryDirectory(prefix="tracemill-hf-") as cache:
        for split, name in (("train", "default"), ("rejected", "rejected")):
            if name in hub_configs:
                files = out.store.uri(posixpath.join(out.path, hub_configs[name]))
                splits[split] = datasets.load_dataset(
                    "parquet", data_files=files, split="train", cache_dir=cache, storage_options=dict(options) or None
                )
        datasets.DatasetDict(splits).save_to_disk(out.store.uri(target), storage_options=dict(options) or None)
    out.store.write_bytes(marker, b"")
    return out.store.uri(target)


@contextmanager
def local_folder(out: Dataset) -> Iterator[str]:
    """The export folder on local disk: itself, or a temporary download from object storage."""
    if out.store.is_local:
        yield out.path
        return
    with tempfile.TemporaryDirectory(prefix="tracemill-push-") as tmp:
        out.store.fs.get(out.path.rstrip("/") + "/", tmp, recursive=True)
        yield tmp


def push_to_hub(folder: str, *, repo_id: str, token: str | None, private: bool, message: str) -> str:
    """Upload an export folder (without ``hf_dataset/``, the done markers and the jsonl shard files) as a Hub repo."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=folder,
        commit_message=message,
        ignore_patterns=[f"{HF_DATASET}/**", f"{DONE}/**", *JSONL_PARTS],
    )
    return f"https://huggingface.co/datasets/{repo_id}"


def write_card(
    out: Dataset,
    kept: Dataset,
    *,
    funnel: Funnel,
    filter_config: Any,
    export_config: ExportConfig,
    build_info: Mapping[str, Any] | None,
    fingerprints: Mapping[str, str],
    hub_configs: Mapping[str, str],
) -> str:
    """Write ``README.md`` and ``length_histogram.png`` into the export folder; returns the card."""
    table = kept.read(columns=["completion_tokens", "teacher", "prompt_version"])
    tokens = table["completion_tokens"].drop_null().to_numpy()
    out.store.write_bytes(
        posixpath.join(out.path, HISTOGRAM), card.length_histogram(tokens, export_config.histogram_bins)
    )
    lengths = {"samples": float(tokens.size)}
    if tokens.size:
        lengths |= {
            "mean": float(tokens.mean()),
            "median": float(np.median(tokens)),
            "p95": float(np.percentile(tokens, 95)),
            "max": float(tokens.max()),
        }
    text = card.render(
        title=export_config.pretty_name or f"tracemill dataset {fingerprints.get('kept', '')}".strip(),
        license=export_config.license,
        task_categories=export_config.task_categories,
        hub_configs=hub_configs,
        rows=table.num_rows,
        funnel=funnel,
        fingerprints=fingerprints,
        teachers=sorted(set(table["teacher"].to_pylist())),
        prompt_versions=sorted(set(table["prompt_version"].to_pylist())),
        filter_config=filter_config,
        export_config=export_config,
        build_info=build_info,
        lengths=lengths,
        histogram=HISTOGRAM,
    )
    out.store.write_bytes(posixpath.join(out.path, CARD), text.encode())
    return text
