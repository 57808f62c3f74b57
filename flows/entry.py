"""How every command-line entry point ends: one clean line for an error the user must fix, not a traceback.

``tracemill run``, ``python -m flows.problems`` and ``python -m flows.sampling`` all go through
:func:`run_cli`. Each reads its source with :func:`read_source` before Prefect starts, so a data
error (a file, a field, a row named by its own id) is the last thing printed, not one line after
Prefect's log of a failed flow.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tracemill.config import StoreConfig
from tracemill.preflight import PreflightError
from tracemill.problems.config import SourceConfig


class StageFailedError(RuntimeError):
    """A stage of the build failed; the message names the stage, and the shard where one failed."""


# Configuration, data and preflight errors, and a failed stage (its message names the cause and the advice).
CLEAN_ERRORS = (ValueError, FileNotFoundError, PreflightError, StageFailedError)


def run_cli(prog: str, action: Callable[[], object]) -> int:
    """Run ``action``; the exit status, with an error the user must fix printed as ``prog: message``."""
    try:
        action()
    except CLEAN_ERRORS as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


def read_source(source: SourceConfig, store: StoreConfig) -> None:
    """Read the source's rows now (the problems flow reuses them in this process): its data errors surface here."""
    from blocks.object_store import open_store  # deferred: Prefect's import is seconds, `--help` needs none
    from tracemill.problems import stage as problems

    problems.num_shards(source, open_store(store))
