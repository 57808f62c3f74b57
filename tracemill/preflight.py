"""Checks before a build starts: what it needs that no retry can fix, found in seconds with the cause.

A teacher model folder that is not there, a store that cannot be written, credentials the store
refuses, an endpoint that does not answer: inside a shard task each surfaces late (after an engine
start, after minutes of retries) and in another library's words. Each check here returns a
:class:`Problem` naming the thing and the cause, or None when all is well; :class:`PreflightError`
carries every failed check at once, so a user fixes them in one go.
"""

from __future__ import annotations

import os
import posixpath
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tracemill.faults import is_credentials_fault, is_transient_fault
from tracemill.store import Store, StoreError

# A Hugging Face model id: ``name`` or ``org/name``.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


class PreflightError(Exception):
    """What a run needs is missing or refuses access; it stopped before its shards, and a rerun fails the same
    way until the causes listed are fixed."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"preflight failed, nothing was computed:\n{lines}")

    def __reduce__(self) -> tuple[type[PreflightError], tuple[list[str]]]:
        return PreflightError, (self.problems,)  # Prefect pickles the exceptions of failed runs


@dataclass(frozen=True)
class Problem:
    """One failed check; ``transient`` when it may pass a moment later (a store or a server down or busy)."""

    message: str
    transient: bool = False


def raise_problems(problems: Iterable[Problem | None], *, transient_ok: bool = False) -> None:
    """Raise :class:`PreflightError` with every problem found; return when there is none.

    ``transient_ok`` lets a stage that starts mid-build leave an outage to its tasks' retries.
    """
    found = [p.message for p in problems if p is not None and not (transient_ok and p.transient)]
    if found:
        raise PreflightError(found)


def check_model(model: str, label: str = "teacher model", timeout_s: float = 5.0) -> Problem | None:
    """A vLLM model: a local folder with a ``config.json``, or a Hub id in the local cache or on the Hub.

    A path that cannot be a Hub id (absolute, ``./``, ``~``, more than one ``/``) must be a folder
    here. An ``org/name`` that is no folder here is looked up in the local Hugging Face cache, then
    (unless ``HF_HUB_OFFLINE`` is set) on the Hub, so an offline machine says so instead of failing
    later with a "repo id" message.
    """
    if "://" in model:
        return None  # an object-store URL vLLM streams from; nothing to look at here
    path = Path(model).expanduser()
    if path.is_dir():
        return None if (path / "config.json").is_file() else Problem(f"{label} folder {path} has no config.json")
    if path.is_file():
        return None if path.suffix == ".gguf" else Problem(f"{label} {path} is a file, not a model folder")
    if not _HUB_ID.fullmatch(model):
        return Problem(f"{label} folder {path.absolute()} does not exist")
    return _hub_problem(model, f"{label} {model!r} is no local folder ({path.absolute()} does not exist)", timeout_s)


def _hub_problem(model: str, missing: str, timeout_s: float) -> Problem | None:
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(model, "config.json", cache_dir=constants.HF_HUB_CACHE), str):
        return None
    missing = f"{missing} and not in the local Hugging Face cache ({constants.HF_HUB_CACHE})"
    if constants.HF_HUB_OFFLINE:
        return Problem(f"{missing}; HF_HUB_OFFLINE is set, so it cannot be downloaded")
    try:
        HfApi(endpoint=constants.ENDPOINT).model_info(model, timeout=timeout_s)
    except GatedRepoError:
        return Problem(f"{missing}; it is gated on the Hub: accept its terms there and set HF_TOKEN")
    except RepositoryNotFoundError:
        return Problem(f"{missing}; the Hub has no such model (or it is private: set HF_TOKEN)")
    except Exception as exc:  # any failure to ask: DNS, refused, timeout, proxy
        cause = f"{type(exc).__name__}: {exc}"
        return Problem(f"{missing}; the Hub at {constants.ENDPOINT} cannot be reached ({cause})", transient=True)
    return None


def check_store(store: Store, label: str | None = None) -> Problem | None:
    """The store can be written: a small probe object is written and deleted under its root.

    A local store under a file, or in a folder without write permission, is named as such; on
    object storage the cause (credentials refused, no bucket, endpoint down) comes from the probe.
    """
    label = label or f"store {store.url}"
    if store.is_local:
        problem = _local_folder_problem(Path(store.root))
        if problem:
            return Problem(f"{label}: {problem}")
    probe = posixpath.join(store.root, f"_preflight-{uuid.uuid4().hex}")
    try:
        store.write_bytes(probe, b"tracemill preflight probe\n")
        store.delete(probe)
    except StoreError as exc:
        return Problem(f"{label}: {describe_store_fault(exc)}", transient=is_transient_fault(exc))
    return None


def _local_folder_problem(root: Path) -> str | None:
    """Why a local store folder cannot be made or written, from its nearest existing ancestor."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, so the store folder {root} cannot be created there"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"no permission to write in {existing}"
    return None


def describe_store_fault(exc: StoreError) -> str:
    """A store error in a user's terms: refused credentials, a missing bucket, or the storage's own message."""
    cause = exc.__cause__
    if is_credentials_fault(cause):
        return f"access refused ({type(cause).__name__}: {cause}): check the store's credentials and their rights"
    if isinstance(cause, FileNotFoundError):
        return f"the bucket or folder does not exist ({cause})"
    return str(exc)


def check_endpoint(
    base_url: str, model: str, api_key: str | None, label: str = "teacher endpoint", timeout_s: float = 5.0
) -> Problem | None:
    """An OpenAI-compatible endpoint answers ``GET /models``, accepts the key and serves ``model``.

    One cheap request with a short timeout; the key goes in the header only, never in a message.
    A server without a ``/models`` route (404, 405) counts as reachable.
    """
    import httpx

    url = f"{base_url.rstrip('/')}/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return Problem(f"{label}: cannot reach {url} ({type(exc).__name__}: {str(exc) or 'no answer'})", transient=True)
    status = response.status_code
    if status in (401, 403):
        given = "refused the API key" if api_key else "needs an API key (none is set)"
        return Problem(f"{label}: {base_url} {given} (HTTP {status})")
    if status in (404, 405):
        return None
    if status >= 400:
        busy = status == 429 or status >= 500
        return Problem(f"{label}: GET {url} answered HTTP {status}: {response.text[:200]}", transient=busy)
    try:
        served = [entry["id"] for entry in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return None  # not the usual listing; the server answers, which is what can be checked
    if served and model not in served:
        return Problem(f"{label}: {base_url} does not serve model {model!r} (it serves: {', '.join(served[:10])})")
    return None
