"""Datasets of Parquet shards on any fsspec URL.

A dataset lives at ``{store}/{stage}/{fingerprint}/part-{shard:05d}.parquet`` with a
``_manifest.json`` written last. A shard is written atomically (temporary name then rename on a
local disk, one completed upload on object storage), so a shard that exists is complete, and a
dataset whose manifest exists is complete.

Each shard's size and SHA-256 are taken while it is written and kept beside it
(``_shards/part-{shard:05d}.json``); the manifest copies them, so a damaged or missing shard is
found by its size (one listing or stat) or its checksum (``tracemill verify``), never by trust.
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
from tracemill.config import identity_of
from tracemill.records import SCHEMAS, check_schema

MANIFEST = "_manifest.json"
ENTRIES = "_shards"
ENTRY_FIELDS = {"index": int, "file": str, "rows": int, "bytes": int, "sha256": str}
# What a reader of a damaged shard can do: a plain rerun recomputes a missing or truncated shard, this finds the rest.
REPAIR_HINT = "tracemill verify CONFIG --repair recomputes damaged shards"


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
    """Content hash of what determines a stage's output: its name, config (a config model by its derived
    identity, see ``tracemill.config.identity_of``), code and inputs."""
    if isinstance(config, BaseModel):
        config = identity_of(config)
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
class Written:
    """What a write produced: the file's size and SHA-256, taken from the bytes as they were written."""

    bytes: int
    sha256: str


