"""Prefect result storage inside a tracemill store, so every worker that reaches the store reads the records.

Prefect needs result storage saved server-side; this block refers to the ObjectStore block by
reference, so the credentials stay in that block's secret fields and are never copied.
"""

from __future__ import annotations

import hashlib
import posixpath
from pathlib import Path

import anyio.to_thread
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem
from pydantic import Field

from blocks.object_store import ObjectStore
from tracemill.config import StoreConfig
from tracemill.store import Store


class StoreResults(WritableFileSystem):
    """Task result records under a prefix of a tracemill store."""

    _block_type_name = "tracemill store results"
    _block_type_slug = "tracemill-store-results"

    url: str = Field(..., description="Folder of the result records, e.g. s3://bucket/prefix/_prefect.")
    object_store: ObjectStore | None = Field(None, description="Endpoint and credentials of the store.")

    def _store(self) -> Store:
        return Store(self.url, self.object_store.storage_options() if self.object_store else {})

    def _read(self, path: str) -> bytes:
        store = self._store()
        return store.read_bytes(posixpath.join(store.root, path))

    def _write(self, path: str, content: bytes) -> str:
        store = self._store()
        full = posixpath.join(store.root, path)
        store.write_bytes(full, content)
        return store.uri(full)

    async def aread_path(self, path: str) -> bytes:
        return await anyio.to_thread.run_sync(self._read, path)

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        return self._read(path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await anyio.to_thread.run_sync(self._write, path, content)

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:
        return self._write(path, content)


def result_storage(config: StoreConfig) -> Path | StoreResults:
    """Where shard tasks keep their result records: ``{store}/_prefect``."""
    store = Store(config.url)
    if store.is_local and config.block is None:
        return Path(store.root) / "_prefect"
    block = StoreResults(
        url=f"{config.url.rstrip('/')}/_prefect",
        object_store=ObjectStore.load(config.block) if config.block else None,
    )
    name = "results-" + hashlib.sha256(f"{config.url}\x1f{config.block}".encode()).hexdigest()[:16]
    block.save(name, overwrite=True)
    return block
