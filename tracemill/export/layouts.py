"""Exports of the kept and rejected datasets: the folder that is (also) the Hugging Face dataset repo.

``{out}/exports/{fingerprint}/`` holds, per shard of the kept dataset:

* ``data/train-*.parquet`` (kept rows, the final dataset) and ``data/rejected-*.parquet`` (with reasons);
* ``sft_correct/*.jsonl`` ``{"prompt", "response"}`` and ``sft_all/*.jsonl`` with ``ground_truth``,
  ``predicted``, ``is_correct``;
* ``messages/*.jsonl`` chat ``messages``: those the teacher was sent, then its answer;
* ``r1v/*.parquet`` ``image``, ``problem``, ``thinking``, ``solution`` (R1-V's vision SFT layout);
* ``weaver/*.parquet`` one row per problem with every labelled sample (Weaver's layout), and with the
  scores stage each verifier's columns (``{name}_scores``, ``{name}_verdicts``, ``{name}_min_scores``,
  ``_max_scores``, ``_avg_scores``, ``_step_scores``);

then ``README.md`` (the dataset card), ``length_histogram.png`` and ``hf_dataset/`` (a
``datasets.DatasetDict`` saved to disk). The folder minus ``hf_dataset/`` is what goes to the Hub.

Every file's size and SHA-256 are taken as it is written and kept with its done marker under
``_done/``; ``_manifest.json`` gathers them, for ``tracemill verify``.

SFT responses are R1 style, ``<think>\\n{reasoning}\\n</think>\\n\\n{response}``: the format DeepSeek-R1
emits and its distilled models are trained on, so a chat template that re-adds ``<think>`` is not
needed. When the prompt itself ends in ``<think>`` (a completion prompt such as r1_think_answer),
the response starts right after it, without a second ``<think>``. Prompts are never rendered here: every
layout takes the prompt each sample recorded as it was sent.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tracemill.export import card
from tracemill.export.config import ExportConfig
from tracemill.filtering.config import LABEL_REASONS
from tracemill.filtering.funnel import Funnel
from tracemill.stage import Logger, Stage
from tracemill.store import MANIFEST, Dataset, ShardNotFoundError, Store, Written

STAGE = "exports"
# Bump when a change here writes other files or rows for the same kept dataset and config.
CODE_VERSION = "export-1"
DONE = "_done"
# Records of the whole-folder files (merged jsonl, card, histogram, funnel): their size and checksum.
RECORDS = f"{DONE}/files"
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


def export_dir(store: Store, kept_fingerprint: str, config: ExportConfig, scores: str | None = None) -> Dataset:
    """The export folder as a dataset location (its path is ``{out}/exports/{fingerprint}``); the scores
    dataset, when the build has one, is an input too (the Weaver layout holds its columns)."""
    out = Store(config.output_url) if config.output_url else store
    inputs = (kept_fingerprint,) if scores is None else (kept_fingerprint, scores)
    return Stage(STAGE, "kept", CODE_VERSION, config, inputs).dataset(out)


@dataclass(frozen=True)
class ExportJob:
    """Write one kept shard's files of every layout into the export folder ``out`` (a
    :class:`~tracemill.stage.ShardJob`); a shard whose done marker is there is reused unless forced."""

    kept: Dataset
    rejected: Dataset
    out: Dataset
    config: ExportConfig
    scores: Dataset | None = None

    @property
    def outputs(self) -> tuple[Dataset, ...]:
        return (self.out,)

    def run(self, shard: int, force: bool, log: Logger) -> dict[str, Any]:
        done = None if force else shard_done(self.out, shard)
        if done is not None:
            return done
        scores = None if self.scores is None else self.scores.read_shard(shard)
        kept, rejected = self.kept.read_shard(shard), self.rejected.read_shard(shard)
        return export_shard(kept, rejected, self.out, shard, self.config, scores=scores)


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
    """The chat messages the teacher was sent (a completion prompt as one user message), then its answer."""
    rows = []
    for r in _pylist(table, ["prompt", "prompt_messages", "reasoning", "response"]):
        messages = r["prompt_messages"] or [{"role": "user", "content": r["prompt"]}]
        answer = {"role": "assistant", "content": r1_response(r["reasoning"], r["response"])}
        rows.append({"messages": [*messages, answer]})
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


# Weaver's verifier columns per verifier kind: (column suffix, SCORE field, Arrow type of one sample's value).
WEAVER_VERIFIER_COLUMNS: dict[str, list[tuple[str, str, pa.DataType]]] = {
    "reward_model": [("scores", "score", pa.float64())],
    "process_reward_model": [
        ("min_scores", "min_score", pa.float64()),
        ("max_scores", "max_score", pa.float64()),
        ("avg_scores", "avg_score", pa.float64()),
        ("step_scores", "step_scores", pa.list_(pa.float64())),
    ],
    "lm_judge": [("verdicts", "verdicts", pa.list_(pa.float64()))],
}


def weaver_scores(weaver: pa.Table, samples: pa.Table, scores: pa.Table) -> pa.Table:
    """Weaver rows plus each verifier's columns (``{name}_scores``, ``{name}_verdicts``, ``{name}_min_scores``…):
    per problem, one value per sample of ``samples`` (the rows the Weaver table was made from), in its order."""
    by_sample = {(r["verifier"], r["problem_id"], r["sample_idx"]): r for r in scores.to_pylist()}
    verifiers = dict.fromkeys((r["verifier"], r["kind"]) for r in by_sample.values())
    keys: dict[str, list[int]] = {}
    for row in _pylist(samples, ["problem_id", "sample_idx"]):
        keys.setdefault(row["problem_id"], []).append(row["sample_idx"])
    problems = weaver["problem_id"].to_pylist()
    for name, kind in verifiers:
        for suffix, field, type_ in WEAVER_VERIFIER_COLUMNS[kind]:
            values = [[by_sample.get((name, pid, idx), {}).get(field) for idx in keys[pid]] for pid in problems]
            weaver = weaver.append_column(
                pa.field(f"{name}_{suffix}", pa.list_(type_)), pa.array(values, pa.list_(type_))
            )
    return weaver


def _pylist(table: pa.Table, columns: Sequence[str]) -> list[dict[str, Any]]:
    return table.select(list(columns)).to_pylist()


# --- files ----------------------------------------------------------------------------------------

Rows = Callable[[pa.Table, pa.Table, pa.Table | None], "list[dict[str, Any]] | pa.Table"]


@dataclass(frozen=True)
class Layout:
    """One export layout: the Hub config ``name``, its shard files ``{prefix}-{shard:05d}.{suffix}`` (jsonl files
    are merged into ``{name}.jsonl``), its rows from a shard's kept and rejected rows and scores (None without a
    scores stage), and the ExportConfig toggle that turns it on (None: always written)."""

    name: str
    prefix: str
    suffix: Literal["parquet", "jsonl"]
    rows: Rows
    toggle: str | None

    def wanted(self, config: ExportConfig) -> bool:
        return self.toggle is None or bool(getattr(config, self.toggle))


# Every layout by name, in the order they are written and listed: add one with register_layout.
LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    """Add an export layout; its toggle is a field of ExportConfig, so the export fingerprint follows it."""
    if layout.name in LAYOUTS:
        raise ValueError(f"export layout {layout.name!r} is registered already")
    LAYOUTS[layout.name] = layout
    return layout


def _weaver(kept: pa.Table, rejected: pa.Table, scores: pa.Table | None) -> pa.Table:
    table = _table(weaver_rows(labelled(kept, rejected)), WEAVER)
    return table if scores is None else weaver_scores(table, labelled(kept, rejected), scores)


for _layout in [
    Layout("default", "data/train", "parquet", lambda k, r, s: k, None),
    Layout("rejected", "rejected/train", "parquet", lambda k, r, s: r, "include_rejected"),
    Layout("sft_correct", "sft_correct/train", "jsonl", lambda k, r, s: sft_rows(correct_rows(k)), "sft"),
    Layout("sft_all", "sft_all/train", "jsonl", lambda k, r, s: sft_labelled_rows(labelled(k, r)), "sft"),
    Layout("messages", "messages/train", "jsonl", lambda k, r, s: messages_rows(correct_rows(k)), "messages"),
    Layout("r1v", "r1v/train", "parquet", lambda k, r, s: _table(r1v_rows(correct_rows(k)), R1V), "r1v"),
    Layout("weaver", "weaver/train", "parquet", _weaver, "weaver"),
]:
    register_layout(_layout)


def jsonl_parts() -> list[str]:
    """The jsonl shard files: merged into one file per layout, which is what is published."""
    return [f"{posixpath.dirname(layout.prefix)}/**" for layout in LAYOUTS.values() if layout.suffix == "jsonl"]


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def export_shard(
    kept: pa.Table,
    rejected: pa.Table,
    out: Dataset,
    shard: int,
    config: ExportConfig,
    scores: pa.Table | None = None,
) -> dict[str, Any]:
    """Write one shard's files of every configured layout (empty ones are skipped), then its done marker.

    With the shard's ``scores`` (the scores stage), the Weaver layout gets every verifier's columns.
    """
    written: dict[str, dict[str, Any]] = {}
    for layout in LAYOUTS.values():
        if not layout.wanted(config):
            continue
        data = layout.rows(kept, rejected, scores)
        count = data.num_rows if isinstance(data, pa.Table) else len(data)
        if count == 0:
            continue
        path = posixpath.join(out.path, f"{layout.prefix}-{shard:05d}.{layout.suffix}")
        if layout.suffix == "parquet":
            info = out.store.write_file(path, lambda f, data=data: pq.write_table(data, f, compression="zstd"))
        else:
            info = out.store.write_bytes(path, _jsonl(data))
        written[layout.name] = {"file": posixpath.relpath(path, out.path), "rows": count, **_checksum(info)}
    marker = {"shard": shard, "files": written}
    out.store.write_bytes(done_marker(out, shard), json.dumps(marker, indent=1).encode())
    return marker


def shard_done(out: Dataset, shard: int) -> dict[str, Any] | None:
    """The done marker of a shard whose files are all written, else None."""
    if not out.store.exists(done_marker(out, shard)):
        return None
    return json.loads(out.store.read_bytes(done_marker(out, shard)))


def done_marker(out: Dataset, shard: int) -> str:
    """The file that says shard ``shard``'s export files are all written (and lists them)."""
    return posixpath.join(out.path, DONE, f"{shard:05d}.json")


