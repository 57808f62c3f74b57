"""The scores stage without an engine: its config, the texts verifiers read, token encoding and truncation
with the tiny model's real tokenizer, and LM judges through a local OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pytest
from pydantic import TypeAdapter, ValidationError
from transformers import AutoTokenizer

from tests.fake_judge import chat_reply
from tests.fake_openai import FakeOpenAI
from tracemill.build import BuildConfig
from tracemill.config import identity_of
from tracemill.export import layouts as export
from tracemill.export.config import ExportConfig
from tracemill.filtering import stage as filters
from tracemill.filtering.config import FilterConfig
from tracemill.filtering.stage import Plan
from tracemill.records import PROBLEM, SCORE, VERDICT, to_table
from tracemill.scoring.config import LmJudgeVerifier, ScoresConfig, VerifierConfig
from tracemill.scoring.pooling import encode
from tracemill.scoring.scores import score_shard, scored_text, steps_of, verifier_prompt
from tracemill.scoring.worth import auroc, display_rows, worth_table
from tracemill.seeds import request_seed
from tracemill.store import Store
from tracemill.teachers.config import EndpointTeacherConfig
from tracemill.teachers.endpoint import EndpointTeacher


def shard(responses: list[str | None]) -> tuple[Any, Any]:
    """A one-problem relabel-like table and its verdicts, one sample per response."""
    problems = to_table(
        [{"problem_id": "p", "source": "s", "split": "test", "question": "What is 2+2?", "answer": "4",
          "answer_type": "integer", "choices": ["3", "4"]}],
        PROBLEM,
    )  # fmt: skip
    verdicts = to_table(
        [
            {"problem_id": "p", "sample_idx": i, "teacher": "t", "prompt_version": "v", "prompt": "q", "response": text,
             "reasoning": "Add two and two.", "decided_by": "exact", "correct": text == "4"}
            for i, text in enumerate(responses)
        ],
        VERDICT,
    )  # fmt: skip
    return problems, verdicts


def test_verifiers_are_a_list_discriminated_by_kind_and_off_by_default():
    assert BuildConfig.model_fields["scores"].default_factory().verifiers == []
    adapter = TypeAdapter(VerifierConfig)
    rm = adapter.validate_python({"kind": "reward_model", "name": "rm", "model": "m"})
    prm = adapter.validate_python({"kind": "process_reward_model", "name": "prm", "model": "m"})
    judge = adapter.validate_python({"kind": "lm_judge", "name": "j", "teacher": {"kind": "vllm", "model": "m"}})
    assert (rm.text, rm.max_length, prm.step_separator, judge.verdicts_per_sample) == ("full", 4096, "\n\n", 1)
    with pytest.raises(ValidationError, match="unique"):
        ScoresConfig(verifiers=[rm, rm])
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "reward_model", "name": "bad name", "model": "m"})  # a Weaver column prefix
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "lm_judge", "name": "j", "teacher": {"kind": "vllm", "model": "m"},
                                 "verdicts_per_sample": 0})  # fmt: skip
    assert "engine" not in identity_of(rm) and rm.engine_args()["max_model_len"] == 4096


def test_texts_prompts_and_steps():
    row = {"reasoning": "think", "response": "Answer: 4"}
    assert scored_text(row, "full") == "<think>\nthink\n</think>\n\nAnswer: 4"
    assert scored_text(row, "answer") == "Answer: 4"
    assert scored_text({"response": "4"}, "full") == "4"
    assert scored_text({"response": None, "reasoning": "x"}, "full") is None
    assert verifier_prompt({"question": "Q?", "description": "D", "choices": ["a", "b"]}) == "D\nQ?\nA) a\nB) b"
    assert steps_of("one\n\ntwo\n\n\n\nthree", "\n\n") == ["one\n\n", "two\n\n", "three"]
    assert steps_of("just one", "\n\n") == ["just one"]


def test_encoding_marks_each_step_end_and_cuts_the_text_start(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    pieces = ["How many cubes?\n\n", "There are three.\n\n", "The answer is: 3"]
    whole = encode(tokenizer, "Count the cubes.", pieces, max_length=1000)
    assert not whole.truncated and len(whole.ends) == 3 and whole.ends[-1] == len(whole.token_ids) - 1
    last = tokenizer("The answer is: 3", add_special_tokens=False)["input_ids"]
    assert whole.token_ids[-len(last) :] == last
    for end, piece in zip(whole.ends, pieces, strict=True):  # each end is the last token of its piece
        ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        assert whole.token_ids[end - len(ids) + 1 : end + 1] == ids
    head = whole.ends[0] + 1 - len(tokenizer(pieces[0], add_special_tokens=False)["input_ids"])
    assert tokenizer.decode(whole.token_ids[:head]).startswith("<|im_start|>user\nCount the cubes.")

    cut = encode(tokenizer, "Count the cubes.", pieces, max_length=len(whole.token_ids) - 3)
    assert cut.truncated and len(cut.token_ids) == len(whole.token_ids) - 3
    assert cut.token_ids[:head] == whole.token_ids[:head]  # the prompt is kept, the text loses its start
    assert cut.token_ids[-1] == whole.token_ids[-1] and cut.ends[-1] == whole.ends[-1] - 3
    # Too short for the prompt: the prompt keeps its end half, the text the other half (and its last step).
    tiny = encode(tokenizer, "Count the cubes.", pieces, max_length=head)
    assert tiny.truncated and len(tiny.token_ids) == head
    assert tiny.token_ids == whole.token_ids[head - head // 2 : head] + whole.token_ids[-(head - head // 2) :]
    assert tiny.ends[-1] == head - 1


@pytest.fixture
def judge_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def by_seed(body: dict[str, Any], attempt: int) -> Any:
    """A judge that says Yes on seeds ≡ 0 (mod 3), No on 1 and rambles on 2."""
    return chat_reply(["Reasoning: fine.\nJudgement: Yes", "Judgement: No", "Hmm, hard to say."][body["seed"] % 3])


def test_lm_judge_through_an_openai_compatible_endpoint(judge_server):
    judge_server.set_fault(by_seed)
    verifier = LmJudgeVerifier(name="judge", teacher=EndpointTeacherConfig(block="unused"), verdicts_per_sample=3)
    problems, verdicts = shard(["4", "5", None])
    with EndpointTeacher(base_url=judge_server.url, model="judge-m", api_key=None, max_retries=0) as teacher:
        table = score_shard(problems, verdicts, [verifier], lambda v: teacher)
    assert table.schema.equals(SCORE)
    rows = table.to_pylist()
    assert [(r["verifier"], r["kind"], r["sample_idx"]) for r in rows] == [("judge", "lm_judge", i) for i in range(3)]
    for row in rows[:2]:  # verdict i has seed base + i, each its own request
        base = request_seed(0, f"judge\x1fp/{row['sample_idx']}")
        expected = [[1.0, 0.0, None][(base + i) % 3] for i in range(3)]
        assert row["verdicts"] == expected
        parsed = [v for v in expected if v is not None]
        assert row["score"] == pytest.approx(sum(parsed) / len(parsed))
        assert row["tokens"] == 15
    assert rows[2]["verdicts"] is None and rows[2]["score"] is None  # a failed sample has nothing to judge
    bodies = [r.body for r in judge_server.received]
    assert len(bodies) == 2 * 3 and all(b["n"] == 1 for b in bodies)  # samples × verdicts calls
    assert "Solution:\n4" in bodies[0]["messages"][0]["content"] and "A) 3\nB) 4" in bodies[0]["messages"][0]["content"]


def crafted_scores(verdicts: Any) -> Any:
    """Scores of every sample by a reward model, a PRM and a two-verdict LM judge, each a function of the sample."""
    rows = []
    for s in verdicts.to_pylist():
        key = {"problem_id": s["problem_id"], "sample_idx": s["sample_idx"]}
        i = s["sample_idx"]
        steps = [i / 10, i / 10 + 0.5]
        rows += [
            {**key, "verifier": "RM-A", "kind": "reward_model", "score": i / 10},
            {**key, "verifier": "PRM_B", "kind": "process_reward_model", "score": min(steps), "step_scores": steps,
             "min_score": min(steps), "max_score": max(steps), "avg_score": sum(steps) / 2},
            {**key, "verifier": "judge", "kind": "lm_judge", "verdicts": [float(i % 2), None], "score": float(i % 2)},
        ]  # fmt: skip
    return to_table(rows, SCORE)


def test_weaver_export_has_every_verifier_column(tmp_path, trace_tables):
    relabels, verdicts = trace_tables
    store = Store(str(tmp_path / "store"))
    config = ExportConfig(sft=False, messages=False, r1v=False)
    out = export.export_dir(store, "k0", config, scores="s0")
    assert out.fingerprint != export.export_dir(store, "k0", config).fingerprint  # scores are an input
    expected = {}
    for shard, (relabel, verdict) in enumerate(zip(relabels, verdicts, strict=True)):
        kept, rejected = filters.filter_shard(relabel, verdict, Plan(FilterConfig()), shard=shard)
        export.export_shard(kept, rejected, out, shard, config, scores=crafted_scores(verdict))
        for row in export.labelled(kept, rejected).to_pylist():
            expected.setdefault(row["problem_id"], []).append(row["sample_idx"])
    files = str(Path(out.path) / "weaver" / "train-*.parquet")
    weaver = datasets.load_dataset("parquet", data_files={"train": files}, split="train")
    names = ["_scores", "_min_scores", "_max_scores", "_avg_scores", "_step_scores", "_verdicts"]
    assert [c for c in weaver.column_names if c.endswith(tuple(names))] == [
        "RM-A_scores", "PRM_B_min_scores", "PRM_B_max_scores", "PRM_B_avg_scores", "PRM_B_step_scores",
        "judge_verdicts",
    ]  # fmt: skip
    assert sorted(weaver["problem_id"]) == sorted(expected)
    for row in weaver:
        idx = expected[row["problem_id"]]
        assert len(row["samples"]) == len(idx) == len(row["RM-A_scores"])
        assert row["RM-A_scores"] == pytest.approx([i / 10 for i in idx])
        assert row["PRM_B_min_scores"] == pytest.approx([i / 10 for i in idx])
        assert row["PRM_B_max_scores"] == pytest.approx([i / 10 + 0.5 for i in idx])
        assert row["PRM_B_avg_scores"] == pytest.approx([i / 10 + 0.25 for i in idx])
        assert row["PRM_B_step_scores"] == [pytest.approx([i / 10, i / 10 + 0.5]) for i in idx]
        assert row["judge_verdicts"] == [[float(i % 2), None] for i in idx]


def test_what_verifiers_are_worth():
    problems = pa.table({"problem_id": ["p1", "p2", "p3"], "answer_trust": [None, "verified", "none"]})
    samples = [  # (problem, sample, extracted, correct, reward model score, judge score)
        ("p1", 0, "3", False, 0.1, None), ("p1", 1, "4", True, 0.9, 1.0), ("p1", 2, "3", False, 0.2, None),
        ("p1", 3, "7", None, 0.99, None),  # undecided: never counted, never picked
        ("p2", 0, "5", True, 0.3, None), ("p2", 1, "5", True, 0.2, None), ("p2", 2, "6", False, 0.8, None),
        ("p3", 0, "1", False, 0.5, None), ("p3", 1, "2", True, 0.1, None),  # no gold: left out
    ]  # fmt: skip
    verdicts = pa.table(
        {name: [s[i] for s in samples] for i, name in enumerate(["problem_id", "sample_idx", "extracted", "correct"])}
    )
    scores = to_table(
        [{"problem_id": s[0], "sample_idx": s[1], "verifier": v, "kind": k, "score": s[4 if v == "rm" else 5]}
         for v, k in [("rm", "reward_model"), ("judge", "lm_judge")] for s in samples],
        SCORE,
    )  # fmt: skip
    rm, judge = worth_table(problems, verdicts, scores)
    # rm picks p1's correct sample 1 and p2's wrong sample 2; majority: '3' (wrong) on p1, '5' (right) on p2.
    assert rm == {"verifier": "rm", "kind": "reward_model", "problems": 2, "auroc": pytest.approx(6.5 / 9),
                  "best_of_n": 0.5, "majority_vote": 0.5, "first_sample": 0.5, "picks_correct": 0.5}  # fmt: skip
    assert judge["problems"] == 1 and judge["auroc"] is None and judge["best_of_n"] == 1.0  # one class: no AUROC
    assert auroc([0.2, 0.2], [True, False]) == 0.5 and auroc([1.0, 0.0], [True, False]) == 1.0
    assert display_rows([rm])[0]["AUROC"] == "0.722" and display_rows([judge])[0]["AUROC"] == "–"
    assert display_rows([rm])[0]["best-of-n"] == "50.0%"
