"""What the sampling and vLLM teacher settings do to the samples fingerprint and the engine arguments."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tracemill.sampling.config import SamplingConfig
from tracemill.sampling.stage import Progress, Sampler
from tracemill.teachers.config import EndpointTeacherConfig, VllmTeacherConfig
from tracemill.teachers.endpoint import EndpointTeacher
from tracemill.teachers.factory import EndpointSettings, build_teacher, teacher_identity
from tracemill.teachers.ratelimit import RateLimiter


def _config(**teacher) -> SamplingConfig:
    return SamplingConfig(teacher=VllmTeacherConfig(model="m", **teacher), n=4)


def test_the_identity_of_existing_stores_holds():
    """Defaults add no keys, so samples written before these settings keep their fingerprint."""
    assert _config().identity(teacher_identity(_config().teacher)) == {
        "prompt": None, "custom_prompts": [], "n": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 4096,
        "seed": 0, "guided_regex": None, "guided_json": None,
        "templates": {name: t.id for name, t in sorted(_config().templates().items())},
        "teacher": {"kind": "vllm", "model": "m", "dtype": "auto", "max_model_len": None},
    }  # fmt: skip


def test_only_settings_that_change_output_change_the_identity():
    base = teacher_identity(_config().teacher)
    same = [
        _config(enable_prefix_caching=False, max_num_seqs=512),
        SamplingConfig(
            teacher=VllmTeacherConfig(model="m"),
            n=4,
            checkpoint_every_problems=7,
            checkpoint_every_s=5,
            shards_at_once=16,
            max_failed_share=0.5,
        ),
    ]
    for config in same:
        assert config.identity(teacher_identity(config.teacher)) == _config().identity(base)
    assert teacher_identity(_config(kv_cache_dtype="fp8").teacher)["kv_cache_dtype"] == "fp8"
    eagle = teacher_identity(_config(speculative_method="eagle3", speculative_model="draft").teacher)
    assert {k: v for k, v in eagle.items() if k not in base} == {
        "speculative_method": "eagle3",
        "speculative_model": "draft",
    }


def test_an_endpoint_is_named_by_its_url_and_model_not_its_block_or_limits():
    config = EndpointTeacherConfig(block="deepseek")
    endpoint = EndpointSettings(base_url="https://api.example/v1", model="r1", api_key="sk-secret")
    identity = {"kind": "endpoint", "base_url": "https://api.example/v1", "model": "r1"}
    assert teacher_identity(config, endpoint) == identity
    slower = EndpointSettings(base_url="https://api.example/v1", model="r1", max_concurrency=1, requests_per_minute=5)
    assert teacher_identity(config.model_copy(update={"block": "other", "timeout_s": 5.0}), slower) == identity
    assert teacher_identity(config, EndpointSettings(base_url="https://api.example/v1", model="r2")) != identity
    assert "sk-secret" not in repr(endpoint)
    with pytest.raises(ValueError, match="names the endpoint block 'deepseek'"):
        teacher_identity(config)
    with pytest.raises(ValueError, match="takes no endpoint settings"):
        build_teacher(VllmTeacherConfig(model="m"), endpoint)


def test_the_factory_builds_an_endpoint_teacher_from_plain_settings():
    limiter = RateLimiter(None, None)
    endpoint = EndpointSettings(
        base_url="http://127.0.0.1:1/v1", model="r1", api_key="k", max_concurrency=3, limiter=lambda: limiter
    )
    teacher = build_teacher(EndpointTeacherConfig(block="b", supports_n=True, timeout_s=9.0, max_retries=2), endpoint)
    assert isinstance(teacher, EndpointTeacher)
    assert (teacher.base_url, teacher.model, teacher.max_concurrency, teacher.timeout_s) == (
        endpoint.base_url,
        "r1",
        3,
        9.0,
    )
    assert (teacher.max_retries, teacher.supports_n, teacher._make_limiter()) == (2, True, limiter)


def test_engine_arguments_name_vllm_settings():
    args = _config(speculative_method="ngram", num_speculative_tokens=5, kv_cache_dtype="fp8").teacher.engine_args()
    assert args["speculative_config"] == {"method": "ngram", "num_speculative_tokens": 5}
    assert args["enable_prefix_caching"] is True and args["kv_cache_dtype"] == "fp8"
    assert not {"speculative_method", "speculative_model", "num_speculative_tokens"} & set(args)
    assert "speculative_config" not in _config().teacher.engine_args()
    with pytest.raises(ValidationError):
        _config(kv_cache_dtype="int3")


def test_progress_counts_tokens_over_the_last_minute_and_estimates_the_rest(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("tracemill.sampling.stage.time.monotonic", lambda: clock[0])
    sampler = Sampler(
        teacher=None,  # type: ignore[arg-type]
        params=None,  # type: ignore[arg-type]
        templates={},
        prompt=None,
        base_seed=0,
        max_failed_share=0.0,
    )
    sampler._total = 100
    assert sampler._progress() == Progress(0, 100, 0.0, None)
    for t in range(10):  # a problem of 300 tokens every 6 seconds
        clock[0] = 1000.0 + 6 * (t + 1)
        sampler._recent.append((clock[0], 1, 300))
        sampler._done += 1
    progress = sampler._progress()
    assert progress == Progress(10, 100, 50.0, 540)  # 300 tokens / 6 s; 90 problems left at 10 a minute
    assert progress.line() == "10/100 problems, 50 tokens/s, ETA 540s"
    clock[0] += 120  # nothing for two minutes: no rate, no estimate
    assert sampler._progress() == Progress(10, 100, 0.0, None)