def _checksum(info: Written) -> dict[str, Any]:
    return {"bytes": info.bytes, "sha256": info.sha256}


def publish(out: Dataset, relative: str, write: Callable[[Any], object]) -> str:
    """Write one whole-folder file atomically and record its size and checksum (taken while writing)."""
    path = posixpath.join(out.path, relative)
    record = {"file": relative, **_checksum(out.store.write_file(path, write))}
    out.store.write_bytes(posixpath.join(out.path, RECORDS, f"{relative}.json"), json.dumps(record).encode())
    return out.store.uri(path)


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
        name: merged_name(name) if layout.suffix == "jsonl" else f"{layout.prefix}-*.{layout.suffix}"
        for name, layout in LAYOUTS.items()
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

        publish(out, merged_name(name), write)
    return out.store.uri(path)


def save_dataset_dict(out: Dataset, hub_configs: Mapping[str, str], force: bool = False) -> str:
    """Load the kept (``train``) and rejected Parquet files with ``datasets``; save them as one DatasetDict.

    ``save_to_disk`` writes its index first, so a marker written after it says the copy is whole and a
    rerun of the same export skips it. The marker lists the files with their sizes and checksums:
    ``datasets`` writes them, so they are read back once here.
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
    files = []
    for path in sorted(out.store.sizes(posixpath.join(target, "**"))):
        data = out.store.read_bytes(path)
        files.append({"file": posixpath.relpath(path, out.path), "bytes": len(data), "sha256": _sha256(data)})
    out.store.write_bytes(marker, json.dumps({"files": files}, indent=1).encode())
    return out.store.uri(target)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
        ignore_patterns=[f"{HF_DATASET}/**", f"{DONE}/**", MANIFEST, *jsonl_parts()],
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
) -> card.Card:
    """Write ``README.md`` and ``length_histogram.png`` into the export folder; returns the card and its UI page.

    The card is titled by the export's ``pretty_name``, else by the build's ``name``.
    """
    table = kept.read(columns=["completion_tokens", "teacher", "prompt_version"])
    tokens = table["completion_tokens"].drop_null().to_numpy()
    histogram = card.length_histogram(tokens, export_config.histogram_bins)
    publish(out, HISTOGRAM, lambda f: f.write(histogram))
    lengths = {"samples": float(tokens.size)}
    if tokens.size:
        lengths |= {
            "mean": float(tokens.mean()),
            "median": float(np.median(tokens)),
            "p95": float(np.percentile(tokens, 95)),
            "max": float(tokens.max()),
        }
    name = (build_info or {}).get("name") or f"tracemill dataset {fingerprints.get('kept', '')}".strip()
    details: dict[str, Any] = dict(
        title=export_config.pretty_name or name,
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
    )
    text = card.render(**details, histogram=HISTOGRAM)
    publish(out, CARD, lambda f: f.write(text.encode()))
    return card.Card(text, card.render(**details, histogram=card.data_uri(histogram), front_matter=False))


def write_manifest(out: Dataset) -> dict[str, Any]:
    """Write ``_manifest.json``: every file of the export with its size and checksum, from the done markers.

    Each entry names its ``done`` file: removing a damaged file and that one makes the next build
    write the file again (a shard's files, the saved DatasetDict, or the file itself).
    """
    files: list[dict[str, Any]] = []
    for path in sorted(out.store.sizes(posixpath.join(out.path, DONE, "*.json"))):
        done = posixpath.relpath(path, out.path)
        for info in json.loads(out.store.read_bytes(path))["files"].values():
            files.append({**_known(info), "done": done})
    for path in sorted(out.store.sizes(posixpath.join(out.path, RECORDS, "*.json"))):
        files.append({**_known(json.loads(out.store.read_bytes(path))), "done": posixpath.relpath(path, out.path)})
    hf_marker = posixpath.join(out.path, HF_DATASET, DONE)
    try:
        saved = json.loads(out.store.read_bytes(hf_marker) or b"{}").get("files", [])
    except ShardNotFoundError:
        saved = []  # no DatasetDict in this export
    files += [{**_known(info), "done": posixpath.relpath(hf_marker, out.path)} for info in saved]
    manifest = {
        "stage": STAGE,
        "fingerprint": out.fingerprint,
        "files": files,
        "created_at": datetime.now(UTC).isoformat(),
    }
    out.store.write_bytes(posixpath.join(out.path, MANIFEST), json.dumps(manifest, indent=1).encode())
    return manifest


def _known(info: Mapping[str, Any]) -> dict[str, Any]:
    """A file's name, and its size and checksum where they were recorded (markers of older exports lack them)."""
    return {k: info[k] for k in ("file", "bytes", "sha256") if k in info}
