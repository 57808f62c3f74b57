"""Prefect blocks: connection details and secrets that configs refer to by name."""

from blocks.object_store import ObjectStore, open_store
from blocks.store_results import StoreResults
from blocks.teacher_endpoint import TeacherEndpoint

__all__ = ["ObjectStore", "StoreResults", "TeacherEndpoint", "open_store"]
