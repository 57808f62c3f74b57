"""Rate limits shared across runs: two runs drawing on one TeacherEndpoint block's limits, kept by the
real Prefect API (global concurrency limits with slot decay), against the local OpenAI-compatible server.

Each run alone may send at the block's full rate; together they stay within it in every window.
Without sharing, two runs would send twice the rate and the window checks would fail by tens of requests.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect.client.orchestration import get_client

from blocks.teacher_endpoint import HOLD_S, TeacherEndpoint
from flows.problems import synthesize_problems
from tests.fake_openai import FakeOpenAI, prompt_of, worst_excess
from tests.flows.sampling_runs import sample_at_once
from tracemill.config import StoreConfig
from tracemill.problems.config import ClevrProceduralSource
from tracemill.sampling.config import PromptConfig, SamplingConfig
from tracemill.teachers.base import SampleRequest, SamplingParams
from tracemill.teachers.config import EndpointTeacherConfig
from tracemill.teachers.endpoint import EndpointTeacher


def _burst(per_minute: float) -> float:
    """What the runs together may send beyond the rate: the limit's one second, plus slots taken but
    not yet spent, which a run drops after HOLD_S."""
    return max(1.0, per_minute / 60.0) + per_minute / 60.0 * HOLD_S


def test_two_runs_sharing_a_block_stay_within_its_requests_per_minute(prefect_api, tmp_path):
    rpm = 240.0  # 4 a second; each run's 24 requests (12 problems, n=2) alone would take 6 s at that rate
    store = StoreConfig(url=str(tmp_path / "store"))
    source = ClevrProceduralSource(num_scenes=6, scenes_per_shard=3, questions_per_scene=1, seed=3)
    problems = Path(synthesize_problems(source=source, store=store)).name
    with FakeOpenAI() as server:
        TeacherEndpoint(
            base_url=server.url, model="m", max_concurrency=8, requests_per_minute=rpm, shared_limits=True
        ).save("shared-rpm", overwrite=True)
        configs = {  # two configs (their own datasets), one block: one API key's budget
            tmp_path / f"{run}.yaml": SamplingConfig(
                teacher=EndpointTeacherConfig(block="shared-rpm"),
                custom_prompts=[PromptConfig(name=run, text=f"run-{run} {{question}}")],
                prompt=run,
                n=2,
                max_tokens=16,
            )
            for run in "ab"
        }
        uris = sample_at_once(server, store, configs, problems, prefect_api, lambda body: prompt_of(body).split()[0])
        received = server.received

    assert len(set(uris)) == 2 and len(received) == 48
    by_run = {run: [r for r in received if prompt_of(r.body).startswith(f"run-{run} ")] for run in "ab"}
    assert [len(by_run[run]) for run in "ab"] == [24, 24]
    assert worst_excess(received, lambda r: 1, rpm, _burst(rpm)) <= 2
    # The window check tests sharing because both runs wanted to send at once: the server answers nothing until
    # each run has sent a request, so neither had finished (each had most of its 24 still to send) when the
    # other began. Unshared, both would then send at the full rate and the windows would carry about twice it.
    # How the slots are split between them is not promised (the limit serves whichever asks first).
    for run, other in ("ab", "ba"):
        assert min(r.start for r in by_run[run]) < max(r.start for r in by_run[other]) - 1.0
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("tracemill-endpoint-shared-rpm-requests")
    assert (limit.limit, limit.slot_decay_per_second) == (4, 4.0)


def test_two_teachers_on_shared_limits_stay_within_its_tokens_per_minute(prefect_api):
    # Completion prompts of 4 characters (one token) and 3 tokens generated: the teacher's estimate
    # (chars / 4 + max_tokens) is exactly what the server counts.
    tpm = 2400.0  # 40 tokens a second: 10 requests a second, for both teachers together
    params = SamplingParams(n=1, max_tokens=3)
    with FakeOpenAI() as server:
        TeacherEndpoint(base_url=server.url, model="m", tokens_per_minute=tpm, shared_limits=True).save(
            "shared-tpm", overwrite=True
        )
        block = TeacherEndpoint.load("shared-tpm")
        teachers = [
            EndpointTeacher(
                base_url=server.url, model="m", api_key=None, max_concurrency=16, limiter=block.shared_limiter()
            )
            for _ in range(2)
        ]

        def run(teacher: EndpointTeacher, name: str) -> list[str | None]:
            requests = [SampleRequest(f"{name}{i:03d}", f"{name}{i:03d}", 1, i) for i in range(30)]
            with teacher:
                return [g[0].error for g in teacher.generate(requests, params)]

        with ThreadPoolExecutor(2) as pool:
            errors = list(pool.map(run, teachers, "ab"))
        received = server.received

    assert errors == [[None] * 30] * 2 and {r.tokens for r in received} == {4}
    assert worst_excess(received, lambda r: r.tokens, tpm, _burst(tpm)) <= 2 * 4
