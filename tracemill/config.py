"""Shared configuration: the store, the base model and identity of every stage config, YAML loading.

Every field has a description and bounds, so the UI renders a form and rejects bad input before
anything runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from tracemill.overrides import apply_overrides


def _compiles(pattern: str | None) -> str | None:
    """A pattern that does not compile is a config error when the config loads, not a failure mid-run."""
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


Regex = Annotated[str | None, AfterValidator(_compiles)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Fields that never change what a stage writes (engine sizing, batch sizes, concurrency, time limits that
    # do not change results, the card's wording, the push target): left out of its fingerprint (identity_of).
    identity_exclude: ClassVar[frozenset[str]] = frozenset()
    # Fields added after stores were written: in the identity only when set away from their default, so the
    # fingerprints of existing stores hold.
    identity_if_set: ClassVar[frozenset[str]] = frozenset()


def identity_of(model: BaseModel, resolved: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What of a config decides its stage's output: every field but its class's ``identity_exclude``, nested
    configs by their own identity, and the ``resolved`` fields as the caller gives them (a teacher named by its
    endpoint). Derived, never listed: a new field changes the fingerprint unless it is excluded on purpose."""
    cls = type(model)
    exclude = getattr(cls, "identity_exclude", frozenset())
    if_set = getattr(cls, "identity_if_set", frozenset())
    resolved = resolved or {}
    unset = {
        name for name in if_set if getattr(model, name) == cls.model_fields[name].get_default(call_default_factory=True)
    }
    return {
        name: resolved[name] if name in resolved else _identity_value(getattr(model, name))
        for name in cls.model_fields
        if name not in exclude and name not in unset
    }


def _identity_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return identity_of(value)
    if isinstance(value, list | tuple):
        return [_identity_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _identity_value(item) for key, item in value.items()}
    return to_jsonable_python(value)


class StoreConfig(_Model):
    """Where datasets are written: a local folder or an object-store prefix."""

    url: str = Field(
        "./tracemill-data",
        min_length=1,
        description="Root of the dataset store: a local folder or an fsspec URL such as s3://bucket/prefix.",
    )
    block: str | None = Field(
        None,
        min_length=1,
        description="Name of an ObjectStore block holding the endpoint URL and credentials (for s3:// stores).",
    )


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping; an unreadable file names itself."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def load_yaml(path: str | Path, model: type[_Model], overrides: Sequence[str] = ()) -> Any:
    """Load a YAML config file, plus ``dotted.key=value`` overrides, into ``model``; errors name the file and field."""
    return _validated(path, model, apply_overrides(read_yaml(path), overrides))


def _validated(path: str | Path, model: type[_Model], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
