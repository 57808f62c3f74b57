"""The Hub-target block: where an export is pushed on the Hugging Face Hub, with the token as a secret."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class HubTarget(Block):
    """A Hugging Face Hub dataset repository that exports are pushed to."""

    _block_type_name = "tracemill hub target"
    _block_type_slug = "tracemill-hub-target"
    _description = "Repository id, visibility and write token of a Hugging Face Hub dataset repo."

    repo_id: str = Field(
        ...,
        min_length=3,
        max_length=200,
        pattern=r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$",
        description="Dataset repository, 'owner/name'.",
        examples=["my-org/clevr-r1-traces"],
    )
    private: bool = Field(True, description="Create the repository private (an existing one keeps its visibility).")
    token: SecretStr | None = Field(None, description="Hub token with write access; empty: the machine's login.")
