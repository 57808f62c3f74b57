"""Prefect blocks: connection details and secrets that configs refer to by name."""

from blocks.object_store import ObjectStore, open_store

__all__ = ["ObjectStore", "open_store"]
