"""What the sampling and vLLM teacher settings do to the samples fingerprint and the engine arguments."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tracemill.sampling.stage import Progress, Sampler
from tracemill.teachers.config import SamplingConfig, VllmTeacherConfig


def _config(**teacher) -> SamplingConfig:
    return SamplingConfig(teacher=VllmTeacherConfig(model="m", **teacher), n=4)


def test_the_identity_of_existing_stores_holds():
    """Defaults add no keys, so samples written before these settings keep their fingerprint."""
    assert _config().identity(_config().teacher.identity()) == {
        "prompt": None, "custom_prompts": [], "n": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 4096,
        "seed": 0, "guided_regex": None, "guided_json": None,
        "templates": {name: t.id for name, t in sorted(_config().templates().items())},
        "teacher": {"kind": "vllm", "model": "m", "dtype": "auto", "max_model_len": None},
    }  # fmt: skip


def test_only_settings_that_change_output_change_the_identity():
    base = _config().teacher.identity()
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
        assert config.identity(config.teacher.identity()) == _config().identity(base)
    assert _config(kv_cache_dtype="fp8").teacher.identity()["kv_cache_dtype"] == "fp8"
    eagle = _config(speculative_method="eagle3", speculative_model="draft", num_speculative_tokens=3).teacher
    assert eagle.identity()["speculative"] == {"method": "eagle3", "num_speculative_tokens": 3, "model": "draft"}
    # num_speculative_tokens alone (speculation off) changes nothing
    assert _config(num_speculative_tokens=8).teacher.identity() == base


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
