"""The judging stage functions on shards: judge modes, relabel, and re-judging only what was relabelled.

The rules are the real grader; the judge model is an OpenAI-compatible endpoint (tests/fake_judge.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from tests.fake_judge import fake_judge, predicted_of
from tests.fake_openai import FakeOpenAI, prompt_of
from tracemill.judging import stage as judging
from tracemill.judging.config import JudgeConfig, JudgeMode, RelabelConfig
from tracemill.records import PROBLEM, RELABEL, SAMPLE, to_table
from tracemill.teachers.config import EndpointTeacherConfig
from tracemill.teachers.endpoint import EndpointTeacher

ENDPOINT = EndpointTeacherConfig(block="judge")  # only names the teacher; the tests build it themselves


def _problems() -> pa.Table:
    rows = [
        ("add", "What is 2 + 3?", "5", "integer", None),
        ("half", "What is 1/2 as a number?", "\\frac{1}{2}", "math", None),
        ("wrong-gold", "How many cubes?", "3", "integer", None),
        ("pick", "Which is a prime?", "B", "choice", ["4", "5", "6"]),
    ]
    return to_table(
        [
            {"problem_id": pid, "source": "unit", "split": "test", "question": q, "answer": a, "answer_type": t,
             "choices": c}
            for pid, q, a, t, c in rows
        ],
        PROBLEM,
    )  # fmt: skip


def _samples(responses: dict[str, list[str | None]]) -> pa.Table:
    rows = [
        {"problem_id": pid, "sample_idx": i, "teacher": "t", "prompt_version": "v", "prompt": "q", "response": text}
        for pid, texts in responses.items()
        for i, text in enumerate(texts)
    ]
    return to_table(rows, SAMPLE)


RESPONSES: dict[str, list[str | None]] = {
    "add": ["Adding gives \\boxed{5}.", "\\boxed{6}", "I am not sure."],
    "half": ["So it is \\boxed{0.5}."],
    "wrong-gold": ["**The answer is: **7", "\\boxed{7}", "Answer: 7", "\\boxed{2}"],
    "pick": ["Answer: B", "The answer is (C)"],
}


@pytest.fixture
def judge_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def judge_model(judge_server: FakeOpenAI) -> Iterator[EndpointTeacher]:
    teacher = EndpointTeacher(base_url=judge_server.url, model="judge-m", api_key=None, max_retries=0)
    yield teacher
    teacher.close()


def _by_key(table: pa.Table) -> dict[tuple[str, int], dict]:
    return {(r["problem_id"], r["sample_idx"]): r for r in table.to_pylist()}


def test_rules_judge_every_sample_and_keep_its_fields():
    samples = _samples(RESPONSES)
    verdicts = judging.judge_shard(_problems(), samples, JudgeConfig(), None)
    assert verdicts.select(SAMPLE.names).equals(samples)  # one verdict per sample, in order, fields unchanged
    got = {k: (r["extracted"], r["correct"]) for k, r in _by_key(verdicts).items()}
    assert got[("add", 0)] == ("5", True)
    assert got[("add", 1)] == ("6", False)
    assert got[("add", 2)][0] is None and got[("add", 2)][1] is not True
    assert got[("half", 0)][1] is True
    assert [got[("wrong-gold", i)][1] for i in range(4)] == [False] * 4
    assert got[("pick", 0)] == ("B", True) and got[("pick", 1)] == ("C", False)
    assert "llm_judge" not in verdicts["decided_by"].to_pylist()


def test_an_option_past_j_is_extracted_and_graded():
    # Sources accept up to 26 options; the letter K of an 11+-option problem is an answer like any other,
    # a letter past the problem's options is no answer (unparsed), and a hedge between two letters is never correct.
    choices = [f"option {i}" for i in range(12)]
    problems = to_table(
        [{"problem_id": "many", "source": "unit", "split": "test", "question": "Which?", "answer": "K",
          "answer_type": "choice", "choices": choices}],
        PROBLEM,
    )  # fmt: skip
    responses = ["Answer: K", "The answer is (k)", "Answer: J", "Answer: M", "The answer is K or L"]
    verdicts = _by_key(judging.judge_shard(problems, _samples({"many": responses}), JudgeConfig(), None))
    got = [(verdicts[("many", i)]["extracted"], verdicts[("many", i)]["correct"]) for i in range(len(responses))]
    assert got[:3] == [("K", True), ("K", True), ("J", False)]
    assert got[3] == (None, False)  # no answer among the options: unparsed, as any response without one
    assert got[4][1] is not True


def test_a_sample_of_an_unknown_problem_names_the_row():
    samples = _samples({"add": ["\\boxed{5}"], "nowhere": ["\\boxed{1}"]})
    with pytest.raises(ValueError, match=r"shard-7: row 1 field 'problem_id': 'nowhere' is not in the matching"):
        judging.judge_shard(_problems(), samples, JudgeConfig(), None, where="shard-7")


def test_llm_mode_lets_the_judge_decide_every_parsed_answer(judge_server, judge_model):
    judge_server.set_fault(fake_judge({"5": "Judgement: Yes", "6": "Reasoning: off by one.\nJudgement: No"}))
    config = JudgeConfig(mode=JudgeMode.llm, teacher=ENDPOINT)
    stats = judging.JudgeStats()
    samples = _samples({"add": RESPONSES["add"], "wrong-gold": ["\\boxed{7}"]})
    verdicts = _by_key(judging.judge_shard(_problems(), samples, config, judge_model, stats=stats))
    assert sorted(predicted_of(r.body) for r in judge_server.received) == ["5", "6", "7"]  # never the unparsed one
    assert (verdicts[("add", 0)]["correct"], verdicts[("add", 0)]["decided_by"]) == (True, "llm_judge")
    assert (verdicts[("add", 1)]["correct"], verdicts[("add", 1)]["decided_by"]) == (False, "llm_judge")
    assert verdicts[("add", 2)]["decided_by"] != "llm_judge"
    # No verdict line from the judge: the rules' verdict stands.
    assert verdicts[("wrong-gold", 0)]["correct"] is False and verdicts[("wrong-gold", 0)]["decided_by"] != "llm_judge"
    assert (stats.asked, stats.undecided, stats.overruled) == (3, 1, 0)
    prompt = prompt_of(next(r.body for r in judge_server.received if predicted_of(r.body) == "5"))
    assert "Problem: What is 2 + 3?\nReference answer: 5\nPredicted answer: 5" in prompt


def test_cascade_asks_the_judge_only_what_the_rules_leave_open(judge_server, judge_model):
    judge_server.set_fault(fake_judge({"6": "Judgement: Yes", "C": "Judgement: No"}))
    samples = _samples({"add": RESPONSES["add"], "pick": RESPONSES["pick"]})
    rules = _by_key(judging.judge_shard(_problems(), samples, JudgeConfig(), None))

    config = JudgeConfig(mode=JudgeMode.cascade, teacher=ENDPOINT)
    cascade = _by_key(judging.judge_shard(_problems(), samples, config, judge_model))
    open_ = {k for k, r in rules.items() if r["correct"] is None and r["extracted"] is not None}
    assert {predicted_of(r.body) for r in judge_server.received} == {rules[k]["extracted"] for k in open_}
    assert all(cascade[k] == rules[k] for k in rules if k not in open_)

    judge_server.reset()
    rechecked = _by_key(
        judging.judge_shard(_problems(), samples, config.model_copy(update={"recheck_negatives": True}), judge_model)
    )
    assert sorted(predicted_of(r.body) for r in judge_server.received) == ["6", "C"]  # the rule negatives
    assert (rechecked[("add", 1)]["correct"], rechecked[("add", 1)]["decided_by"]) == (True, "llm_judge")
    assert (rechecked[("pick", 1)]["correct"], rechecked[("pick", 1)]["decided_by"]) == (False, "llm_judge")
    assert rechecked[("add", 0)] == rules[("add", 0)] and rechecked[("add", 2)] == rules[("add", 2)]


def test_relabel_shard_records_the_audit_fields():
    problems = _problems()
    verdicts = judging.judge_shard(problems, _samples(RESPONSES), JudgeConfig(), None)
    relabel = {r["problem_id"]: r for r in judging.relabel_shard(problems, verdicts, RelabelConfig()).to_pylist()}
    assert set(relabel) == {"add", "half", "wrong-gold", "pick"}
    moved = relabel["wrong-gold"]
    assert (moved["answer"], moved["original_answer"], moved["relabeled"]) == ("7", "3", True)
    assert dict(moved["votes"]) == {"7": 3, "2": 1}
    for pid in ("add", "half", "pick"):  # a correct sample: no vote, gold kept
        assert (relabel[pid]["answer"], relabel[pid]["relabeled"], relabel[pid]["votes"]) == (
            relabel[pid]["original_answer"],
            False,
            None,
        )
    assert relabel["add"]["question"] == "What is 2 + 3?"  # the problem's fields carry over

    off = judging.relabel_shard(problems, verdicts, RelabelConfig(enabled=False)).to_pylist()
    assert not any(r["relabeled"] for r in off) and all(r["answer"] == r["original_answer"] for r in off)
    strict = judging.relabel_shard(problems, verdicts, RelabelConfig(min_votes=4)).to_pylist()
    assert not any(r["relabeled"] for r in strict)


def test_a_verified_gold_is_never_relabelled_and_sources_limit_relabelling():
    verdicts = judging.judge_shard(_problems(), _samples(RESPONSES), JudgeConfig(), None)
    rows = [{**row, "answer_trust": "verified"} if row["problem_id"] == "wrong-gold" else row
            for row in _problems().to_pylist()]  # fmt: skip
    verified = judging.relabel_shard(to_table(rows, PROBLEM), verdicts, RelabelConfig()).to_pylist()
    kept = next(r for r in verified if r["problem_id"] == "wrong-gold")
    assert (kept["answer"], kept["relabeled"], kept["votes"], kept["answer_trust"]) == ("3", False, None, "verified")
    stats = judging.relabel_stats(to_table(verified, RELABEL))
    assert stats["by_source"] == {"unit": {"problems": 4, "verified": 1, "relabeled": 0}}
    assert "| unit | 4 | 1 | 0 |" in judging.relabel_summary(stats)

    other = judging.relabel_shard(_problems(), verdicts, RelabelConfig(sources=["elsewhere"])).to_pylist()
    assert not any(r["relabeled"] for r in other)
    listed = judging.relabel_shard(_problems(), verdicts, RelabelConfig(sources=["unit"])).to_pylist()
    assert [r["problem_id"] for r in listed if r["relabeled"]] == ["wrong-gold"]


def test_rejudging_touches_only_the_samples_of_relabelled_problems(judge_server, judge_model):
    problems = _problems()
    verdicts = judging.judge_shard(problems, _samples(RESPONSES), JudgeConfig(), None)
    # A stale verdict on a problem that keeps its gold must pass through as it is, not be graded again.
    rows = verdicts.to_pylist()
    rows[0] = {**rows[0], "correct": False, "decided_by": "stale"}
    verdicts = to_table(rows, verdicts.schema)
    relabel = judging.relabel_shard(problems, verdicts, RelabelConfig())

    rejudged = judging.rejudge_shard(relabel, verdicts, JudgeConfig(), None)
    before, after = _by_key(verdicts), _by_key(rejudged)
    assert list(after) == list(before)
    for key, row in after.items():
        if key[0] != "wrong-gold":
            assert row == before[key]
    assert [after[("wrong-gold", i)]["correct"] for i in range(4)] == [True, True, True, False]
    assert after[("add", 0)]["decided_by"] == "stale"

    judge_server.set_fault(fake_judge({"2": "Judgement: No"}))
    config = JudgeConfig(mode=JudgeMode.llm, teacher=ENDPOINT)
    judging.rejudge_shard(relabel, verdicts, config, judge_model)
    asked = [prompt_of(r.body) for r in judge_server.received]
    assert len(asked) == 4 and all("Problem: How many cubes?\nReference answer: 7\n" in p for p in asked)


def test_stage_figures_count_sources_tiers_and_relabels():
    problems = _problems()
    verdicts = judging.judge_shard(problems, _samples(RESPONSES), JudgeConfig(), None)
    relabel = judging.relabel_shard(problems, verdicts, RelabelConfig())
    rejudged = judging.rejudge_shard(relabel, verdicts, JudgeConfig(), None)
    before, after = judging.verdict_stats(problems, verdicts), judging.verdict_stats(relabel, rejudged)
    assert before["by_source"]["unit"]["samples"] == 10
    assert before["by_source"]["unit"]["correct"] == 3 and after["by_source"]["unit"]["correct"] == 6
    assert after["by_source"]["unit"]["solved"] == 4 and before["by_source"]["unit"]["solved"] == 3
    assert sum(before["decided_by"].values()) == 10
    total = judging.merge([judging.relabel_stats(relabel), judging.relabel_stats(relabel)])
    assert total == {
        "problems": 8,
        "voted": 2,
        "relabeled": 2,
        "relabels": {"3 → 7": 2},
        "by_source": {"unit": {"problems": 8, "verified": 0, "relabeled": 2}},
    }
    table = judging.accuracy_table(before, after)
    assert table == [
        {"source": "unit", "problems": 4, "samples": 10, "accuracy": 0.3, "accuracy_after_relabel": 0.6,
         "undecided": after["by_source"]["unit"].get("undecided", 0), "solved_problems": 4}
    ]  # fmt: skip
    assert "| 3 → 7 | 2 |" in judging.relabel_summary(total)


def test_editing_the_grader_changes_the_verdict_fingerprint_not_the_samples_one(monkeypatch):
    from tracemill.sampling.config import SamplingConfig
    from tracemill.sampling.stage import samples_stage

    def fingerprints() -> tuple[dict[str, str], str]:
        judged = judging.judging_stages(JudgeConfig(), RelabelConfig(), "p0", "s0")
        samples = samples_stage(sampling_config, "p0")
        return {name: stage.fingerprint for name, stage in judged.items()}, samples.fingerprint

    sources = judging.grader_sources()
    assert set(sources) == set(judging.GRADER_MODULES) and judging.grader_version(sources) == judging.CODE_VERSION
    edited = dict(sources)  # a change to the normal form, as a grader fix would make
    edited["tracemill.judging.answers"] = sources["tracemill.judging.answers"].replace(
        '.replace("−", "-")', '.replace("–", "-")', 1
    )
    assert edited != sources and judging.grader_version(edited) != judging.CODE_VERSION

    sampling_config = SamplingConfig(teacher={"kind": "vllm", "model": "tiny"})  # no block to resolve
    before = fingerprints()
    monkeypatch.setattr(judging, "CODE_VERSION", judging.grader_version(edited))
    after = fingerprints()
    assert after[1] == before[1]  # samples stay cached
    assert all(after[0][stage] != before[0][stage] for stage in judging.STAGES)  # every judging stage re-runs
