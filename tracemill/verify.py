"""Check a build's datasets and exports against their manifests, and remove what is damaged.

Manifests record each file's size and SHA-256, taken while it was written. A file that is not
there, not that size or not that checksum is damaged; removing it, with the file that says it
is done, makes the next build compute exactly that shard or file again.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tracemill.store import MANIFEST, CorruptShardError, Dataset, ShardNotFoundError, Store

OK, MISSING, CORRUPT = "ok", "missing", "corrupt"


@dataclass(frozen=True)
class Finding:
    """One file and what is wrong with it; ``remove`` is what a repair deletes (store paths)."""

    uri: str
    status: str
    detail: str = ""
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """The check of one dataset or export folder: a finding per damaged file, a count of sound ones."""

    name: str
    store: Store = field(repr=False)
    uri: str
    files: int
    damaged: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> str:
        statuses = {f.status for f in self.damaged}
        return CORRUPT if CORRUPT in statuses else MISSING if statuses else OK

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.damaged)


def check_dataset(name: str, dataset: Dataset) -> Report:
    """Every shard of the manifest: there, of the recorded size, of the recorded checksum (reads each shard).

    A manifest of an older version without sizes and checksums is checked by reading each shard as Parquet.
    """
    store = dataset.store
    try:
        manifest = dataset.manifest()
    except ShardNotFoundError:
        return _no_manifest(name, store, dataset.uri, dataset.manifest_path, "the stage has not finished")
    except CorruptShardError as exc:
        broken = Finding(store.uri(dataset.manifest_path), CORRUPT, str(exc), (dataset.manifest_path,))
        return Report(name, store, dataset.uri, 1, [broken])
    present = dataset.shard_sizes()
    damaged = []
    for shard in manifest["shards"]:
        index = shard["index"]
        path = dataset.shard_path(index)
        finding = _check(store, path, present.get(index), shard, (path, dataset.entry_path(index)))
        if finding is None and "sha256" not in shard:
            finding = _unreadable(store, path, (path, dataset.entry_path(index)))
        if finding is not None:
            damaged.append(finding)
    return Report(name, store, dataset.uri, len(manifest["shards"]), damaged)


def check_export(name: str, out: Dataset) -> Report:
    """Every file of the export's manifest: there, of the recorded size, of the recorded checksum."""
    store = out.store
    manifest_path = posixpath.join(out.path, MANIFEST)
    try:
        manifest = json.loads(store.read_bytes(manifest_path))
        files = manifest["files"]
    except ShardNotFoundError:
        return _no_manifest(name, store, out.uri, manifest_path, "the export has not finished")
    except (ValueError, KeyError, TypeError) as exc:
        broken = Finding(store.uri(manifest_path), CORRUPT, f"not a valid manifest ({exc})", (manifest_path,))
        return Report(name, store, out.uri, 1, [broken])
    present = store.sizes(posixpath.join(out.path, "**"))
    damaged = []
    for entry in files:
        path = posixpath.join(out.path, entry["file"])
        finding = _check(store, path, present.get(path), entry, (path, posixpath.join(out.path, entry["done"])))
        if finding is not None:
            damaged.append(finding)
    return Report(name, store, out.uri, len(files), damaged)


def repair(reports: Iterable[Report]) -> list[str]:
    """Delete every damaged file and what says it is done; returns their URIs. The next build recomputes them."""
    removed = []
    for report in reports:
        for path in dict.fromkeys(p for finding in report.damaged for p in finding.remove):
            report.store.delete(path)
            removed.append(report.store.uri(path))
    return removed


def table(reports: Sequence[Report]) -> str:
    """The reports as a text table, then one line per damaged file."""
    header = ("what", "status", "files", "ok", "missing", "corrupt", "location")
    rows = [
        (r.name, r.status, r.files, max(r.files - len(r.damaged), 0), r.count(MISSING), r.count(CORRUPT), r.uri)
        for r in reports
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=False)) + f"  {row[-1]}" for row in
             [header, *rows]]  # fmt: skip
    damaged = [f for r in reports for f in r.damaged]
    if damaged:
        lines += ["", "damaged:"] + [
            f"  {f.status:<8} {f.uri}" + (f"  ({f.detail})" if f.detail else "") for f in damaged
        ]
    return "\n".join(lines)


def _no_manifest(name: str, store: Store, uri: str, manifest: str, why: str) -> Report:
    """No manifest: nothing to check against; a build writes it (no file to remove)."""
    return Report(name, store, uri, 0, [Finding(store.uri(manifest), MISSING, f"no manifest: {why}")])


def _check(
    store: Store, path: str, size: int | None, recorded: Mapping[str, Any], remove: tuple[str, ...]
) -> Finding | None:
    """Size from the listing first (no read), then the checksum (one read) where one is recorded."""
    uri = store.uri(path)
    if size is None:
        return Finding(uri, MISSING, "not there", remove)
    if "bytes" in recorded and size != recorded["bytes"]:
        return Finding(uri, CORRUPT, f"{size} bytes, the manifest records {recorded['bytes']}", remove)
    if "sha256" in recorded and hashlib.sha256(store.read_bytes(path)).hexdigest() != recorded["sha256"]:
        return Finding(uri, CORRUPT, "checksum differs from the manifest's", remove)
    return None


def _unreadable(store: Store, path: str, remove: tuple[str, ...]) -> Finding | None:
    try:
        pq.read_table(pa.BufferReader(store.read_bytes(path)))
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        return Finding(store.uri(path), CORRUPT, f"not a readable Parquet file ({exc})", remove)
    return None
