"""The export stage's configuration: which layouts to write and how to describe the dataset."""

from __future__ import annotations

from pydantic import Field

from tracemill.config import _Model


class ExportConfig(_Model):
    """Which exports to write from the kept and rejected datasets, and how to describe them.

    Each layout of ``tracemill.export.layouts`` has its toggle here; every field is part of the export's
    fingerprint but those that do not change the exported files (``identity_exclude``).
    """

    # The DatasetDict is written beside the files, once, and marked done; the card's wording, the histogram's
    # bars and where the folder goes or is pushed do not change the layouts' files.
    identity_exclude = frozenset(
        {"hf_dataset", "output_url", "hub_target", "pretty_name", "license", "task_categories", "histogram_bins"}
    )

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
