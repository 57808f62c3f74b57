"""The teacher-endpoint block: an OpenAI-compatible API, its key as a secret, and its limits."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class TeacherEndpoint(Block):
    """An OpenAI-compatible endpoint a teacher is sampled from (vllm serve, SGLang, DeepSeek, Together…)."""

    _block_type_name = "tracemill teacher endpoint"
    _block_type_slug = "tracemill-teacher-endpoint"
    _description = "Base URL, model, API key and rate limits of an OpenAI-compatible teacher endpoint."

    base_url: str = Field(..., description="API base URL ending in /v1.", examples=["https://api.deepseek.com/v1"])
    model: str = Field(..., min_length=1, description="Model id the endpoint serves.", examples=["deepseek-reasoner"])
    api_key: SecretStr | None = Field(None, description="API key; empty for a local server without one.")
    max_concurrency: int = Field(16, ge=1, le=4096, description="Requests in flight at once.")
    requests_per_minute: float | None = Field(None, gt=0, description="Request rate limit; empty: none.")
    tokens_per_minute: float | None = Field(None, gt=0, description="Token rate limit (prompt + completion).")
