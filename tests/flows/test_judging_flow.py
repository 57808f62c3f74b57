"""The judging flow on a real Prefect API: judge → relabel → re-judge datasets, cached reruns, artifacts.

Problems and samples are written straight into the store with crafted responses (faster than an
engine); the LLM judge is an OpenAI-compatible endpoint named by a TeacherEndpoint block.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from blocks.teacher_endpoint import TeacherEndpoint
from flows.judging import judge_samples
from tests.fake_judge import fake_judge, predicted_of
from tests.fake_openai import FakeOpenAI
from tests.flows.prefect_runs import artifacts, task_states
from tracemill.config import StoreConfig
from tracemill.judging.config import JudgeConfig, JudgeMode, RelabelConfig
from tracemill.records import PROBLEM, SAMPLE, to_table
from tracemill.store import Store
from tracemill.teachers.config import EndpointTeacherConfig

PROBLEMS_FP = "0123456789abcdef"
SAMPLES_FP = "fedcba9876543210"

# (problem id, source, gold, answer type, responses); shard 0 then shard 1.
SHARDS = [
    [
        ("sum", "alpha", "5", "integer", ["Adding, \\boxed{5}.", "**The answer is: **6"]),
        ("cubes", "alpha", "3", "integer", ["**The answer is: **7", "\\boxed{7}", "Answer: 7", "\\boxed{2}"]),
    ],
    [
        ("half", "beta", "\\frac{1}{2}", "math", ["It is \\boxed{0.5}.", "\\boxed{1/3}"]),
        ("ratio", "beta", "2", "math", ["\\boxed{\\frac{3}{2}}", "\\boxed{1.5}", "so \\boxed{3/2}", "no idea"]),
        ("tie", "beta", "10", "integer", ["\\boxed{8}", "\\boxed{9}", "\\boxed{8}", "\\boxed{9}"]),
    ],
]


def _write_inputs(store: Store) -> None:
    problems = store.dataset("problems", PROBLEMS_FP, "problem")
    samples = store.dataset("samples", SAMPLES_FP, "sample")
    for index, shard in enumerate(SHARDS):
        problems.write_shard(
            index,
            to_table(
                [
                    {"problem_id": pid, "source": source, "split": "test", "question": f"Question {pid}?",
                     "answer": gold, "answer_type": kind}
                    for pid, source, gold, kind, _ in shard
                ],
                PROBLEM,
            ),
        )  # fmt: skip
        samples.write_shard(
            index,
            to_table(
                [
                    {
                        "problem_id": pid,
                        "sample_idx": i,
                        "teacher": "t",
                        "prompt_version": "v",
                        "prompt": "q",
                        "response": text,
                    }
                    for pid, _, _, _, texts in shard
                    for i, text in enumerate(texts)
                ],
                SAMPLE,
            ),
        )
    problems.commit(len(SHARDS), config={}, code_version="test")
    samples.commit(len(SHARDS), config={}, code_version="test", inputs=[PROBLEMS_FP])


def _rows(store: Store, uri: str, record: str) -> dict:
    table: pa.Table = store.dataset(Path(uri).parent.name, Path(uri).name, record).read()
    key = ("problem_id", "sample_idx") if record == "verdict" else ("problem_id",)
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r for r in table.to_pylist()}


def test_judge_relabel_rejudge_then_all_cached(prefect_api, tmp_path, monkeypatch):
    store = StoreConfig(url=str(tmp_path))
    where = Store(store.url)
    _write_inputs(where)
    args = {"problems": PROBLEMS_FP, "samples": SAMPLES_FP, "relabel_config": RelabelConfig(), "store": store}

    state = judge_samples(judge_config=JudgeConfig(), **args, return_state=True)
    uris = state.result()
    assert set(uris) == {"verdicts", "relabel", "rejudged"}
    assert sorted(task_states(state).values()) == ["Completed"] * 6  # 3 stages × 2 shards

    verdicts = _rows(where, uris["verdicts"], "verdict")
    relabel = _rows(where, uris["relabel"], "relabel")
    rejudged = _rows(where, uris["rejudged"], "verdict")
    assert len(verdicts) == len(rejudged) == sum(len(p[4]) for shard in SHARDS for p in shard)
    assert set(relabel) == {p[0] for shard in SHARDS for p in shard}
    assert verdicts[("sum", 0)]["correct"] is True and verdicts[("sum", 1)]["correct"] is False
    assert verdicts[("half", 0)]["correct"] is True

    # Every sample of 'cubes' says 7 but one: the gold 3 becomes 7; 'ratio' votes 3/2 in three spellings.
    assert (relabel["cubes"]["answer"], relabel["cubes"]["original_answer"], relabel["cubes"]["relabeled"]) == (
        "7", "3", True,
    )  # fmt: skip
    assert dict(relabel["cubes"]["votes"]) == {"7": 3, "2": 1}
    assert relabel["ratio"]["relabeled"] and relabel["ratio"]["original_answer"] == "2"
    assert dict(relabel["ratio"]["votes"]) == {relabel["ratio"]["answer"]: 3}
    assert not relabel["tie"]["relabeled"] and dict(relabel["tie"]["votes"]) == {"8": 2, "9": 2}
    assert not relabel["sum"]["relabeled"] and relabel["sum"]["votes"] is None

    assert [rejudged[("cubes", i)]["correct"] for i in range(4)] == [True, True, True, False]
    assert [rejudged[("ratio", i)]["correct"] for i in range(3)] == [True, True, True]
    for key, row in rejudged.items():
        if key[0] not in ("cubes", "ratio"):
            assert row == verdicts[key]

    datasets = {stage: where.dataset(stage, Path(uri).name, "relabel" if stage == "relabel" else "verdict")
                for stage, uri in uris.items()}  # fmt: skip
    assert datasets["verdicts"].manifest()["inputs"] == [PROBLEMS_FP, SAMPLES_FP]
    assert datasets["relabel"].manifest()["inputs"] == [PROBLEMS_FP, Path(uris["verdicts"]).name]
    assert datasets["rejudged"].manifest()["rows"] == len(rejudged)

    found = {key: a.data for key, a in artifacts(state).items()}
    accuracy = found["judging-accuracy"]
    assert "alpha" in accuracy and "beta" in accuracy and "accuracy_after_relabel" in accuracy
    assert "exact" in found["judging-decided-by"] or "numeric" in found["judging-decided-by"]
    summary = found["judging-summary"]
    assert "relabelled: 2 (40.0%)" in summary and "| 3 → 7 | 1 |" in summary
    assert uris["rejudged"] in summary

    # A rerun is all cached and builds no judge; a stricter relabel config writes new relabel and
    # rejudged datasets but reuses the verdicts.
    def no_teacher(config):
        raise AssertionError("no judge model may be built when every shard is cached")

    monkeypatch.setattr("flows.judging.build_teacher", no_teacher)
    again = judge_samples(judge_config=JudgeConfig(), **args, return_state=True)
    assert again.result() == uris
    assert set(task_states(again).values()) == {"Cached"}
    stricter = judge_samples(
        judge_config=JudgeConfig(), **{**args, "relabel_config": RelabelConfig(min_votes=4)}, return_state=True
    )
    strict_uris = stricter.result()
    assert strict_uris["verdicts"] == uris["verdicts"] and strict_uris["relabel"] != uris["relabel"]
    assert not any(r["relabeled"] for r in _rows(where, strict_uris["relabel"], "relabel").values())
    assert {n: s for n, s in task_states(stricter).items() if n.startswith("verdicts-")} == {
        "verdicts-00000": "Cached",
        "verdicts-00001": "Cached",
    }


def test_cascade_judge_model_from_an_endpoint_block(prefect_api, tmp_path):
    store = StoreConfig(url=str(tmp_path))
    where = Store(store.url)
    _write_inputs(where)
    args = {"problems": PROBLEMS_FP, "samples": SAMPLES_FP, "relabel_config": RelabelConfig(), "store": store}
    rules = _rows(where, judge_samples(judge_config=JudgeConfig(), **args)["verdicts"], "verdict")

    with FakeOpenAI() as server:
        server.set_fault(fake_judge({"6": "Reasoning: close enough.\nJudgement: Yes", "1/3": "Judgement: No"}))
        TeacherEndpoint(base_url=server.url, model="judge-m", max_concurrency=4).save("judge-test", overwrite=True)
        config = JudgeConfig(
            mode=JudgeMode.cascade, teacher=EndpointTeacherConfig(block="judge-test"), recheck_negatives=True
        )
        uris = judge_samples(judge_config=config, **args)
        asked = sorted(predicted_of(r.body) for r in server.received)

    negatives = sorted(r["extracted"] for r in rules.values() if r["correct"] is False and r["extracted"])
    # The rule negatives with a parsed answer, and, judged again against the relabelled gold 7, the
    # one 'cubes' sample that still says 2; nothing else.
    assert asked == sorted([*negatives, "2"])
    verdicts = _rows(where, uris["verdicts"], "verdict")
    assert (verdicts[("sum", 1)]["correct"], verdicts[("sum", 1)]["decided_by"]) == (True, "llm_judge")
    assert (verdicts[("half", 1)]["correct"], verdicts[("half", 1)]["decided_by"]) == (False, "llm_judge")
    assert verdicts[("sum", 0)] == rules[("sum", 0)]
    assert verdicts[("cubes", 0)]["decided_by"] != "llm_judge"  # '7' got no verdict line: the rules stand
