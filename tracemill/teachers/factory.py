"""Teachers built from their config plus plain endpoint settings: the one place a backend is chosen.

A teacher config that names an endpoint block (``endpoint_block()``) is built with that endpoint's
:class:`EndpointSettings`; the caller resolves them (the Prefect block in ``blocks/teacher_endpoint.py``
hands them over), so the library never loads a block. Each config builds its own backend
(``config.build``), so adding a backend touches its module and ``teachers/config.py`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tracemill.config import identity_of
from tracemill.preflight import Problem
from tracemill.teachers.base import Teacher
from tracemill.teachers.config import TeacherConfig
from tracemill.teachers.ratelimit import Limiter


@dataclass(frozen=True)
class EndpointSettings:
    """Where an endpoint teacher sends its requests, with what key, and within which limits."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)  # never in a repr, a log or a fingerprint
    max_concurrency: int = 16
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    limiter: Callable[[], Limiter] | None = None  # limits shared with other runs; None: this run's own


# Resolves the endpoint settings of the block a teacher config names (``blocks.teacher_endpoint.endpoint_settings``).
Endpoints = Callable[[TeacherConfig], EndpointSettings | None]


def no_endpoints(teacher: TeacherConfig) -> None:
    """Endpoints for configs whose teachers name no block; an endpoint teacher then fails, saying so."""
    return None


def teacher_identity(config: TeacherConfig, endpoint: EndpointSettings | None = None) -> dict[str, Any]:
    """What names a teacher in a fingerprint: its config's identity and an endpoint's URL and model (the block's
    name, key and limits do not change what it answers)."""
    _check_endpoint(config, endpoint)
    identity = identity_of(config)
    if endpoint is not None:
        identity.update(base_url=endpoint.base_url, model=endpoint.model)
    return identity


def build_teacher(config: TeacherConfig, endpoint: EndpointSettings | None = None) -> Teacher:
    """The teacher backend of ``config``, with its endpoint's settings where it names an endpoint block."""
    _check_endpoint(config, endpoint)
    return config.build(endpoint)


def check_teacher(config: TeacherConfig, endpoint: EndpointSettings | None, label: str) -> Problem | None:
    """Preflight of a teacher: is its model or endpoint there (``tracemill.preflight``)."""
    _check_endpoint(config, endpoint)
    return config.check(endpoint, label)


def _check_endpoint(config: TeacherConfig, endpoint: EndpointSettings | None) -> None:
    block = config.endpoint_block()
    if block is not None and endpoint is None:
        raise ValueError(f"teacher {config.kind!r} names the endpoint block {block!r}: pass its settings")
    if block is None and endpoint is not None:
        raise ValueError(f"teacher {config.kind!r} takes no endpoint settings")
