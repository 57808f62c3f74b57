"""Datasets of Parquet shards on any fsspec URL.

A dataset lives at ``{store}/{stage}/{fingerprint}/part-{shard:05d}.parquet`` with a
``_manifest.json`` written last. A shard is written atomically (temporary name then rename on a
local disk, one completed upload on object storage), so a shard that exists is complete, and a
dataset whose manifest exists is complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, BinaryIO

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel

from tracemill import __version__
from tracemill.records import SCHEMAS, check_schema

MANIFEST = "_manifest.json"


class StoreError(Exception):
    """A store failure; ``path`` names the file or location involved."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


class ShardNotFoundError(StoreError):
    """A shard or manifest that should exist does not."""


class CorruptShardError(StoreError):
    """A file that exists but is not readable Parquet or JSON."""


class SchemaMismatchError(StoreError):
    """A table whose schema is not the declared schema of its record type."""


class StoreUnavailableError(StoreError):
    """Storage that cannot be reached or accessed (network, credentials, permissions)."""


def fingerprint(
    stage: str, config: BaseModel | Mapping[str, Any], code_version: str, inputs: Sequence[str] = ()
) -> str:
    """Content hash of what determines a stage's output: its name, config, code and inputs."""
    if isinstance(config, BaseModel):
        config = config.model_dump(mode="json")
    payload = json.dumps(
        {"stage": stage, "config": config, "code_version": code_version, "inputs": list(inputs)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def fingerprint_of(uri: str) -> str:
    """The fingerprint of a dataset location (``…/{stage}/{fingerprint}``); a bare fingerprint is itself."""
    return posixpath.basename(uri.rstrip("/"))


@dataclass(frozen=True)
class Store:
    """A root URL plus fsspec options; credentials in ``storage_options`` never show in ``repr``."""

    url: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def _fs_and_root(self) -> tuple[fsspec.AbstractFileSystem, str]:
        fs, root = fsspec.core.url_to_fs(self.url, **dict(self.storage_options))
        return fs, root.rstrip("/")

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return self._fs_and_root[0]

    @property
    def root(self) -> str:
        return self._fs_and_root[1]

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def uri(self, path: str) -> str:
        """A path inside this store as a URL users can open (``s3://…`` or a local path)."""
        return self.fs.unstrip_protocol(path) if not self.is_local else path

    def dataset(self, stage: str, fingerprint: str, record: str) -> Dataset:
        if record not in SCHEMAS:
            raise ValueError(f"unknown record type {record!r}; expected one of {sorted(SCHEMAS)}")
        return Dataset(self, stage, fingerprint, record)

    def fingerprints(self, stage: str) -> list[str]:
        """Fingerprints of the complete datasets of a stage (those with a manifest)."""
        pattern = posixpath.join(self.root, stage, "*", MANIFEST)
        with _guard(self.uri(pattern)):
            self.fs.invalidate_cache()
            found = self.fs.glob(pattern)
        return sorted(posixpath.basename(posixpath.dirname(p)) for p in found)

    def write_file(self, path: str, write: Callable[[BinaryIO], object]) -> int:
        """Write a whole file atomically through ``write(file)``: readers see nothing or all of it.

        Locally: a temporary name in the same folder, fsync, then rename. Elsewhere: one upload,
        which object stores make visible only once complete. Returns the size in bytes.
        """
        with _guard(self.uri(path)):
            if not self.is_local:
                buffer = io.BytesIO()
                write(buffer)
                self.fs.pipe_file(path, buffer.getvalue())
                self.fs.invalidate_cache(posixpath.dirname(path))
                return buffer.tell()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.{uuid.uuid4().hex}")
            try:
                with open(tmp, "wb") as f:
                    write(f)
                    f.flush()
                    os.fsync(f.fileno())
                    size = f.tell()
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            return size

    def write_bytes(self, path: str, data: bytes) -> None:
        self.write_file(path, lambda f: f.write(data))

    def open_parquet(self, path: str) -> pq.ParquetFile:
        """Open a Parquet file: straight from disk locally, from one download elsewhere."""
        source = path if self.is_local else pa.BufferReader(self.read_bytes(path))
        with _guard(self.uri(path)):
            try:
                return pq.ParquetFile(source)
            except (pa.ArrowInvalid, pa.ArrowException) as exc:
                raise CorruptShardError(self.uri(path), f"not a readable Parquet file ({exc})") from exc

    def read_bytes(self, path: str) -> bytes:
        with _guard(self.uri(path)):
            return self.fs.cat_file(path)

    def delete(self, path: str) -> None:
        """Remove a file or folder; a missing one is not an error."""
        with _guard(self.uri(path)):
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
            self.fs.invalidate_cache(posixpath.dirname(path))

    def exists(self, path: str) -> bool:
        with _guard(self.uri(path)):
            self.fs.invalidate_cache(posixpath.dirname(path))
            return self.fs.exists(path)


@dataclass(frozen=True)
class ShardInfo:
    index: int
    path: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class Dataset:
    """One stage output: numbered Parquet shards of one record type, then a manifest."""

    store: Store
    stage: str
    fingerprint: str
    record: str

    @property
    def path(self) -> str:
        return posixpath.join(self.store.root, self.stage, self.fingerprint)

    @property
    def uri(self) -> str:
        return self.store.uri(self.path)

    @property
    def schema(self) -> pa.Schema:
        return SCHEMAS[self.record]

    def checkpoints(self, shard: int, tag: str) -> Dataset:
        """A scratch dataset beside this one for the parts of a shard still being written."""
        return Dataset(
            self.store, f"{self.stage}/{self.fingerprint}/_checkpoints", f"part-{shard:05d}-{tag}", self.record
        )

    def delete(self) -> None:
        self.store.delete(self.path)

    def shard_path(self, index: int) -> str:
        if index < 0:
            raise ValueError(f"shard index must be >= 0, got {index}")
        return posixpath.join(self.path, f"part-{index:05d}.parquet")

    def has_shard(self, index: int) -> bool:
        return self.store.exists(self.shard_path(index))

    def shard_indices(self) -> list[int]:
        """Indices of the shards present, complete ones only (partial writes are never visible)."""
        pattern = posixpath.join(self.path, "part-*.parquet")
        with _guard(self.store.uri(pattern)):
            self.store.fs.invalidate_cache(self.path)
            found = self.store.fs.glob(pattern)
        return sorted(int(posixpath.basename(p)[5:10]) for p in found)

    def write_shard(self, index: int, table: pa.Table) -> ShardInfo:
        path = self.shard_path(index)
        problem = check_schema(table.schema, self.schema)
        if problem:
            raise SchemaMismatchError(self.store.uri(path), f"not a {self.record} table: {problem}")
        table = table.replace_schema_metadata(None)
        size = self.store.write_file(path, lambda f: pq.write_table(table, f, compression="zstd"))
        return ShardInfo(index, self.store.uri(path), table.num_rows, size)

    def _open_shard(self, index: int) -> pq.ParquetFile:
        path = self.shard_path(index)
        parquet = self.store.open_parquet(path)
        problem = check_schema(parquet.schema_arrow, self.schema)
        if problem:
            raise SchemaMismatchError(self.store.uri(path), f"not a {self.record} shard: {problem}")
        return parquet

    def read_shard(self, index: int, columns: Sequence[str] | None = None) -> pa.Table:
        parquet = self._open_shard(index)
        try:
            return parquet.read(columns=list(columns) if columns else None)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CorruptShardError(self.store.uri(self.shard_path(index)), f"unreadable ({exc})") from exc

    def iter_batches(self, batch_size: int = 65_536, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream the committed dataset shard by shard, in shard order."""
        for info in self.manifest()["shards"]:
            parquet = self._open_shard(info["index"])
            try:
                yield from parquet.iter_batches(batch_size=batch_size, columns=list(columns) if columns else None)
            except (pa.ArrowInvalid, OSError) as exc:
                path = self.store.uri(self.shard_path(info["index"]))
                raise CorruptShardError(path, f"unreadable ({exc})") from exc

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The whole committed dataset as one table."""
        tables = [self.read_shard(info["index"], columns) for info in self.manifest()["shards"]]
        if not tables:
            return self.schema.empty_table() if not columns else self.schema.empty_table().select(list(columns))
        return pa.concat_tables(tables)

    @property
    def manifest_path(self) -> str:
        return posixpath.join(self.path, MANIFEST)

    def is_complete(self) -> bool:
        return self.store.exists(self.manifest_path)

    def commit(
        self,
        num_shards: int,
        *,
        config: BaseModel | Mapping[str, Any],
        code_version: str,
        inputs: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Write the manifest, last: every shard ``0..num_shards-1`` must exist and be valid."""
        shards = []
        for index in range(num_shards):
            parquet = self._open_shard(index)
            shards.append(
                {
                    "index": index,
                    "file": posixpath.basename(self.shard_path(index)),
                    "rows": parquet.metadata.num_rows,
                }
            )
        if isinstance(config, BaseModel):
            config = config.model_dump(mode="json")
        manifest = {
            "stage": self.stage,
            "fingerprint": self.fingerprint,
            "record": self.record,
            "schema": self.schema.to_string(show_schema_metadata=False),
            "rows": sum(s["rows"] for s in shards),
            "shards": shards,
            "config": config,
            "code_version": code_version,
            "inputs": list(inputs),
            "tracemill_version": __version__,
            "created_at": datetime.now(UTC).isoformat(),
        }
        self.store.write_bytes(self.manifest_path, json.dumps(manifest, indent=2, default=str).encode())
        return manifest

    def manifest(self) -> dict[str, Any]:
        data = self.store.read_bytes(self.manifest_path)
        try:
            manifest = json.loads(data)
            manifest["shards"]  # noqa: B018 - a manifest without shards is corrupt
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptShardError(self.store.uri(self.manifest_path), f"not a valid manifest ({exc})") from exc
        return manifest


@contextmanager
def _guard(uri: str) -> Iterator[None]:
    """Turn storage exceptions into :class:`StoreError` subclasses that name ``uri``."""
    try:
        yield
    except StoreError:
        raise
    except FileNotFoundError as exc:
        raise ShardNotFoundError(uri, "does not exist") from exc
    except Exception as exc:
        if isinstance(exc, (OSError, ConnectionError, TimeoutError)) or _is_client_error(exc):
            raise StoreUnavailableError(uri, f"storage unavailable: {type(exc).__name__}: {exc}") from exc
        raise


def _is_client_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("botocore", "aiobotocore", "aiohttp", "s3fs"))
