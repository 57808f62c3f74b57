"""The object-store block: endpoint and credentials for s3:// stores, secrets kept as SecretStr."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from tracemill.config import StoreConfig
from tracemill.store import Store


class ObjectStore(Block):
    """Connection to an S3-compatible object store (AWS S3, SeaweedFS, MinIO, R2)."""

    _block_type_name = "tracemill object store"
    _block_type_slug = "tracemill-object-store"
    _description = "Endpoint and credentials of an S3-compatible store that tracemill datasets live in."

    endpoint_url: str | None = Field(
        None,
        description="S3 endpoint, e.g. http://seaweedfs:8333; empty for AWS S3.",
        examples=["http://127.0.0.1:8333"],
    )
    access_key_id: SecretStr | None = Field(None, description="Access key id.")
    secret_access_key: SecretStr | None = Field(None, description="Secret access key.")
    region: str | None = Field(None, description="Region name, where the store needs one.")

    def storage_options(self) -> dict[str, Any]:
        """fsspec (s3fs) options; the only place the secrets are revealed."""
        options: dict[str, Any] = {}
        if self.access_key_id is not None:
            options["key"] = self.access_key_id.get_secret_value()
        if self.secret_access_key is not None:
            options["secret"] = self.secret_access_key.get_secret_value()
        client_kwargs = {}
        if self.endpoint_url:
            client_kwargs["endpoint_url"] = self.endpoint_url
        if self.region:
            client_kwargs["region_name"] = self.region
        if client_kwargs:
            options["client_kwargs"] = client_kwargs
        return options


def open_store(config: StoreConfig) -> Store:
    """The store a config names, with the credentials of its block if it has one."""
    if config.block is None:
        return Store(config.url)
    block = ObjectStore.load(config.block)
    return Store(config.url, block.storage_options())
