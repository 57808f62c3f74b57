"""Each filter on crafted rows, with its reason; the shard split into kept and rejected; filter configs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from tracemill.filtering import benchmarks, dedup, rules
from tracemill.filtering import stage as filters
from tracemill.filtering.config import ContaminationConfig, FilterConfig, LengthOutlierConfig, NearDuplicateConfig
from tracemill.filtering.dedup import MinHasher, NgramIndex
from tracemill.filtering.stage import Plan
from tracemill.records import KEPT, PROBLEM, REJECTED, to_table
from tracemill.sampling.prompts import BUILTIN
from tracemill.store import Store

ROW = {"error": None, "finish_reason": "stop", "reasoning": "think", "response": "\\boxed{4}", "correct": True,
       "completion_tokens": 10, "answer_type": "integer", "problem_id": "p", "sample_idx": 0}  # fmt: skip


def row(**extra):
    return {**ROW, **extra}


def test_row_filters_return_their_reason_or_keep():
    assert rules.sampling_failed(row(error="timeout")) == "sampling_failed"
    assert rules.sampling_failed(row()) is None
    assert rules.truncated(row(finish_reason="length")) == "truncated"
    assert rules.truncated(row(finish_reason="stop")) is None
    assert rules.no_reasoning(row(reasoning=None)) == "no_reasoning"
    assert rules.no_reasoning(row(reasoning=" \n\t")) == "no_reasoning"
    assert rules.no_reasoning(row(reasoning="x")) is None
    assert rules.label(row(correct=False)) == "incorrect"
    assert rules.label(row(correct=None)) == "undecided"
    assert rules.label(row(correct=True)) is None
    assert rules.too_long(row(completion_tokens=11), 10.0) == "too_long"
    assert rules.too_long(row(completion_tokens=10), 10.0) is None
    assert rules.too_long(row(completion_tokens=None), 10.0) is None
    assert rules.too_long(row(completion_tokens=10**6), None) is None


def test_single_final_answer():
    assert rules.multiple_answers(row(response="so \\boxed{4} and not \\boxed{5}")) == "multiple_answers"
    # Several boxes with the same answer, spacing aside, are one answer; the reasoning's boxes do not count.
    assert rules.multiple_answers(row(response="\\boxed{4} so \\boxed{ 4 }", reasoning="\\boxed{7}")) is None
    assert rules.multiple_answers(row(response="\\boxed{4}")) is None
    assert rules.multiple_answers(row(response="no box at all")) is None
    assert rules.multiple_answers(row(response=None)) is None


def test_single_answer_uses_the_grader_for_equal_values_written_differently():
    same = row(response="\\boxed{\\frac{1}{2}} which is \\boxed{0.5}", answer_type="math")
    assert rules.multiple_answers(same) is None


def test_group_filters_keep_the_first_and_name_the_rest():
    a = row(reasoning="Two  plus TWO is four.", response="\\boxed{4}")
    same = row(reasoning="two plus two is four", response="\\boxed{4}")  # case, spacing, punctuation aside
    other = row(reasoning="four it is", response="\\boxed{4}")
    assert dedup.exact_duplicates([a, same, other, a]) == [None, "duplicate", None, "duplicate"]
    assert rules.over_limit([a, other, same], 2) == [None, None, "over_limit"]

    long = " ".join(f"word{i}" for i in range(300))
    near = long.replace("word150 ", "changed ")
    hasher = MinHasher(NearDuplicateConfig(threshold=0.8))
    rows = [row(reasoning=long), row(reasoning=near), row(reasoning="something else entirely different here")]
    assert dedup.near_duplicates(rows, hasher, 0.8) == [None, "near_duplicate", None]


def test_minhash_estimates_jaccard():
    hasher = MinHasher(NearDuplicateConfig(num_perm=256, shingle=1, seed=3))
    first = [f"w{i}" for i in range(200)]
    second = [f"w{i}" for i in range(100, 300)]  # 100 shared of 300: Jaccard 1/3
    a, b, same, empty = hasher.signatures([first, second, list(first), []])
    assert abs(np.mean(a == b) - 1 / 3) < 0.1  # the share of equal minima estimates the Jaccard similarity
    assert np.array_equal(a, same)
    # Seeded: the same config gives the same signature in another hasher.
    again = MinHasher(NearDuplicateConfig(num_perm=256, shingle=1, seed=3))
    assert np.array_equal(again.signatures([first])[0], a)
    assert empty.shape == (256,)


def test_contamination_index_matches_ngrams_and_short_texts():
    index = NgramIndex.build(["The quick brown fox jumps over the lazy dog.", "Short one", None], n=5)
    assert rules.contaminated("Then: the QUICK brown fox, jumps over a cat", index) == "contaminated"
    assert rules.contaminated("the quick brown fox sleeps", index) is None
    assert rules.contaminated("short one!", index) == "contaminated"  # shorter than n: the whole text
    assert rules.contaminated(None, index) is None


def test_length_bound_percentile_and_std():
    tokens = np.arange(1, 101, dtype=float)
    assert rules.length_bound(tokens, LengthOutlierConfig(percentile=90)) == pytest.approx(90.1)
    bound = rules.length_bound(tokens, LengthOutlierConfig(method="std", k=2))
    assert bound == pytest.approx(tokens.mean() + 2 * tokens.std())
    assert rules.length_bound(np.empty(0), LengthOutlierConfig()) is None


def _reasons(kept: pa.Table, rejected: pa.Table) -> dict[tuple[str, int], str | None]:
    found = {(r["problem_id"], r["sample_idx"]): None for r in kept.select(["problem_id", "sample_idx"]).to_pylist()}
    for r in rejected.select(["problem_id", "sample_idx", "reason"]).to_pylist():
        found[(r["problem_id"], r["sample_idx"])] = r["reason"]
    return found


EXPECTED = {
    ("p0", 0): None, ("p0", 1): "duplicate", ("p0", 2): "incorrect", ("p0", 3): "sampling_failed",
    ("p0", 4): "too_long", ("p1", 0): "contaminated", ("p1", 1): "contaminated", ("p2", 0): None,
    ("p2", 1): "truncated", ("p2", 2): "no_reasoning", ("p2", 3): "multiple_answers", ("p2", 4): "near_duplicate",
    ("p2", 5): "undecided", ("p2", 6): None, ("p2", 7): "over_limit",
}  # fmt: skip


def _config(**extra) -> FilterConfig:
    return FilterConfig(
        length=LengthOutlierConfig(method="std", k=2),
        contamination=ContaminationConfig(files=["unused.jsonl"], n=5),
        max_per_problem=2,
        **extra,
    )


def test_filter_shard_gives_every_row_one_reason(trace_tables):
    relabels, verdicts = trace_tables
    config = _config()
    index = NgramIndex.build(["the quick brown fox jumps over the lazy dog"], n=5)
    tokens = np.concatenate([rules.measured_tokens(v) for v in verdicts])
    plan = Plan(config, length_limit=rules.length_bound(tokens, config.length), contamination=index)
    got = {}
    for shard, (relabel, verdict) in enumerate(zip(relabels, verdicts, strict=True)):
        kept, rejected = filters.filter_shard(relabel, verdict, plan, shard=shard)
        assert kept.schema.equals(KEPT) and rejected.schema.equals(REJECTED)
        assert kept.num_rows + rejected.num_rows == verdict.num_rows
        got |= _reasons(kept, rejected)
    assert got == EXPECTED

    kept, _ = filters.filter_shard(relabels[1], verdicts[1], plan, shard=1)
    first = kept.to_pylist()[0]
    # Kept rows carry the problem (current gold, original gold, relabel flag) and the prompt the sample recorded.
    assert first["answer"] == "4" and first["original_answer"] == "3" and first["relabeled"] is True
    assert first["img_filename"] == "CLEVR_1.png" and first["source"] == "clevr"
    assert first["prompt_messages"] == BUILTIN["clevr_v2"].render(relabels[1].to_pylist()[0])
    assert first["prompt"] == first["prompt_messages"][0]["content"]
    assert first["teacher"] == "tiny-teacher" and first["seed"] == 100 and first["decided_by"] == "exact"


def test_filters_switched_off_keep_rows_with_their_labels(trace_tables):
    relabels, verdicts = trace_tables
    config = FilterConfig(
        correct_only=False, require_reasoning=False, single_answer=False, drop_truncated=False, exact_dedup=False,
        near_dedup=None,
    )  # fmt: skip
    kept, rejected = filters.filter_shard(relabels[1], verdicts[1], Plan(config), shard=1)
    assert rejected.num_rows == 0 and kept.num_rows == verdicts[1].num_rows
    assert kept["correct"].to_pylist() == verdicts[1]["correct"].to_pylist()
    kept, rejected = filters.filter_shard(relabels[0], verdicts[0], Plan(config), shard=0)
    assert rejected["reason"].to_pylist() == ["sampling_failed"]  # a failed request is never training data


def test_per_problem_length_bound(trace_tables):
    relabels, verdicts = trace_tables
    config = FilterConfig(
        length=LengthOutlierConfig(scope="problem", percentile=50, min_samples=4), correct_only=False,
        exact_dedup=False, near_dedup=None,
    )  # fmt: skip
    tokens = pa.array([10, 20, 30, 40, 50, 60, 70], pa.int32())
    verdict = verdicts[0].set_column(verdicts[0].schema.get_field_index("completion_tokens"), "completion_tokens",
                                     tokens)  # fmt: skip
    kept, rejected = filters.filter_shard(relabels[0], verdict, Plan(config))
    # p0's measured samples are 10, 20, 30 and 50 (the failed one does not count): the median is 25.
    assert _reasons(kept, rejected) == {
        ("p0", 0): None, ("p0", 1): None, ("p0", 2): "too_long", ("p0", 3): "sampling_failed",
        ("p0", 4): "too_long", ("p1", 0): None, ("p1", 1): None,  # p1: two samples, under min_samples
    }  # fmt: skip


def test_bad_input_names_the_row(trace_tables):
    relabels, verdicts = trace_tables
    with pytest.raises(ValueError, match=r"verdicts shard 1: row 0 \(problem p2, sample 0\) has no problem"):
        filters.filter_shard(relabels[0], verdicts[1], Plan(FilterConfig()), shard=1)


def test_benchmark_index_from_files_and_problem_datasets(tmp_path):
    texts = ["the quick brown fox jumps over the lazy dog", "alpha beta gamma delta epsilon zeta"]
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"problem": t}) + "\n" for t in texts[:1]))
    (tmp_path / "b.csv").write_text("problem,x\n" + texts[1] + ",1\n")
    pq.write_table(pa.table({"problem": ["one two three four five six"]}), tmp_path / "b.parquet")
    store = Store(str(tmp_path / "store"))
    problems = store.dataset("problems", "bench0000", "problem")
    rows = [{"problem_id": "b0", "source": "bench", "split": "test", "question": "red green blue cyan magenta",
             "answer": "1", "answer_type": "integer"}]  # fmt: skip
    problems.write_shard(0, to_table(rows, PROBLEM))
    problems.commit(1, config={}, code_version="t")

    files = [str(tmp_path / f"b.{ext}") for ext in ("jsonl", "csv", "parquet")]
    config = ContaminationConfig(benchmarks=["bench0000"], files=files, field="problem", n=5)
    index, inputs = benchmarks.benchmark_index(config, store)
    for text in [*texts, "one two three four five", "red green blue cyan magenta"]:
        assert index.overlaps(text), text
    assert not index.overlaps("nothing from any benchmark here at all")
    assert inputs[0] == "problems/bench0000" and inputs[1].startswith(files[0] + "#")

    # An edited file changes its input fingerprint.
    (tmp_path / "b.jsonl").write_text(json.dumps({"problem": "changed"}) + "\n")
    assert benchmarks.benchmark_index(config, store)[1][1] != inputs[1]

    with pytest.raises(ValueError, match=r"b.jsonl: row 0: no column 'question'"):
        benchmarks.benchmark_index(ContaminationConfig(files=files[:1]), store)
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        benchmarks.benchmark_index(ContaminationConfig(files=[str(tmp_path / "missing.jsonl")]), store)


def test_config_bounds_and_descriptions():
    for model in (FilterConfig, LengthOutlierConfig, ContaminationConfig, NearDuplicateConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
    with pytest.raises(ValidationError, match="percentile"):
        LengthOutlierConfig(percentile=0)
    with pytest.raises(ValidationError, match="max_per_problem"):
        FilterConfig(max_per_problem=0)
    with pytest.raises(ValidationError, match="at least one of benchmarks or files"):
        ContaminationConfig()
    with pytest.raises(ValidationError, match="extra_forbidden"):
        FilterConfig(correct=True)
