"""The LLM judge on the real vLLM engine (CPU build, tiny local model), guided to emit the verdict line.

The tiny model's text is random; guided decoding with VERDICT_REGEX still makes every reply a verdict.
"""

from __future__ import annotations

import re

import pytest

from tracemill.judging import stage as judging
from tracemill.judging.config import JudgeConfig, JudgeMode
from tracemill.judging.llm_judge import VERDICT_REGEX, JudgeItem, ask_judge, judge_prompt, parse_judgement
from tracemill.records import PROBLEM, SAMPLE, to_table
from tracemill.seeds import request_seed
from tracemill.teachers.base import SampleRequest, SamplingParams
from tracemill.teachers.config import VllmTeacherConfig

GUIDED = SamplingParams(n=1, temperature=1.0, top_p=1.0, max_tokens=16, guided_regex=VERDICT_REGEX)


@pytest.fixture
def judge_model(tiny_engine):
    return tiny_engine  # shared with the teacher and verifier tests (tests/integration/conftest.py)


def test_guided_decoding_makes_every_reply_a_verdict(judge_model):
    items = [JudgeItem(f"p{i}/0", f"How many cubes are in scene {i}?", str(i), str(i % 3)) for i in range(8)]
    verdicts = ask_judge(items, judge_model, GUIDED, base_seed=3)
    assert all(v is not None for v in verdicts)

    # The same requests again, raw: the text is exactly the verdict line, and it parses to the verdict above.
    requests = [
        SampleRequest(i.key, judge_prompt(i.problem, i.reference, i.predicted), 1, request_seed(3, i.key))
        for i in items
    ]
    texts = [gens[0].text for gens in judge_model.generate(requests, GUIDED)]
    assert all(re.fullmatch(VERDICT_REGEX, text) for text in texts)
    assert [parse_judgement(text) for text in texts] == verdicts


def test_llm_and_cascade_modes_record_the_judge(judge_model, tiny_model):
    problems = to_table(
        [{"problem_id": "cubes", "source": "clevr", "split": "val", "question": "How many cubes?", "answer": "3",
          "answer_type": "integer"}],
        PROBLEM,
    )  # fmt: skip
    responses = ["**The answer is: **3", "**The answer is: **4", "I lost count."]
    samples = to_table(
        [
            {
                "problem_id": "cubes",
                "sample_idx": i,
                "teacher": "t",
                "prompt_version": "v",
                "prompt": "q",
                "response": text,
            }
            for i, text in enumerate(responses)
        ],
        SAMPLE,
    )
    teacher = VllmTeacherConfig(model=tiny_model)
    llm = JudgeConfig(mode=JudgeMode.llm, teacher=teacher, max_tokens=16, temperature=1.0, guided_regex=VERDICT_REGEX)
    stats = judging.JudgeStats()
    rows = judging.judge_shard(problems, samples, llm, judge_model, stats=stats).to_pylist()
    assert [r["decided_by"] for r in rows[:2]] == ["llm_judge", "llm_judge"]
    assert all(isinstance(r["correct"], bool) for r in rows[:2])
    assert rows[2]["extracted"] is None and rows[2]["decided_by"] != "llm_judge"  # nothing to judge
    assert (stats.asked, stats.undecided) == (2, 0)

    cascade = llm.model_copy(update={"mode": JudgeMode.cascade, "recheck_negatives": True})
    rows = judging.judge_shard(problems, samples, cascade, judge_model).to_pylist()
    assert rows[0]["correct"] is True and rows[0]["decided_by"] != "llm_judge"  # the rules decided it
    assert rows[1]["decided_by"] == "llm_judge" and isinstance(rows[1]["correct"], bool)  # a rule negative
