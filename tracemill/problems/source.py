"""What every source of problems offers the problems stage, and the registry of sources.

A source is a config model with a ``kind`` literal, registered with :func:`register_source`; the
build config's ``source`` union (and so the UI's kind picker) is derived from the registry
(:func:`source_union`, in ``tracemill.problems.config``). The stage only calls a source's methods,
so adding one never touches it. Two families:

* a :class:`ReadSource` reads all its problems once per process (:meth:`ReadSource.read`), keeps a
  seeded sample of ``max_problems`` of them and cuts them into shards of ``problems_per_shard``;
* any other :class:`Source` makes each shard on its own (:meth:`Source.num_shards`, :meth:`Source.shard`),
  so any worker builds any shard without reading the rest. Procedural CLEVR scenes do so, and read
  the whole as a :class:`ReadSource` only for a ``max_problems`` sample, which only the whole gives.
"""

from __future__ import annotations

import threading
from functools import reduce
from operator import or_
from typing import Annotated, Any, TypeVar

import fsspec
from pydantic import Field

from tracemill.config import _Model
from tracemill.form import KindPicker
from tracemill.problems.rows import RowReport, seeded_sample
from tracemill.store import Store

Row = dict[str, Any]
S = TypeVar("S", bound="Source")

# Every source config class by kind, in the order the UI's kind picker shows them.
SOURCES: dict[str, type[Source]] = {}


def register_source(cls: type[S]) -> type[S]:
    """Class decorator: add a source config (its ``kind`` literal names it) to the registry."""
    kind = cls.model_fields["kind"].default
    if kind in SOURCES:
        raise ValueError(f"source kind {kind!r} is registered already")
    SOURCES[kind] = cls
    return cls


def source_union() -> Any:
    """The registered sources as one pydantic union discriminated by ``kind``, drawn as a kind picker."""
    return Annotated[reduce(or_, SOURCES.values()), Field(discriminator="kind"), KindPicker()]


class Source(_Model):
    """A source of problems: a config with a ``kind`` literal; it names its inputs and makes its shards."""

    def inputs(self, store: Store) -> list[str]:
        """Identities of what the source reads (file checksums, a Hub dataset's name and revision), inputs of
        the problems fingerprint: an edited file makes new problems. None by default."""
        return []

    def num_shards(self, store: Store) -> int:
        raise NotImplementedError

    def shard(self, shard: int, store: Store) -> tuple[list[Row], str]:
        """The problem rows of shard ``shard``, and what they are (for error messages)."""
        raise NotImplementedError

    def row_report(self, store: Store) -> RowReport:
        """Rows the source skipped or repaired, per reason (see ``rows``): the manifest's ``rows`` entry."""
        return RowReport()


class ReadSource(Source):
    """A source whose problems are read whole, once per process; subclasses have ``max_problems``,
    ``sample_seed`` and ``problems_per_shard`` and implement :meth:`read` and :meth:`where`."""

    def read(self, store: Store, report: RowReport) -> list[Row]:
        """Every problem row, in a stable order; rows left out or repaired are counted in ``report``."""
        raise NotImplementedError

    def where(self) -> str:
        """What the source reads, for error messages."""
        raise NotImplementedError

    def num_shards(self, store: Store) -> int:
        return max(1, -(-len(self._problems(store)[0]) // self.problems_per_shard))

    def shard(self, shard: int, store: Store) -> tuple[list[Row], str]:
        size = self.problems_per_shard
        rows = self._problems(store)[0][shard * size : (shard + 1) * size]
        return rows, f"{self.where()} problems {shard * size}..{shard * size + len(rows) - 1}"

    def row_report(self, store: Store) -> RowReport:
        return self._problems(store)[1]

    def _problems(self, store: Store) -> tuple[list[Row], RowReport]:
        # The inputs are read once per process however many shards read them; the input identities in the key
        # make an edited file a miss. Only the latest source is kept in memory. ``max_problems`` is a seeded
        # sample of the problems, so a trial build is a fair sample of the whole.
        key = (self.model_dump_json(), *self.inputs(store))
        with _parsed_lock:
            if key not in _parsed:
                report = RowReport()
                rows = self.read(store, report)
                _parsed.clear()
                _parsed[key] = (seeded_sample(rows, self.max_problems, self.sample_seed), report)
            return _parsed[key]


_parsed: dict[tuple[Any, ...], tuple[list[Row], RowReport]] = {}
_parsed_lock = threading.Lock()


def options_for(path: str, store: Store) -> dict[str, Any]:
    """Storage options for an input file: the store's credentials apply to files kept in the same kind of storage."""
    same = fsspec.utils.get_protocol(path) == fsspec.utils.get_protocol(store.url)
    return dict(store.storage_options) if same and not store.is_local else {}


def checksum(path: str, store: Store) -> str:
    """An input file's identity: its path and checksum (size and modification time, or ETag)."""
    fs, local = fsspec.core.url_to_fs(path, **options_for(path, store))
    try:
        return f"{path}@{fs.checksum(local)}"
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: input file does not exist") from None
