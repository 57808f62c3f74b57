"""The real vLLM engine (CPU build) with a tiny local model behind the teacher interface."""

from __future__ import annotations

import re
import threading

import pytest
from transformers import AutoTokenizer

from tracemill.records import PROBLEM, to_table
from tracemill.sampling.prompts import BUILTIN
from tracemill.sampling.stage import Sampler, SamplingFailedError
from tracemill.seeds import request_seed
from tracemill.store import Store
from tracemill.teachers.base import SampleRequest, SamplingParams

ANSWER_FORMAT = r"<think>[a-z][a-z ]{0,11}</think>\n\*\*The answer is: \*\*[0-9]"


@pytest.fixture
def teacher(tiny_engine):
    return tiny_engine  # shared with the judge and verifier tests (tests/integration/conftest.py)


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


def _problems(ids: list[str], question: str = "How many things?") -> object:
    return to_table(
        [
            {"problem_id": pid, "source": "t", "split": "train", "question": f"{question} ({pid})",
             "answer": "3", "answer_type": "integer", "description": "Scene Description:\nA small red metal cube\n",
             "prompt_template": "clevr_v2"}
            for pid in ids
        ],
        PROBLEM,
    )  # fmt: skip


def test_guided_decoding_and_reasoning_split_through_the_stage(teacher, tmp_path):
    params = SamplingParams(n=3, temperature=1.0, max_tokens=60, guided_regex=ANSWER_FORMAT)
    dataset = Store(str(tmp_path)).dataset("samples", "fp", "sample")
    problems = _problems([f"q{i}" for i in range(5)])
    with Sampler(
        teacher, params, templates=BUILTIN, prompt=None, base_seed=7, max_failed_share=0.0, checkpoint_every_problems=2
    ) as sampler:
        stats = sampler.sample_shard(0, problems, dataset)
    sent = {p["problem_id"]: BUILTIN["clevr_v2"].render(p) for p in problems.to_pylist()}
    rows = dataset.read_shard(0).to_pylist()
    assert [(r["problem_id"], r["sample_idx"]) for r in rows] == [(f"q{i}", j) for i in range(5) for j in range(3)]
    for row in rows:
        assert row["reasoning"] and re.fullmatch(r"[a-z][a-z ]{0,11}", row["reasoning"])
        assert re.fullmatch(r"\*\*The answer is: \*\*[0-9]", row["response"])
        assert row["prompt_version"] == BUILTIN["clevr_v2"].id and row["teacher"] == teacher.model
        [user] = sent[row["problem_id"]]  # clevr_v2 is a chat prompt of one user message
        assert row["prompt_messages"] == [user] and row["prompt"] == user["content"]
        assert row["seed"] == request_seed(7, row["problem_id"]) + row["sample_idx"]
        assert row["error"] is None and row["finish_reason"] == "stop"
    assert stats.generated_problems == 5 and stats.completion_tokens == sum(r["completion_tokens"] for r in rows)
    assert not dataset.checkpoints(0, "stream").shard_indices()  # cleared once the shard is written


def test_the_engine_stays_full_across_shards(teacher, tmp_path, monkeypatch):
    """Three shards sampled at once: while any problem is unsent, the engine holds at least the window."""
    monkeypatch.setattr(teacher, "window", 24)
    engine = teacher.llm.llm_engine
    step = engine.step
    seen: list[tuple[int, int, int]] = []  # (sequences in the engine, problems unsent, shards written) per step
    written: list[int] = []

    def recording_step():
        seen.append((engine.get_num_unfinished_requests(), sampler.unsent, len(written)))
        return step()

    monkeypatch.setattr(engine, "step", recording_step)
    params = SamplingParams(n=4, temperature=1.0, max_tokens=256)  # lengths set by the model's own EOS
    dataset = Store(str(tmp_path)).dataset("samples", "fp", "sample")
    with Sampler(teacher, params, templates=BUILTIN, prompt=None, base_seed=1, max_failed_share=0.0) as sampler:

        def shard(index: int) -> None:
            sampler.sample_shard(index, _problems([f"s{index}p{i}" for i in range(8)]), dataset)
            written.append(index)

        threads = [threading.Thread(target=shard, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(written) == [0, 1, 2] and sum(dataset.read_shard(i).num_rows for i in range(3)) == 96
    starved = [(queued, unsent) for queued, unsent, _ in seen if unsent and queued < teacher.window]
    assert not starved, f"the engine held fewer than {teacher.window} sequences with work unsent: {starved[:5]}"
    assert any(unsent and done for _, unsent, done in seen)  # still full after the first shard was written
    lengths = dataset.read_shard(0).column("completion_tokens").to_pylist()
    assert len(set(lengths)) > 3  # varied lengths: a barrier would have drained the engine


def test_a_prompt_longer_than_the_context_is_a_failed_sample_not_a_dead_shard(teacher, tmp_path):
    problems = _problems(["ok0", "long", "ok1"])
    long_question = " ".join(f"cube{i} sphere{i}" for i in range(2000))  # ~18k tokens, far past max_model_len=2048
    problems = problems.set_column(
        problems.schema.get_field_index("question"),
        "question",
        [["How many things? (ok0)", long_question, "How many things? (ok1)"]],
    )
    params = SamplingParams(n=2, temperature=1.0, max_tokens=16)
    dataset = Store(str(tmp_path)).dataset("samples", "fp", "sample")
    # Bounded at 0, the shard fails (checkpointing what it finished); within the bound it is written.
    strict = Sampler(teacher, params, templates=BUILTIN, prompt=None, base_seed=0, max_failed_share=0.0)
    with strict, pytest.raises(SamplingFailedError, match="2 of 6 samples of shard 0 failed .prompt_too_long: 2."):
        strict.sample_shard(0, problems, dataset)
    with Sampler(teacher, params, templates=BUILTIN, prompt=None, base_seed=0, max_failed_share=0.5) as sampler:
        stats = sampler.sample_shard(0, problems, dataset)
    rows = dataset.read_shard(0).to_pylist()
    assert [(r["problem_id"], r["sample_idx"], r["error"]) for r in rows] == [
        ("ok0", 0, None), ("ok0", 1, None), ("long", 0, "prompt_too_long"), ("long", 1, "prompt_too_long"),
        ("ok1", 0, None), ("ok1", 1, None),
    ]  # fmt: skip
    assert stats.too_long == ["long"] and dict(stats.errors) == {"prompt_too_long": 2} and stats.failed == 2
    # The rerun kept the failed rows rather than asking again: the prompt would not fit the second time either.
    assert (stats.resumed_problems, stats.generated_problems, stats.generated_tokens) == (3, 0, 0)


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
