"""The judge prompt, its strict verdict parsing, and the judge through a local OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_judge import fake_judge, predicted_of
from tests.fake_openai import FakeOpenAI, Reply, prompt_of
from tracemill.judging.llm_judge import VERDICT_REGEX, JudgeItem, ask_judge, judge_prompt, parse_judgement
from tracemill.seeds import request_seed
from tracemill.teachers.base import SamplingParams
from tracemill.teachers.endpoint import EndpointTeacher


@pytest.fixture
def judge_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def endpoint(judge_server: FakeOpenAI) -> Iterator[EndpointTeacher]:
    teacher = EndpointTeacher(
        base_url=judge_server.url, model="judge-m", api_key=None, max_retries=0, backoff_base_s=0.01, timeout_s=30
    )
    yield teacher
    teacher.close()


def test_prompt_holds_the_problem_and_both_answers_verbatim():
    [message] = judge_prompt("Simplify {x}/2 when $x = 1$.", "\\frac{1}{2}", "  0.5 ")
    assert message["role"] == "user"
    assert message["content"].endswith(
        "Problem: Simplify {x}/2 when $x = 1$.\nReference answer: \\frac{1}{2}\nPredicted answer: 0.5\n"
    )
    assert '"Judgement: Yes" or "Judgement: No"' in message["content"]
    assert "Reference answer: \\frac{1}{4}" in message["content"]  # the worked examples' braces survive formatting


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Reasoning: Both are one half.\nJudgement: Yes", True),
        ("Reasoning: Different values.\nJudgement: No", False),
        ("Judgement: Yes", True),
        ("  Judgement: No  \n\n", False),
        ("Judgement: Yes\nJudgement: No", False),  # the last line is the verdict
        ("<think>Maybe Judgement: No.</think>\nReasoning: equal.\nJudgement: Yes", True),
        ("Considering it.</think>Judgement: No", False),  # a prompt that opened <think>
        ("<think>still thinking Judgement: Yes", None),  # cut off inside its reasoning
        ("Judgement: Yes\nOn second thought they differ.", None),
        ("Judgement: Yes, probably", None),
        ("**Judgement: Yes**", None),
        ("Judgement: yes", None),
        ("Judgment: Yes", None),
        ("Yes", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_final_verdict_line_decides(reply, verdict):
    assert parse_judgement(reply) is verdict


def test_judge_through_an_openai_compatible_endpoint(judge_server, endpoint):
    judge_server.set_fault(
        fake_judge({"0.5": "Reasoning: 0.5 is one half.\nJudgement: Yes", "3": "Reasoning: no.\nJudgement: No"})
    )
    items = [
        JudgeItem("p1/0", "What is 1/2?", "\\frac{1}{2}", "0.5"),
        JudgeItem("p1/1", "What is 1/2?", "\\frac{1}{2}", "3"),
        JudgeItem("p2/0", "Name the shape.", "cube", "a box, I think"),
    ]
    params = SamplingParams(n=1, temperature=0.0, max_tokens=64, guided_regex=VERDICT_REGEX)
    assert ask_judge(items, endpoint, params, base_seed=7) == [True, False, None]

    bodies = {predicted_of(r.body): r.body for r in judge_server.received}
    assert set(bodies) == {"0.5", "3", "a box, I think"}
    for item in items:
        body = bodies[item.predicted]
        assert body["seed"] == request_seed(7, item.key)  # the same comparison gets the same seed on every run
        assert body["structured_outputs"] == {"regex": VERDICT_REGEX}
        assert body["temperature"] == 0.0 and body["n"] == 1
        assert f"Reference answer: {item.reference}\n" in prompt_of(body)


def test_a_failed_judge_request_is_no_verdict(judge_server, endpoint):
    judge_server.set_fault(lambda body, attempt: Reply(status=400))
    items = [JudgeItem("p/0", "What is 2+2?", "4", "4")]
    assert ask_judge(items, endpoint, SamplingParams(n=1, temperature=0.0, max_tokens=8)) == [None]


def test_nothing_to_judge_sends_nothing(judge_server, endpoint):
    assert ask_judge([], endpoint, SamplingParams()) == []
    assert judge_server.received == []
