"""Prefect blocks: connection details and secrets that configs refer to by name."""

from blocks.hub_target import HubTarget
from blocks.object_store import ObjectStore, open_store
from blocks.store_results import StoreResults
from blocks.teacher_endpoint import TeacherEndpoint

__all__ = ["HubTarget", "ObjectStore", "StoreResults", "TeacherEndpoint", "open_store"]