class _Hashing(io.RawIOBase):
    """A write-only file that passes every write on to ``raw`` and hashes it on the way."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.raw.write(view)
        self.sha256.update(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def written(self) -> Written:
        return Written(self.size, self.sha256.hexdigest())


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

    def write_file(self, path: str, write: Callable[[BinaryIO], object]) -> Written:
        """Write a whole file atomically through ``write(file)``: readers see nothing or all of it.

        Locally: a temporary name in the same folder, fsync, then rename. Elsewhere: one upload,
        which object stores make visible only once complete. Returns the size and checksum of what
        was written, hashed on the way (no read back).
        """
        with _guard(self.uri(path)):
            if not self.is_local:
                buffer = io.BytesIO()
                hashing = _Hashing(buffer)
                write(hashing)  # type: ignore[arg-type]
                self.fs.pipe_file(path, buffer.getvalue())
                self.fs.invalidate_cache(posixpath.dirname(path))
                return hashing.written()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.{uuid.uuid4().hex}")
            try:
                with open(tmp, "wb") as f:
                    hashing = _Hashing(f)
                    write(hashing)  # type: ignore[arg-type]
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            return hashing.written()

    def write_bytes(self, path: str, data: bytes) -> Written:
        return self.write_file(path, lambda f: f.write(data))

    def open_parquet(self, path: str) -> pq.ParquetFile:
        """Open a Parquet file: straight from disk locally, from one download elsewhere."""
        source = path if self.is_local else pa.BufferReader(self.read_bytes(path))
        with _guard(self.uri(path)):
            try:
                return pq.ParquetFile(source)
            except (pa.ArrowInvalid, pa.ArrowException) as exc:
                raise CorruptShardError(self.uri(path), f"not a readable Parquet file ({exc}); {REPAIR_HINT}") from exc

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

    def size(self, path: str) -> int | None:
        """The size of a file in bytes, None when it is not there: one stat (a HEAD on object storage)."""
        with _guard(self.uri(path)):
            self.fs.invalidate_cache(posixpath.dirname(path))
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return None
            return int(info["size"]) if info.get("type") != "directory" else None

    def sizes(self, pattern: str) -> dict[str, int]:
        """Path → size of the files matching a glob pattern: one listing."""
        with _guard(self.uri(pattern)):
            self.fs.invalidate_cache(posixpath.dirname(pattern))
            found = self.fs.glob(pattern, detail=True)
        return {path: int(info["size"]) for path, info in found.items() if info.get("type") != "directory"}


@dataclass(frozen=True)
class ShardInfo:
    index: int
    path: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Dataset:
    """One stage output: numbered Parquet shards of one record type, then a manifest."""

    store: Store
    stage: str
    fingerprint: str
    record: str
    # Checkpoint parts: never committed, so written without entries (the sampler writes them often).
    scratch: bool = False

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
            self.store, f"{self.stage}/{self.fingerprint}/_checkpoints", f"part-{shard:05d}-{tag}", self.record, True
        )

    def delete(self) -> None:
        self.store.delete(self.path)

    def shard_path(self, index: int) -> str:
        if index < 0:
            raise ValueError(f"shard index must be >= 0, got {index}")
        return posixpath.join(self.path, f"part-{index:05d}.parquet")

    def entry_path(self, index: int) -> str:
        """Where shard ``index``'s size and checksum are kept, written right after the shard."""
        return posixpath.join(self.path, ENTRIES, f"part-{index:05d}.json")

    def has_shard(self, index: int) -> bool:
        """Whether shard ``index`` is there and whole: the size recorded when it was written (a stat, a small read).

        A missing, truncated or overwritten shard is to compute, not an error. A shard written before
        sizes were recorded counts as whole when its Parquet footer reads.
        """
        size = self.store.size(self.shard_path(index))
        if size is None:
            return False
        entry = self._entry(index)
        if entry is not None:
            return entry["bytes"] == size
        try:
            self._open_shard(index)
        except CorruptShardError:
            return False
        return True

    def shard_sizes(self) -> dict[int, int]:
        """Index → size in bytes of the shards present (partial writes are never visible): one listing."""
        found = self.store.sizes(posixpath.join(self.path, "part-*.parquet"))
        return {int(posixpath.basename(p)[5:10]): size for p, size in found.items()}

    def shard_indices(self) -> list[int]:
        """Indices of the shards present, complete ones only (partial writes are never visible)."""
        return sorted(self.shard_sizes())

    def recorded_sizes(self) -> dict[int, int]:
        """Index → size the manifest records per shard; empty without a (readable) manifest or with an old one."""
        try:
            shards = self.manifest()["shards"]
        except (ShardNotFoundError, CorruptShardError):
            return {}
        return {s["index"]: s["bytes"] for s in shards if isinstance(s.get("bytes"), int)}

    def intact_shards(self) -> list[int]:
        """Shards present with the size the manifest records (any size where it records none): one listing."""
        recorded = self.recorded_sizes()
        return sorted(i for i, size in self.shard_sizes().items() if recorded.get(i, size) == size)

    def is_current(self) -> bool:
        """Whether the manifest exists and every shard it lists is there with the size it records.

        A stage commits again when not: after a damaged shard was recomputed, the manifest must
        describe the new one.
        """
        try:
            shards = self.manifest()["shards"]
        except (ShardNotFoundError, CorruptShardError):
            return False
        present = self.shard_sizes()
        return all(s["index"] in present and s.get("bytes", present[s["index"]]) == present[s["index"]] for s in shards)

    def write_shard(self, index: int, table: pa.Table) -> ShardInfo:
        """Write shard ``index`` atomically, then its entry (size, checksum, rows) beside it.

        Writing into a committed dataset (a recomputed shard) withdraws its manifest, which
        described the shard replaced; the stage commits again.
        """
        path = self.shard_path(index)
        problem = check_schema(table.schema, self.schema)
        if problem:
            raise SchemaMismatchError(self.store.uri(path), f"not a {self.record} table: {problem}")
        table = table.replace_schema_metadata(None)
        written = self.store.write_file(path, lambda f: pq.write_table(table, f, compression="zstd"))
        if not self.scratch:
            self.store.delete(self.manifest_path)
            self._write_entry(index, table.num_rows, written)
        return ShardInfo(index, self.store.uri(path), table.num_rows, written.bytes, written.sha256)

    def _write_entry(self, index: int, rows: int, written: Written) -> dict[str, Any]:
        entry = {
            "index": index,
            "file": posixpath.basename(self.shard_path(index)),
            "rows": rows,
            "bytes": written.bytes,
            "sha256": written.sha256,
        }
        self.store.write_bytes(self.entry_path(index), json.dumps(entry).encode())
        return entry

    def _entry(self, index: int) -> dict[str, Any] | None:
        """Shard ``index``'s entry, None when it has none (written by an older version) or it does not parse."""
        try:
            entry = json.loads(self.store.read_bytes(self.entry_path(index)))
        except (ShardNotFoundError, ValueError):
            return None
        valid = isinstance(entry, dict) and all(isinstance(entry.get(k), t) for k, t in ENTRY_FIELDS.items())
        return entry if valid else None

    def _measure(self, index: int) -> dict[str, Any]:
        """Read a shard that has no entry matching it once, check it, and write its entry."""
        path = self.shard_path(index)
        data = self.store.read_bytes(path)
        try:
            parquet = pq.ParquetFile(pa.BufferReader(data))
        except (pa.ArrowInvalid, pa.ArrowException) as exc:
            raise CorruptShardError(self.store.uri(path), f"not a readable Parquet file ({exc})") from exc
        problem = check_schema(parquet.schema_arrow, self.schema)
        if problem:
            raise SchemaMismatchError(self.store.uri(path), f"not a {self.record} shard: {problem}")
        written = Written(len(data), hashlib.sha256(data).hexdigest())
        return self._write_entry(index, parquet.metadata.num_rows, written)

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
            raise CorruptShardError(
                self.store.uri(self.shard_path(index)), f"unreadable ({exc}); {REPAIR_HINT}"
            ) from exc

    def iter_batches(self, batch_size: int = 65_536, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream the committed dataset shard by shard, in shard order."""
        for info in self.manifest()["shards"]:
            parquet = self._open_shard(info["index"])
            try:
                yield from parquet.iter_batches(batch_size=batch_size, columns=list(columns) if columns else None)
            except (pa.ArrowInvalid, OSError) as exc:
                path = self.store.uri(self.shard_path(info["index"]))
                raise CorruptShardError(path, f"unreadable ({exc}); {REPAIR_HINT}") from exc

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
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write the manifest, last: every shard ``0..num_shards-1`` must exist and be valid.

        ``metadata`` is what the stage records beside its rows (the problems stage: rows its source
        skipped or repaired, per reason); it is not part of the fingerprint.

        Each shard's rows, size and checksum come from its entry, taken while it was written; a
        shard whose entry is missing or of another size is read once instead. One that does not
        read is removed, so that the next run computes it again.
        """
        present = self.shard_sizes()
        shards = []
        for index in range(num_shards):
            if index not in present:
                raise ShardNotFoundError(self.store.uri(self.shard_path(index)), "does not exist")
            entry = self._entry(index)
            if entry is None or entry["bytes"] != present[index]:
                try:
                    entry = self._measure(index)
                except CorruptShardError as exc:
                    self.store.delete(self.shard_path(index))
                    self.store.delete(self.entry_path(index))
                    raise CorruptShardError(
                        exc.path, "not a readable Parquet file; removed, so the next run computes it again"
                    ) from exc
            shards.append({k: entry[k] for k in ("index", "file", "rows", "bytes", "sha256")})
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
            **({"metadata": dict(metadata)} if metadata else {}),
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
