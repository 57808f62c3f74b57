"""Pinned fingerprints of the stages of ``configs/demo.yaml``.

A fingerprint names a dataset's folder in the store, so a refactor that changes how one is derived
(the identity taken from a config, the order of inputs, the hash payload) silently orphans every
existing store: the next build recomputes everything beside the old datasets. These pins make such a
change fail here instead. A deliberate change (a bumped code version, a new field that changes
output) updates the pin in the same commit and says so in the README's changelog.

The problems stage is pinned whole. Every later stage is pinned on fixed placeholder input
fingerprints, so a deliberate change upstream (the samples schema) does not move the pins below it,
and with the code versions that change on their own replaced by fixed ones: the grader's version is
a hash of the grading modules' source, so any edit to them moves it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tracemill.build import BuildConfig, load_build_config
from tracemill.export.layouts import export_dir
from tracemill.filtering import stage as filters
from tracemill.judging import stage as judging
from tracemill.problems import stage as problems
from tracemill.sampling import stage as sampling
from tracemill.scoring import scores
from tracemill.scoring.config import ScoresConfig
from tracemill.store import Store, fingerprint

DEMO = Path(__file__).parents[2] / "configs" / "demo.yaml"
PROBLEMS, SAMPLES, RELABEL, VERDICTS, KEPT, SCORES = ("p" * 16, "s" * 16, "r" * 16, "v" * 16, "k" * 16, "c" * 16)


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch) -> BuildConfig:
    monkeypatch.setattr(judging, "CODE_VERSION", "judging-pinned")
    monkeypatch.setattr(sampling, "CODE_VERSION", "sampling-pinned")
    return load_build_config(DEMO)


def test_the_hash_itself_is_pinned() -> None:
    assert fingerprint("stage", {"b": [1, 2], "a": "x"}, "code-1", ["i1", "i2"]) == "eb291699369cc0ab"


def test_problems(demo: BuildConfig, tmp_path: Path) -> None:
    assert problems.stage_fingerprint(demo.source, Store(str(tmp_path))) == "3a7f7a1dc9f0bcfe"


def test_samples_identity(demo: BuildConfig) -> None:
    assert sampling.samples_stage(demo.sampling, PROBLEMS).fingerprint == "f36148819361e3a0"


def test_judging_stages(demo: BuildConfig) -> None:
    stages = judging.judging_stages(demo.judge, demo.relabel, PROBLEMS, SAMPLES)
    assert {name: stage.fingerprint for name, stage in stages.items()} == {
        "verdicts": "7934270373ee443f",
        "relabel": "5f599c6680ffcb04",
        "rejudged": "771c34c4e9fe58dd",
    }


def test_kept(demo: BuildConfig) -> None:
    # Moved once, deliberately: filters.custom_prompts left FilterConfig (kept prompts are read from the samples).
    stage = filters.kept_stage(demo.filters, RELABEL, VERDICTS)
    assert stage.fingerprint == "02933dc462b94960" and stage.inputs == (RELABEL, VERDICTS)


def test_exports(demo: BuildConfig, tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    assert export_dir(store, KEPT, demo.export).fingerprint == "a6c94bee24ab1bf2"
    assert export_dir(store, KEPT, demo.export, SCORES).fingerprint == "3c9792217a22d745"


def test_scores() -> None:
    """The demo has no verifiers; one reward model pins how a verifier's identity is derived."""
    config = ScoresConfig.model_validate({"verifiers": [{"kind": "reward_model", "name": "orm", "model": "./m"}]})
    assert scores.scores_stage(config, RELABEL, VERDICTS).fingerprint == "a63dfb8361984fd4"
