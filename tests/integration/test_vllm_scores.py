"""Verifiers on the real vLLM engine (CPU build): a tiny reward model made locally, scored with the pooling
runner as an outcome reward model (``classify``) and as a process reward model (``token_classify``), and
an LM judge on the tiny chat model, guided to a verdict line."""

from __future__ import annotations

import re

import pytest

from tracemill.judging.llm_judge import VERDICT_REGEX
from tracemill.records import PROBLEM, SCORE, VERDICT, to_table
from tracemill.scoring.config import LmJudgeVerifier, ProcessRewardModelVerifier, RewardModelVerifier
from tracemill.scoring.pooling import Encoded, encode
from tracemill.scoring.scores import lm_judge_prompt, score_shard, steps_of, verifier_prompt
from tracemill.seeds import request_seed
from tracemill.teachers.base import SampleRequest
from tracemill.teachers.config import VllmTeacherConfig

pytestmark = pytest.mark.vllm

TRACES = [
    ("Count them.\n\nThere are three cubes.", "**The answer is: **3"),
    ("I look at the scene.", "**The answer is: **4"),
    (None, "3"),
    (None, None),  # a failed sample
]
ENGINE = {"max_num_seqs": 16, "kv_cache_memory_bytes": 128 * 1024**2, "enforce_eager": True,
          "enable_chunked_prefill": False, "max_num_batched_tokens": 4096}  # fmt: skip


def tables():
    problems = to_table(
        [{"problem_id": "p", "source": "clevr", "split": "val", "question": "How many cubes are there?",
          "answer": "3", "answer_type": "integer", "description": "A red cube. A blue cube. A green cube."}],
        PROBLEM,
    )  # fmt: skip
    verdicts = to_table(
        [
            {"problem_id": "p", "sample_idx": i, "teacher": "t", "prompt_version": "v", "prompt": "q",
             "reasoning": reasoning, "response": response, "decided_by": "exact"}
            for i, (reasoning, response) in enumerate(TRACES)
        ],
        VERDICT,
    )  # fmt: skip
    return problems, verdicts


def verifiers(reward_model):
    rm = RewardModelVerifier(name="rm", model=reward_model, dtype="float32", max_length=512)
    prm = ProcessRewardModelVerifier(name="prm", model=reward_model, dtype="float32", max_length=512)
    return rm, prm


def test_reward_and_process_reward_models_on_the_pooling_runner(reward_model):
    from tracemill.scoring.pooling import PoolingScorer

    rm, prm = verifiers(reward_model)
    problems, verdicts = tables()
    scorers = {"rm": PoolingScorer(rm, **ENGINE)}
    try:
        rows = score_shard(problems, verdicts, [rm], lambda v: scorers[v.name])
        scorers["prm"] = PoolingScorer(prm, **ENGINE)
        table = score_shard(problems, verdicts, [rm, prm], lambda v: scorers[v.name])
        assert table.schema.equals(SCORE)
        assert table.slice(0, 4).to_pylist() == rows.to_pylist()  # the same inputs, the same scores
        out = table.to_pylist()
        rm_rows, prm_rows = out[:4], out[4:]
        assert [r["kind"] for r in out] == ["reward_model"] * 4 + ["process_reward_model"] * 4
        for row in rm_rows[:3]:
            assert 0.0 < row["score"] < 1.0 and row["truncated"] is False and row["tokens"] > 10
            assert row["step_scores"] is None and row["verdicts"] is None
        assert len({r["score"] for r in rm_rows[:3]}) == 3  # different texts, different scores
        assert rm_rows[3]["score"] is None and rm_rows[3]["tokens"] is None  # a failed sample: a row, no score

        # The PRM: one score per step (the full trace of sample 0 has three), min/max/avg of them.
        assert [len(r["step_scores"]) for r in prm_rows[:3]] == [3, 2, 1]
        for row in prm_rows[:3]:
            steps = row["step_scores"]
            assert (row["min_score"], row["max_score"], row["score"]) == (min(steps), max(steps), min(steps))
            assert row["avg_score"] == pytest.approx(sum(steps) / len(steps))
        # A one-step text is one sequence: its step score is the reward model's score of it.
        assert prm_rows[2]["step_scores"][0] == pytest.approx(rm_rows[2]["score"], abs=1e-5)
        # Each step score is read at its step's last token: the classify score of the text up to there.
        tokenizer = scorers["rm"].tokenizer
        full = "<think>\nCount them.\n\nThere are three cubes.\n</think>\n\n**The answer is: **3"
        encoded = encode(tokenizer, verifier_prompt(problems.to_pylist()[0]), steps_of(full, "\n\n"), 512)
        prefixes = [Encoded(encoded.token_ids[: end + 1], [end], False) for end in encoded.ends]
        expected = [s[0] for s in scorers["rm"].score(prefixes)]
        assert prm_rows[0]["step_scores"] == pytest.approx(expected, abs=1e-5)

        # A max_length below the text: the row is marked truncated and the scored length is max_length.
        short = rm.model_copy(update={"max_length": 40})
        cut = score_shard(problems, verdicts, [short], lambda v: scorers["rm"]).to_pylist()
        assert cut[0]["truncated"] is True and cut[0]["tokens"] == 40 and cut[0]["score"] != rm_rows[0]["score"]
        answer_only = score_shard(
            problems, verdicts, [rm.model_copy(update={"text": "answer"})], lambda v: scorers["rm"]
        ).to_pylist()
        assert answer_only[0]["tokens"] < rm_rows[0]["tokens"] and answer_only[2]["score"] == rm_rows[2]["score"]
    finally:
        for scorer in scorers.values():
            scorer.close()


def test_lm_judge_on_the_engine_with_guided_decoding(tiny_model, tiny_engine):
    verifier = LmJudgeVerifier(
        name="judge",
        teacher=VllmTeacherConfig(model=tiny_model),
        verdicts_per_sample=2,
        temperature=1.0,
        max_tokens=16,
        guided_regex=VERDICT_REGEX,
    )
    problems, verdicts = tables()
    rows = score_shard(problems, verdicts, [verifier], lambda v: tiny_engine).to_pylist()
    for row in rows[:3]:
        assert len(row["verdicts"]) == 2 and all(v in (0.0, 1.0) for v in row["verdicts"])
        assert row["score"] == pytest.approx(sum(row["verdicts"]) / 2)
    assert rows[3]["verdicts"] is None
    # Verdict i is the engine's reply with seed base + i, alone: the same text.
    key = "p/0"
    prompt = lm_judge_prompt("A red cube. A blue cube. A green cube.\nHow many cubes are there?", TRACES[0][1])
    seed = request_seed(0, f"judge\x1f{key}")
    [generations] = tiny_engine.generate([SampleRequest(key, prompt, 1, seed + 1, first_idx=1)], verifier.params())
    assert re.fullmatch(VERDICT_REGEX, generations[0].text)
    assert float(generations[0].text.endswith("Yes")) == rows[0]["verdicts"][1]
