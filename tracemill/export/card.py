"""The dataset card (the Hub's README.md): YAML header, what the data is, how it was built, its numbers.

Everything on the card passes through :func:`redact` first: a card is public, so any field that
looks like a credential is replaced, whatever config it came from.

The same card is shown in Prefect's UI as an artifact, rendered for it: without the YAML header
(its markdown has no front matter and draws the header as headings) and with the histogram inlined
as a data URI (the UI cannot read the export folder, so a relative image link is broken there).
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import yaml
from PIL import Image, ImageDraw
from pydantic import BaseModel, SecretStr

from tracemill.filtering.funnel import ALL, PASS_BINS, Funnel, source_rows_table, stage_table, summary_table

REDACTED = "<redacted>"
_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|access_?key|credential|private_?key)", re.I)
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
_SIZES += [(10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]


def redact(value: Any) -> Any:
    """A copy of ``value`` (models, dicts, lists) with secrets and credential-like keys replaced."""
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")  # SecretStr fields dump masked
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "") else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def size_category(rows: int) -> str:
    return next((label for bound, label in _SIZES if rows < bound), "n>1B")


def length_histogram(tokens: Sequence[int] | np.ndarray, bins: int = 20, width: int = 640, height: int = 320) -> bytes:
    """A PNG bar chart of response lengths in tokens, drawn with Pillow."""
    values = np.asarray(tokens, dtype=np.float64)
    counts, edges = np.histogram(values, bins=bins) if values.size else (np.zeros(bins, int), np.arange(bins + 1))
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 50, width - 10, 24, height - 30
    draw.line([(left, bottom), (right, bottom)], fill="black")
    draw.line([(left, top), (left, bottom)], fill="black")
    peak = max(int(counts.max()), 1)
    step = (right - left) / len(counts)
    for i, count in enumerate(counts):
        x0 = left + i * step + 1
        y0 = bottom - (bottom - top) * count / peak
        if count:
            draw.rectangle([x0, y0, x0 + step - 2, bottom - 1], fill=(70, 110, 180))
    draw.text((left, 4), f"completion tokens (n={values.size}, peak {peak})", fill="black")
    draw.text((left, bottom + 6), f"{edges[0]:.0f}", fill="black")
    draw.text((right - 40, bottom + 6), f"{edges[-1]:.0f}", fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, for an image that must travel inside the markdown itself."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class Card(NamedTuple):
    """One card, two renderings."""

    text: str  # README.md for the Hub: YAML header, histogram linked as the file beside it
    page: str  # the Prefect artifact: no YAML header, histogram inlined


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(none)\n"
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(str(row[n]) for n in names) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render(
    *,
    title: str,
    license: str,
    task_categories: Sequence[str],
    hub_configs: Mapping[str, str],
    rows: int,
    funnel: Funnel,
    fingerprints: Mapping[str, str],
    teachers: Sequence[str],
    prompt_versions: Sequence[str],
    filter_config: Any,
    export_config: Any,
    build_info: Mapping[str, Any] | None,
    lengths: Mapping[str, float],
    histogram: str | None,
    front_matter: bool = True,
) -> str:
    """The card's markdown: YAML header, description, build config, funnel, statistics, fingerprints.

    ``histogram`` is the image's link (a file name or a data URI); ``front_matter=False`` leaves the
    YAML header out.
    """
    header = {
        "license": license,
        "task_categories": list(task_categories),
        "size_categories": [size_category(rows)],
        "pretty_name": title,
        "tags": ["reasoning", "synthetic", "tracemill"],
        "configs": [
            {
                "config_name": name,
                **({"default": True} if name == "default" else {}),
                "data_files": [{"split": "train", "path": path}],
            }
            for name, path in hub_configs.items()
            if path.endswith(".parquet")  # `datasets` infers one file format per repo: jsonl files stay files
        ],
    }
    total = funnel.get(ALL)
    info = redact(dict(build_info or {}))
    source_rows = source_rows_table(info.pop("source_rows", None))
    verifiers = info.pop("verifiers", None)  # the scores stage's table (tracemill.scoring.worth)
    parts = [
        f"# {title}\n",
        "Reasoning traces sampled from a teacher model, with the teacher's answers extracted and judged against "
        "the gold answer (relabelled by majority where the teacher never agreed with it), then filtered. Built "
        "with [tracemill](https://github.com/tracemill/tracemill): every dropped sample is in the `rejected` config "
        "with its reason, every kept one carries its problem, teacher, prompt version and seed.\n",
        "## Configs and files\n",
        "Parquet layouts are configs (`load_dataset(repo, name)`); the jsonl files load with "
        '`load_dataset("json", data_files=...)`.\n\n',
        markdown_table([{"name": name, "files": f"`{path}`"} for name, path in hub_configs.items()]),
        "* `default`: one row per kept sample (problem fields, the rendered `prompt`, `reasoning`, `response`, "
        "`extracted`, `correct`, `decided_by`, token counts); `rejected`: the dropped samples, with `reason`.\n"
        "* `sft_correct` / `sft_all`: `{prompt, response}` / plus `ground_truth`, `predicted`, `is_correct`; "
        "response = `<think>\\n{reasoning}\\n</think>\\n\\n{response}`.\n"
        "* `messages`: chat `messages` (system, user, assistant).\n"
        "* `r1v`: `image`, `problem`, `thinking`, `solution` (`<answer> X </answer>`).\n"
        "* `weaver`: one row per problem: `instruction`, `samples`, `extracted_answers`, `answer_correct`, `answer`.\n",
        "## Teacher and sampling\n",
        f"* teacher(s): {', '.join(f'`{t}`' for t in teachers) or '(none kept)'}\n"
        f"* prompt version(s): {', '.join(f'`{p}`' for p in prompt_versions) or '(none kept)'}\n",
    ]
    sampling = info.get("sampling") if isinstance(info.get("sampling"), Mapping) else None
    if sampling:
        parts.append(markdown_table([{"parameter": k, "value": v} for k, v in sampling.items() if k != "teacher"]))
    parts += [
        "## Funnel\n",
        markdown_table(summary_table(funnel)),
        "\nSamples through the filters (a sample is dropped by the first filter that objects):\n\n",
        markdown_table([r for r in stage_table(funnel) if r["source"] == ALL]),
    ]
    if source_rows:
        parts += [
            "\nRows of the source data left out (skipped) or fixed by a stated rule (repaired) before sampling:\n\n",
            markdown_table(source_rows),
        ]
    if verifiers:
        parts += [
            "## What the verifiers are worth\n",
            "On problems with a gold answer and samples with a verdict: AUROC of each verifier's score against "
            "`correct`, accuracy of the sample it scores best (best-of-n) beside majority vote and the first "
            "sample, and how often its pick is correct where some sample is.\n\n",
            markdown_table(verifiers),
        ]
    parts += [
        "## Pass rate and relabelling\n",
        "Problems by the share of their samples judged correct (after relabelling):\n\n",
        markdown_table([{"source": s, **{b: c.pass_rates.get(b, 0) for b in PASS_BINS}} for s, c in funnel.items()]),
    ]
    if total is not None and total.problems:
        parts.append(
            f"\n{total.relabeled} of {total.problems} problems ({100 * total.relabeled / total.problems:.1f}%) "
            "had their gold answer replaced by the teacher's majority answer because no sample matched it. "
            "A verified gold (exact by construction, such as CLEVR answers from the program executor) is never "
            "replaced. Per source:\n\n"
        )
        parts.append(
            markdown_table(
                [
                    {"source": s, "problems": c.problems, "verified_golds": c.verified, "relabeled": c.relabeled}
                    for s, c in funnel.items()
                    if s != ALL
                ]
            )
        )
    parts += ["## Response lengths\n", markdown_table([{k: round(v, 1) for k, v in lengths.items()}])]
    if histogram:
        parts.append(f"\n![Response length histogram]({histogram})\n")
    parts += [
        "## Build configuration\n",
        "Secrets are removed.\n\n```yaml\n"
        + yaml.safe_dump({"filters": redact(filter_config), "export": redact(export_config), **info}, sort_keys=False)
        + "```\n",
        "## Fingerprints\n",
        markdown_table([{"dataset": k, "fingerprint": f"`{v}`"} for k, v in fingerprints.items()]),
    ]
    if front_matter:
        parts.insert(0, "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n")
    return "\n".join(parts)
