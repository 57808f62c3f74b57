"""``tracemill plan`` against what a build really asks: calls counted at the local OpenAI-compatible server
(the teacher and an LM-judge verifier with two verdicts per sample), cost from the blocks' prices, and the
measured completion length of the finished build in the next plan."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from blocks.teacher_endpoint import TeacherEndpoint
from flows import cli
from flows.build import build_dataset
from flows.plan import build_plan
from tests.fake_judge import chat_reply
from tests.fake_openai import FakeOpenAI
from tracemill.build import BuildConfig
from tracemill.store import Store


def test_plan_counts_the_calls_the_build_makes(prefect_api, tmp_path, capsys):
    with FakeOpenAI() as server:
        prices = {"input_price_per_million": 0.5, "output_price_per_million": 2.0}
        TeacherEndpoint(base_url=server.url, model="fake-teacher", **prices).save("plan-teacher", overwrite=True)
        TeacherEndpoint(base_url=server.url, model="judge-m").save("plan-judge", overwrite=True)
        server.set_fault(lambda body, attempt: chat_reply("Judgement: Yes") if body["model"] == "judge-m" else None)
        data = {
            "name": "plan-test",
            "source": {"kind": "clevr_procedural", "num_scenes": 3, "questions_per_scene": 1, "scenes_per_shard": 2},
            "store": {"url": str(tmp_path / "store")},
            "sampling": {"teacher": {"kind": "endpoint", "block": "plan-teacher"}, "n": 3, "max_tokens": 100},
            "scores": {"verifiers": [{"kind": "lm_judge", "name": "judge", "verdicts_per_sample": 2, "max_tokens": 8,
                                      "teacher": {"kind": "endpoint", "block": "plan-judge"}}]},
            "filters": {"require_reasoning": False, "correct_only": False},
        }  # fmt: skip
        path = tmp_path / "build.yaml"
        path.write_text(yaml.safe_dump(data))
        config = BuildConfig.model_validate(data)

        assert cli.main(["plan", str(path)]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0].split() == ["stage", "model", "calls", "prompt_tokens", "completion_tokens",
                                               "cost", "basis"]  # fmt: skip
        sampling, judge = build_plan(config)
        problems = 3 * 2  # a counting question and 'how many items' per scene
        assert (sampling["stage"], sampling["calls"], sampling["completion_tokens"]) == ("sampling", 18, 1800)
        assert sampling["prompt_tokens"] > 0 and sampling["basis"] == "completion: max_tokens"
        assert sampling["cost"] == pytest.approx((sampling["prompt_tokens"] * 0.5 + 1800 * 2.0) / 1e6)
        assert (judge["stage"], judge["calls"], judge["completion_tokens"], judge["cost"]) == (
            "scores: judge", problems * 3 * 2, problems * 3 * 2 * 8, None  # the judge's block has no prices
        )  # fmt: skip
        printed = [line.split("  ") for line in out.splitlines()]
        assert [[c.strip() for c in line if c.strip()][:3] for line in printed[1:]] == [
            ["sampling", "plan-teacher", "18"], ["scores: judge", "plan-judge", str(judge["calls"])]
        ]  # fmt: skip

        locations = build_dataset(config=config)
        made = [r.body["model"] for r in server.received]
        assert made.count("fake-teacher") == sampling["calls"] and made.count("judge-m") == judge["calls"]

    store = Store(config.store.url)
    scores = store.dataset("scores", Path(locations["scores"]).name, "score").read().to_pylist()
    assert len(scores) == problems * 3 and all(r["verdicts"] == [1.0, 1.0] and r["score"] == 1.0 for r in scores)
    # The next plan of the same build takes the completion length the build measured.
    samples = store.dataset("samples", Path(locations["samples"]).name, "sample").read()
    mean = sum(samples.column("completion_tokens").to_pylist()) / samples.num_rows
    again = build_plan(config)[0]
    assert again["basis"] == "completion: measured mean" and again["completion_tokens"] == round(18 * mean)
