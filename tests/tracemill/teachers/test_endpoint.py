"""The endpoint teacher against a local server speaking the OpenAI API (tests/fake_openai.py).

The server records every request (arrival time, body, headers, tokens sent back), so these tests
check what the endpoint actually saw: retries, waits, concurrency, request and token rates, which
samples were asked for and how often.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from tests.fake_openai import FakeOpenAI, Received, Reply, echo, prompt_of, worst_excess
from tracemill.sampling.prompts import PromptTemplate
from tracemill.sampling.stage import Sampler, SamplingFailedError
from tracemill.seeds import request_seed
from tracemill.store import Store
from tracemill.teachers.base import SampleRequest, SamplingParams
from tracemill.teachers.endpoint import EndpointTeacher, parse_retry_after
from tracemill.teachers.ratelimit import TokenBucket

KEY = "sk-tracemill-test-0123456789abcdef"
PLAIN = PromptTemplate("plain", 1, "{question}")  # the prompt is the question, so the server can be scripted by it
PARAMS = SamplingParams(n=1, temperature=1.0, max_tokens=64)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def make_teacher(server: FakeOpenAI) -> Iterator[Callable[..., EndpointTeacher]]:
    """Teachers on the server with fast backoff; closed after the test."""
    made: list[EndpointTeacher] = []

    def make(**options: object) -> EndpointTeacher:
        settings = {"api_key": KEY, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 30.0, **options}
        teacher = EndpointTeacher(base_url=server.url, model="teacher-m", **settings)  # type: ignore[arg-type]
        made.append(teacher)
        return teacher

    yield make
    for teacher in made:
        teacher.close()


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _for(server: FakeOpenAI, prompt: str) -> list[Received]:
    return [r for r in server.received if prompt_of(r.body) == prompt]


def test_429_waits_as_long_as_retry_after_says(server, make_teacher):
    server.script("q", Reply(status=429, retry_after=0.5))
    [gens] = make_teacher(backoff_max_s=5.0).generate([SampleRequest("q", _chat("q"), 1, 7)], PARAMS)
    first, second = _for(server, "q")
    assert (first.status, second.status) == (429, 200)
    assert second.start - first.end >= 0.5 - 0.02  # the server's wait, not the 10 ms backoff
    assert gens[0].error is None and gens[0].text == echo("q", 7, 0)


def test_retry_after_is_seconds_or_an_http_date_and_is_capped(server, make_teacher):
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT") > 0 and parse_retry_after("soon") is None
    server.script("q", Reply(status=429, retry_after=3600))  # an hour: waits only backoff_max_s
    [gens] = make_teacher(backoff_max_s=0.2).generate([SampleRequest("q", _chat("q"), 1, 7)], PARAMS)
    assert [r.status for r in _for(server, "q")] == [429, 200] and gens[0].error is None


def test_server_errors_are_retried_until_success_or_the_retry_budget(server, make_teacher):
    server.script("flaky", Reply(status=500), Reply(status=502), Reply(status=503))
    server.script("down", *[Reply(status=500)] * 10)
    teacher = make_teacher(max_retries=3)
    flaky, down = teacher.generate(
        [SampleRequest("flaky", _chat("flaky"), 1, 1), SampleRequest("down", _chat("down"), 1, 2)], PARAMS
    )
    assert [r.status for r in _for(server, "flaky")] == [500, 502, 503, 200]
    assert flaky[0].error is None and flaky[0].text == echo("flaky", 1, 0)
    assert [r.status for r in _for(server, "down")] == [500] * 4  # one try and three retries, then no more
    assert down[0].error == "server_error" and down[0].text is None and down[0].sample_idx == 0


def test_client_errors_are_not_retried(server, make_teacher):
    server.script("bad", Reply(status=400))
    server.script("denied", Reply(status=401))
    bad, denied = make_teacher().generate(
        [SampleRequest("bad", _chat("bad"), 1, 1), SampleRequest("denied", _chat("denied"), 1, 1)], PARAMS
    )
    assert (bad[0].error, denied[0].error) == ("bad_request", "auth")
    assert len(_for(server, "bad")) == len(_for(server, "denied")) == 1


def test_timeouts_are_retried_and_slow_answers_within_the_limit_are_kept(server, make_teacher):
    server.script("late-once", Reply(delay_s=2.0))
    server.script("always-late", *[Reply(delay_s=2.0)] * 3)
    server.script("slow", Reply(delay_s=0.3))
    teacher = make_teacher(timeout_s=0.5, max_retries=2)
    late_once, always_late, slow = teacher.generate(
        [SampleRequest(p, _chat(p), 1, 3) for p in ("late-once", "always-late", "slow")], PARAMS
    )
    assert len(_for(server, "late-once")) == 2 and late_once[0].text == echo("late-once", 3, 0)
    assert len(_for(server, "always-late")) == 3 and always_late[0].error == "timeout"
    assert len(_for(server, "slow")) == 1 and slow[0].error is None and slow[0].latency_s >= 0.3


@pytest.mark.parametrize(
    "reply",
    [
        Reply(malformed=True),  # JSON cut off
        Reply(raw=b"<html><body>502 Bad Gateway</body></html>"),  # a proxy's page with a 200
        Reply(raw=b'{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}'),
        Reply(raw=b'{"id": "x"}'),
    ],
    ids=["truncated", "html", "no-choices", "no-fields"],
)
def test_malformed_bodies_become_error_rows_for_every_sample_they_carried(server, make_teacher, reply):
    server.script("broken", reply)
    teacher = make_teacher(supports_n=True)
    broken, fine = teacher.generate(
        [SampleRequest("broken", _chat("broken"), 3, 10, first_idx=2), SampleRequest("fine", _chat("fine"), 3, 20)],
        SamplingParams(n=3, max_tokens=64),
    )
    assert [(g.sample_idx, g.seed, g.error, g.text) for g in broken] == [
        (i, 8 + i, "malformed", None) for i in (2, 3, 4)
    ]
    assert [g.text for g in fine] == [echo("fine", 20, i) for i in range(3)] and not any(g.error for g in fine)


def test_missing_choices_are_an_error_not_fewer_samples(server, make_teacher):
    choice = '{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "only one"}}'
    body = f'{{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [{choice}]}}'
    server.script("short", Reply(raw=body.encode()))
    [gens] = make_teacher(supports_n=True).generate([SampleRequest("short", _chat("short"), 3, 1)], PARAMS)
    assert [(g.sample_idx, g.error) for g in gens] == [(0, "malformed"), (1, "malformed"), (2, "malformed")]


def test_concurrency_stays_within_the_bound(server, make_teacher):
    server.set_fault(lambda body, attempt: Reply(delay_s=0.2))
    requests = [SampleRequest(f"c{i}", _chat(f"c{i}"), 1, i) for i in range(16)]
    results = make_teacher(max_concurrency=4).generate(requests, PARAMS)
    assert 2 <= server.max_in_flight <= 4
    assert [g[0].text for g in results] == [echo(f"c{i}", i, 0) for i in range(16)]


def _worst_excess(received: list[Received], amount: Callable[[Received], float], per_minute: float) -> float:
    """The most any window carried beyond the rate and the limiter's burst (a full bucket).

    Callers allow two requests of slack for requests in transit (0.2 s at their rates). Without the
    limit, or with twice its burst, the excess would be ten requests or more.
    """
    return worst_excess(received, amount, per_minute, TokenBucket(per_minute).capacity)


def test_requests_per_minute_hold_over_every_window(server, make_teacher):
    rpm = 600.0  # 10 a second, a burst of 10: 40 requests take three seconds
    requests = [SampleRequest(f"r{i}", _chat(f"r{i}"), 1, i) for i in range(40)]
    results = make_teacher(requests_per_minute=rpm, max_concurrency=32).generate(requests, PARAMS)
    assert all(g[0].error is None for g in results) and len(server.received) == 40
    assert _worst_excess(server.received, lambda r: 1, rpm) <= 2


def test_tokens_per_minute_hold_over_every_window(server, make_teacher):
    # Completion prompts of 4 characters (one token) and 3 tokens generated: the teacher's estimate
    # (chars / 4 + max_tokens) is exactly what the server counts, so the token bucket is exact.
    tpm = 2400.0  # 40 tokens a second: 10 requests a second after a burst of 10
    params = SamplingParams(n=1, max_tokens=3)
    requests = [SampleRequest(f"t{i:03d}", f"t{i:03d}", 1, i) for i in range(30)]
    results = make_teacher(tokens_per_minute=tpm, max_concurrency=32).generate(requests, params)
    assert all(g[0].error is None and g[0].prompt_tokens == 1 and g[0].completion_tokens == 3 for g in results)
    assert {r.tokens for r in server.received} == {4}
    assert _worst_excess(server.received, lambda r: r.tokens, tpm) <= 2 * 4


def test_n_in_one_request_or_one_request_per_sample_gives_the_same_samples(server, make_teacher):
    params = SamplingParams(n=3, max_tokens=64)
    requests = [SampleRequest("a", _chat("a"), 3, 100), SampleRequest("b", "b", 3, 200, first_idx=3)]
    together = make_teacher(supports_n=True).generate(requests, params)
    assert sorted((r.path, r.body["n"], r.body["seed"]) for r in server.received) == [
        ("/v1/chat/completions", 3, 100),
        ("/v1/completions", 3, 200),
    ]
    server.reset()
    apart = make_teacher(supports_n=False).generate(requests, params)
    assert sorted((r.body["n"], r.body["seed"]) for r in server.received) == [
        (1, s) for s in (100, 101, 102, 200, 201, 202)
    ]
    for gens_together, gens_apart, request in zip(together, apart, requests, strict=True):
        expected = [(request.first_idx + i, request.seed + i, echo(request.key, request.seed, i)) for i in range(3)]
        assert [(g.sample_idx, g.seed, g.text) for g in gens_together] == expected
        assert [(g.sample_idx, g.seed, g.text) for g in gens_apart] == expected


def test_usage_is_accounted_per_sample_and_sums_to_the_server_usage(server, make_teacher):
    params = SamplingParams(n=4, max_tokens=64)
    [gens] = make_teacher(supports_n=True).generate([SampleRequest("u", _chat("count these words"), 4, 5)], params)
    [received] = server.received
    assert {g.prompt_tokens for g in gens} == {3}
    assert gens[0].prompt_tokens + sum(g.completion_tokens for g in gens) == received.tokens
    by_length = sorted(gens, key=lambda g: len(g.text))  # split in proportion to what each generated
    assert [g.completion_tokens for g in by_length] == sorted(g.completion_tokens for g in gens)
    assert {g.finish_reason for g in gens} == {"stop"}
    [capped] = make_teacher().generate([SampleRequest("c", _chat("c"), 1, 0)], SamplingParams(max_tokens=2))
    assert (capped[0].finish_reason, capped[0].completion_tokens) == ("length", 2)
    # Choices of 6, 7 and 8 words with max_tokens=7: the cut one generated exactly 7; none more.
    server.reset()
    [cut] = make_teacher(supports_n=True).generate(
        [SampleRequest("v", _chat("count these words"), 3, 6)], SamplingParams(n=3, max_tokens=7)
    )
    [received] = server.received
    assert [g.finish_reason for g in cut] == ["stop", "stop", "length"]
    assert [g.completion_tokens for g in cut] == [6, 7, 7] and received.tokens == 3 + 20


def test_deepseek_reasoning_content_is_the_reasoning(server, make_teacher, problem_table, tmp_path):
    server.set_fault(lambda body, attempt: Reply(reasoning=f"thinking about {prompt_of(body)}"))
    [gens] = make_teacher().generate([SampleRequest("d", _chat("d"), 1, 1)], PARAMS)
    assert (gens[0].reasoning, gens[0].text) == ("thinking about d", echo("d", 1, 0))
    table, stats = _sample(problem_table(2), make_teacher(), tmp_path, n=2)
    for row in table.to_pylist():
        assert row["reasoning"] == f"thinking about {_question(row['problem_id'])}"
        assert row["response"] == echo(_question(row["problem_id"]), row["seed"], 0)
    assert stats.completion_tokens == sum(r.tokens - 3 for r in server.received[1:])  # with the reasoning's


def test_no_sample_is_lost_or_duplicated_under_mixed_faults(server, make_teacher, problem_table, tmp_path):
    faults = [
        Reply(status=429, retry_after=0.01),
        Reply(status=500),
        Reply(status=503),
        Reply(delay_s=1.0),  # past the timeout
        Reply(delay_s=0.05),
        Reply(),
    ]

    def fault(body: dict, attempt: int) -> Reply:
        pick = zlib.crc32(prompt_of(body).encode()) + body["seed"] + attempt
        return faults[pick % len(faults)] if attempt < 2 else Reply()

    server.set_fault(fault)
    teacher = make_teacher(timeout_s=0.5, max_retries=4, max_concurrency=8)
    table, stats = _sample(problem_table(24), teacher, tmp_path, n=3, every=5)
    rows = table.to_pylist()
    assert [(r["problem_id"], r["sample_idx"]) for r in rows] == [(f"p{i}", j) for i in range(24) for j in range(3)]
    assert stats.failed == 0 and stats.generated_problems == 24
    for row in rows:
        assert row["seed"] == request_seed(0, row["problem_id"]) + row["sample_idx"]
        assert row["response"] == echo(_question(row["problem_id"]), row["seed"], 0)
    answered = Counter((prompt_of(r.body), r.body["seed"]) for r in server.received if r.status == 200)
    assert len(answered) == 72 and len(server.received) > 72  # every sample answered, faults retried


def test_api_key_is_sent_but_never_logged(server, make_teacher, caplog):
    caplog.set_level(logging.DEBUG)  # the openai and httpx loggers included
    server.script("leak", Reply(status=401, raw=f'{{"error": {{"message": "bad key {KEY}"}}}}'.encode()))
    server.script("retry", Reply(status=500, raw=f'{{"error": {{"message": "upstream said {KEY}"}}}}'.encode()))
    teacher = make_teacher()
    leak, retry = teacher.generate([SampleRequest(p, _chat(p), 1, 0) for p in ("leak", "retry")], PARAMS)
    assert leak[0].error == "auth" and retry[0].error is None
    assert {r.headers["authorization"] for r in server.received} == {f"Bearer {KEY}"}
    assert "giving up on leak" in caplog.text and "retrying retry" in caplog.text
    assert KEY not in caplog.text and KEY not in repr(teacher)


def test_a_shard_fails_past_the_failed_share_and_the_rerun_asks_only_for_failed_samples(
    server, make_teacher, problem_table, tmp_path
):
    problems = problem_table(10)
    broken = {_question(f"p{i}") for i in (1, 6)}  # 2 problems x 2 samples of 20: 20% failed
    server.set_fault(lambda body, attempt: Reply(status=400) if prompt_of(body) in broken else None)
    checkpoints = Store(str(tmp_path)).dataset("samples", "fp", "sample").checkpoints(0, "stream")
    with pytest.raises(SamplingFailedError, match="4 of 20 samples of shard 0 failed .bad_request: 4."):
        _sample(problems, make_teacher(), tmp_path, n=2, every=4, max_failed_share=0.1)
    saved = [r for part in checkpoints.shard_indices() for r in checkpoints.read_shard(part).to_pylist()]
    assert sorted((r["problem_id"], r["sample_idx"]) for r in saved) == sorted(
        (f"p{i}", j) for i in range(10) for j in range(2)
    )  # the failing shard checkpoints everything it finished before raising

    server.set_fault(None)
    server.reset()
    table, stats = _sample(problems, make_teacher(), tmp_path, n=2, every=4, max_failed_share=0.1)
    asked = sorted((prompt_of(r.body), r.body["seed"], r.body["n"]) for r in server.received)
    failed = [f"p{i}" for i in (1, 6)]
    assert asked == sorted((_question(pid), request_seed(0, pid) + j, 1) for pid in failed for j in (0, 1))
    assert (stats.resumed_problems, stats.generated_problems, stats.failed, stats.rows) == (8, 2, 0, 20)
    assert table.column("error").null_count == 20


def test_failures_within_the_bound_stay_as_error_rows(server, make_teacher, problem_table, tmp_path):
    server.set_fault(lambda body, attempt: Reply(status=400) if prompt_of(body) == _question("p3") else None)
    table, stats = _sample(problem_table(10), make_teacher(), tmp_path, n=2, max_failed_share=0.1)
    errors = [(r["problem_id"], r["sample_idx"], r["error"]) for r in table.to_pylist() if r["error"]]
    assert errors == [("p3", 0, "bad_request"), ("p3", 1, "bad_request")] and table.num_rows == 20
    assert (stats.failed, dict(stats.errors)) == (2, {"bad_request": 2})


def test_sample_rows_record_the_prompt_exactly_as_sent(server, make_teacher, problem_table, tmp_path):
    """Chat messages (with the system message) and completion text, as the server received them."""
    chat = PromptTemplate("chat", 1, "Solve: {question}", system="Be brief.")
    completion = PromptTemplate("done", 1, "Q: {question}\nA: <think>", mode="completion")
    for template in (chat, completion):
        server.reset()
        table, _ = _sample(problem_table(3), make_teacher(), tmp_path / template.name, n=2, template=template)
        sent = {r.body["seed"]: r.body for r in server.received}  # one request per problem: its first seed
        for row in table.to_pylist():
            body = sent[request_seed(0, row["problem_id"])]
            assert row["prompt_version"] == template.id
            if template is chat:
                user = f"Solve: {_question(row['problem_id'])}"
                expected = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": user}]
                assert row["prompt_messages"] == body["messages"] == expected and row["prompt"] == user
            else:
                assert row["prompt_messages"] is None and "messages" not in body
                assert row["prompt"] == body["prompt"] == f"Q: {_question(row['problem_id'])}\nA: <think>"


def _question(problem_id: str) -> str:
    return f"How many {problem_id[1:]}?"  # conftest's problem_table


def _sample(problems, teacher, tmp_path, *, n, every=64, max_failed_share=0.0, template=PLAIN):
    """Sample shard 0 through a Sampler; returns the written shard and its statistics."""
    dataset = Store(str(tmp_path)).dataset("samples", "fp", "sample")
    params = SamplingParams(n=n, temperature=1.0, max_tokens=64)
    with Sampler(
        teacher,
        params,
        templates={template.name: template},
        prompt=template.name,
        base_seed=0,
        max_failed_share=max_failed_share,
        checkpoint_every_problems=every,
    ) as sampler:
        stats = sampler.sample_shard(0, problems, dataset)
    return dataset.read_shard(0), stats
