"""Create tracemill's block documents from environment variables: ``python -m blocks.bootstrap``.

Deploy scripts, containers and CI have their secrets in the environment; this turns them into
blocks once, so flows load them by name and no secret travels in a deployment's parameters or a
job's environment. It prints which blocks it saved and which fields are set, never a value.

* ObjectStore: ``TRACEMILL_S3_ENDPOINT_URL``, ``TRACEMILL_S3_ACCESS_KEY_ID``,
  ``TRACEMILL_S3_SECRET_ACCESS_KEY``, ``TRACEMILL_S3_REGION``;
* TeacherEndpoint: ``TRACEMILL_TEACHER_BASE_URL``, ``_MODEL``, ``_API_KEY``, ``_MAX_CONCURRENCY``,
  ``_REQUESTS_PER_MINUTE``, ``_TOKENS_PER_MINUTE``, ``_SHARED_LIMITS``;
* HubTarget: ``TRACEMILL_HUB_REPO_ID``, ``TRACEMILL_HUB_PRIVATE``, and the token from
  ``TRACEMILL_HUB_TOKEN`` or ``HF_TOKEN`` (``HF_TOKEN`` alone names no repository: no block).

A group whose variables are all unset is skipped; block names come from the options (``default``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prefect.blocks.core import Block
from pydantic import SecretStr, ValidationError

from blocks.hub_target import HubTarget
from blocks.object_store import ObjectStore
from blocks.teacher_endpoint import TeacherEndpoint


@dataclass(frozen=True)
class Group:
    """One block type filled from environment variables named ``{prefix}{FIELD}``."""

    label: str
    cls: type[Block]
    prefix: str
    fields: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()  # (variable, field): well-known names such as HF_TOKEN

    def values(self, env: Mapping[str, str]) -> dict[str, str]:
        """The fields set in ``env``; none when only an alias is set (HF_TOKEN alone names no repository)."""
        found = {f: env[self.variable(f)] for f in self.fields if env.get(self.variable(f))}
        if not found:
            return {}
        for variable, field in self.aliases:
            if env.get(variable) and field not in found:
                found[field] = env[variable]
        return found

    def variable(self, field: str) -> str:
        return self.prefix + field.upper()


GROUPS = (
    Group("store", ObjectStore, "TRACEMILL_S3_", ("endpoint_url", "access_key_id", "secret_access_key", "region")),
    Group(
        "teacher",
        TeacherEndpoint,
        "TRACEMILL_TEACHER_",
        (
            "base_url",
            "model",
            "api_key",
            "max_concurrency",
            "requests_per_minute",
            "tokens_per_minute",
            "shared_limits",
        ),
    ),
    Group("hub", HubTarget, "TRACEMILL_HUB_", ("repo_id", "private", "token"), aliases=(("HF_TOKEN", "token"),)),
)


class BootstrapError(ValueError):
    """A group of variables does not make a valid block; the message names variables, never values."""


def bootstrap(env: Mapping[str, str], names: Mapping[str, str]) -> list[str]:
    """Save one block document per group that has variables set; return a line per block, without values."""
    lines = []
    for group in GROUPS:
        found = group.values(env)
        if not found:
            continue
        try:
            block = group.cls.model_validate(found)
        except ValidationError as exc:
            problems = "; ".join(
                f"{group.variable(str(e['loc'][0])) if e['loc'] else group.prefix + '*'}: {e['msg']}"
                for e in exc.errors()
            )
            raise BootstrapError(f"{group.cls.__name__} from the environment: {problems}") from None
        name = names[group.label]
        block.save(name, overwrite=True)
        described = ", ".join(f"{field}={_describe(getattr(block, field))}" for field in sorted(found))
        lines.append(f"{group.cls.__name__} {name!r} saved ({described})")
    return lines


def _describe(value: object) -> str:
    return "<secret set>" if isinstance(value, SecretStr) else repr(value)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m blocks.bootstrap",
        description="Create tracemill block documents (object store, teacher endpoint, Hub target) "
        "from TRACEMILL_* and HF_TOKEN environment variables.",
    )
    for group in GROUPS:
        parser.add_argument(f"--{group.label}-block", default="default", help=f"name of the {group.cls.__name__} block")
    args = parser.parse_args(argv)
    names = {group.label: getattr(args, f"{group.label}_block") for group in GROUPS}
    try:
        lines = bootstrap(os.environ, names)
    except BootstrapError as exc:
        parser.exit(2, f"error: {exc}\n")
    for line in lines or ["no TRACEMILL_S3_*, TRACEMILL_TEACHER_* or TRACEMILL_HUB_* variables set: nothing saved"]:
        print(line)


if __name__ == "__main__":
    main()
