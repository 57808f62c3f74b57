"""Two builds of one config triggered at once: a lock per shard, kept by the real Prefect API, makes the
second wait for each shard the first is sampling and then reuse it, so the local OpenAI-compatible
server is asked for every (problem, sample) exactly once and both runs end with the same dataset.
Without the lock each sample is asked for twice (the server holds its answers until both runs are
under way, so they always overlap).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName

from blocks.teacher_endpoint import TeacherEndpoint
from flows.problems import synthesize_problems
from tests.fake_openai import FakeOpenAI, Reply, prompt_of
from tests.flows.sampling_runs import sample_at_once
from tracemill.config import StoreConfig
from tracemill.problems.config import ClevrProceduralSource
from tracemill.sampling import stage as sampling_stage
from tracemill.sampling.config import SamplingConfig
from tracemill.store import Store
from tracemill.teachers.config import EndpointTeacherConfig


def test_two_builds_of_one_config_at_once_sample_each_shard_once(prefect_api, tmp_path):
    store = StoreConfig(url=str(tmp_path / "store"))
    source = ClevrProceduralSource(num_scenes=6, scenes_per_shard=3, questions_per_scene=1, seed=4)
    problems_fp = Path(synthesize_problems(source=source, store=store)).name
    problems = Store(store.url).dataset("problems", problems_fp, "problem").read()
    sampling = SamplingConfig(teacher=EndpointTeacherConfig(block="one-teacher"), prompt="clevr_v1", n=2)
    # 0.1 s an answer, two at a time: a run samples for over a second once the server answers.
    with FakeOpenAI(default=Reply(delay_s=0.1)) as server:
        TeacherEndpoint(base_url=server.url, model="m", max_concurrency=2).save("one-teacher", overwrite=True)
        started = datetime.now(UTC)
        configs = {tmp_path / f"{run}.yaml": sampling for run in "ab"}  # the same config, triggered twice
        uris = sample_at_once(server, store, configs, problems_fp, prefect_api)
        received = server.received

    asked = Counter((prompt_of(r.body), r.body["seed"]) for r in received)
    assert len(asked) == problems.num_rows * 2 and set(asked.values()) == {1}  # each sample asked for once
    assert len(uris) == 2 and uris[0] == uris[1]
    samples = Store(store.url).dataset("samples", Path(uris[0]).name, "sample")
    table = samples.read()
    pairs = Counter(zip(table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist(), strict=True))
    assert len(pairs) == problems.num_rows * 2 and set(pairs.values()) == {1}
    assert table.column("error").null_count == table.num_rows
    assert samples.is_complete()
    assert not any(samples.checkpoints(s, sampling_stage.CHECKPOINT_TAG).shard_indices() for s in (0, 1))

    with get_client(sync_client=True) as client:
        named = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["sample-problems"])))
        leftover = [gcl.name for gcl in client.read_global_concurrency_limits(limit=200)]
    flow_runs = [run for run in named if run.start_time and run.start_time >= started]
    assert len(flow_runs) == 2 and all(run.state is not None and run.state.is_completed() for run in flow_runs)
    first, second = sorted(flow_runs, key=lambda run: run.start_time)
    assert second.start_time < first.end_time  # they ran at once
    assert not [name for name in leftover if name.startswith("tracemill-shard-")]  # locks are removed when done
