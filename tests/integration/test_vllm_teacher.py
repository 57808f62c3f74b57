"""The real vLLM engine (CPU build) with a tiny local model behind the teacher interface."""

from __future__ import annotations

import re

import pytest
from transformers import AutoTokenizer

from tracemill.prompts import BUILTIN
from tracemill.records import PROBLEM, to_table
from tracemill.sampling import request_seed, sample_shard
from tracemill.store import Store
from tracemill.teachers.base import SampleRequest, SamplingParams

ANSWER_FORMAT = r"<think>[a-z][a-z ]{0,11}</think>\n\*\*The answer is: \*\*[0-9]"


@pytest.fixture(scope="module")
def teacher(tiny_model, cpu_engine):
    from tracemill.teachers.offline import VllmTeacher

    engine = VllmTeacher(tiny_model, seed=0, **cpu_engine)
    yield engine
    engine.close()


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_n_samples_per_request_with_seeds_and_token_counts(teacher, tiny_model):
    params = SamplingParams(n=4, temperature=1.0, top_p=0.95, max_tokens=24)
    requests = [
        SampleRequest(f"p{i}", _chat(f"How many cubes are there in scene {i}?"), 4, 1000 + 10 * i) for i in range(3)
    ]
    results = teacher.generate(requests, params)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    for request, gens in zip(requests, results, strict=True):
        assert [g.sample_idx for g in gens] == [0, 1, 2, 3]
        assert [g.seed for g in gens] == [request.seed + i for i in range(4)]
        assert len({g.text for g in gens}) > 1  # distinct samples, not one repeated
        text = tokenizer.apply_chat_template(request.prompt, add_generation_prompt=True, tokenize=False)
        expected_prompt = len(tokenizer(text, add_special_tokens=False).input_ids)
        for g in gens:
            assert g.prompt_tokens == expected_prompt
            assert 1 <= g.completion_tokens <= 24
            assert g.finish_reason in {"length", "stop"}
            if g.finish_reason == "length":
                assert g.completion_tokens == 24
            assert g.latency_s > 0


def test_a_sample_reruns_alone_from_its_seed(teacher):
    params = SamplingParams(n=4, temperature=1.0, max_tokens=16)
    batch = teacher.generate([SampleRequest("p", _chat("Count the spheres."), 4, 4242)], params)[0]
    again = teacher.generate([SampleRequest("p", _chat("Count the spheres."), 4, 4242)], params)[0]
    assert [g.text for g in again] == [g.text for g in batch]
    alone = teacher.generate(
        [SampleRequest("p", _chat("Count the spheres."), 1, 4242 + 2, first_idx=2)],
        SamplingParams(**{**params.__dict__, "n": 1}),
    )[0]
    assert alone[0].sample_idx == 2 and alone[0].text == batch[2].text


def test_guided_decoding_and_reasoning_split_through_the_stage(teacher, tmp_path):
    problems = to_table(
        [
            {"problem_id": f"q{i}", "source": "t", "split": "train", "question": f"How many things? ({i})",
             "answer": "3", "answer_type": "integer", "description": "Scene Description:\nA small red metal cube\n",
             "prompt_template": "clevr_v2"}
            for i in range(5)
        ],
        PROBLEM,
    )  # fmt: skip
    params = SamplingParams(n=3, temperature=1.0, max_tokens=60, guided_regex=ANSWER_FORMAT)
    checkpoints = Store(str(tmp_path)).dataset("samples", "fp", "sample").checkpoints(0, "b2")
    table, stats = sample_shard(
        problems, teacher, params, templates=BUILTIN, prompt=None, base_seed=7, batch_size=2,
        checkpoints=checkpoints, max_failed_share=0.0,
    )  # fmt: skip
    rows = table.to_pylist()
    assert [(r["problem_id"], r["sample_idx"]) for r in rows] == [(f"q{i}", j) for i in range(5) for j in range(3)]
    for row in rows:
        assert row["reasoning"] and re.fullmatch(r"[a-z][a-z ]{0,11}", row["reasoning"])
        assert re.fullmatch(r"\*\*The answer is: \*\*[0-9]", row["response"])
        assert row["prompt_version"] == BUILTIN["clevr_v2"].id and row["teacher"] == teacher.model
        assert row["seed"] == request_seed(7, row["problem_id"]) + row["sample_idx"]
        assert row["error"] is None and row["finish_reason"] == "stop"
    assert stats.generated_batches == 3 and stats.completion_tokens == sum(r["completion_tokens"] for r in rows)


def test_completion_prompt_that_opens_think(teacher):
    template = BUILTIN["r1_think_answer"]
    prompt = template.render({"problem_id": "x", "question": "How many cubes?"})
    assert isinstance(prompt, str) and prompt.endswith("Assistant: <think>") and template.opens_think
    params = SamplingParams(
        n=2, temperature=1.0, max_tokens=40, guided_regex=r"[a-z ]{1,20}</think> <answer> [0-9] </answer>"
    )
    gens = teacher.generate([SampleRequest("x", prompt, 2, 5)], params)[0]
    from tracemill.teachers.base import split_reasoning

    for g in gens:
        reasoning, response = split_reasoning(g.text, None, prompt_opens_think=True)
        assert reasoning and "</think>" not in reasoning
        assert re.fullmatch(r"<answer> [0-9] </answer>", response)
