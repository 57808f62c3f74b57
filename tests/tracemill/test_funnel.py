"""Funnel arithmetic: per source and stage, rows in = rows out + dropped, and everything ends kept or dropped."""

from __future__ import annotations

import json

import numpy as np

from tracemill.filtering import funnel, rules
from tracemill.filtering import stage as filters
from tracemill.filtering.config import REASONS, ContaminationConfig, FilterConfig, LengthOutlierConfig
from tracemill.filtering.dedup import NgramIndex
from tracemill.filtering.stage import Plan


def _funnel(relabels, verdicts) -> funnel.Funnel:
    config = FilterConfig(
        length=LengthOutlierConfig(method="std", k=2),
        contamination=ContaminationConfig(files=["unused.jsonl"], n=5),
        max_per_problem=2,
    )
    tokens = np.concatenate([rules.measured_tokens(v) for v in verdicts])
    plan = Plan(
        config,
        length_limit=rules.length_bound(tokens, config.length),
        contamination=NgramIndex.build(["the quick brown fox jumps over the lazy dog"], n=5),
    )
    shards = []
    for relabel, verdict in zip(relabels, verdicts, strict=True):
        kept, rejected = filters.filter_shard(relabel, verdict, plan)
        shards.append(funnel.shard_counts(relabel, verdict, kept, rejected))
    return funnel.merge(shards)


def test_counts_per_source(trace_tables):
    counts = _funnel(*trace_tables)
    assert list(counts) == ["clevr", "math", "all"]
    math, clevr, total = counts["math"], counts["clevr"], counts["all"]
    assert (math.problems, math.relabeled, math.samples, math.failed, math.parsed, math.correct, math.kept) == (
        2, 0, 7, 1, 6, 5, 1,
    )  # fmt: skip
    assert (clevr.problems, clevr.relabeled, clevr.samples, clevr.parsed, clevr.correct, clevr.kept) == (
        1, 1, 8, 8, 7, 2,
    )  # fmt: skip
    assert dict(math.dropped) == {
        "sampling_failed": 1, "contaminated": 2, "too_long": 1, "incorrect": 1, "duplicate": 1,
    }  # fmt: skip
    assert sum(clevr.dropped.values()) == 6
    assert total.samples == 15 and total.kept == 3 and total.problems == 3 and total.relabeled == 1
    # Pass rates per problem: p0 3 of 4 answered (the failed request does not count), p1 2 of 2, p2 7 of 8.
    assert dict(math.pass_rates) == {"51-75%": 1, "100%": 1}
    assert dict(clevr.pass_rates) == {"76-99%": 1}
    assert sum(total.pass_rates.values()) == total.problems


def test_rows_in_equal_kept_plus_dropped_at_every_stage(trace_tables):
    counts = _funnel(*trace_tables)
    for source, c in counts.items():
        stages = c.stages()
        assert [s["stage"] for s in stages] == list(REASONS)
        assert stages[0]["rows_in"] == c.samples, source
        for before, after in zip(stages, stages[1:], strict=False):
            assert before["rows_out"] == after["rows_in"]
        for stage in stages:
            assert stage["rows_in"] == stage["rows_out"] + stage["dropped"]
        assert stages[-1]["rows_out"] == c.kept, source
        assert c.kept + sum(c.dropped.values()) == c.samples
    table = funnel.stage_table(counts)
    assert table[-1] == {"source": "all", "stage": "kept", "rows_in": 3, "dropped": 0, "rows_out": 3}
    contaminated = next(r for r in table if r["source"] == "math" and r["stage"] == "contaminated")
    assert contaminated == {"source": "math", "stage": "contaminated", "rows_in": 6, "dropped": 2, "rows_out": 4}


def test_pass_bins():
    assert [funnel.pass_bin(c, 4) for c in range(5)] == ["0%", "1-25%", "26-50%", "51-75%", "100%"]
    assert funnel.pass_bin(99, 100) == "76-99%" and funnel.pass_bin(0, 0) == "no samples"


def test_funnel_survives_json(trace_tables):
    counts = _funnel(*trace_tables)
    again = funnel.from_json(json.loads(json.dumps(funnel.to_json(counts))))
    assert funnel.stage_table(again) == funnel.stage_table(counts)
    assert funnel.summary_table(again) == funnel.summary_table(counts)
    # Merging shard funnels that already hold an "all" entry does not count anything twice.
    assert funnel.merge([again])["all"].samples == 15


def test_source_rows_table_from_the_problems_manifest():
    report = {
        "skipped": {"field 'question' is empty": 1, "duplicate question (de-duplication)": 3},
        "repaired": {"answer letter and answer_index disagree (the letter is kept)": 1},
        "examples": {"skipped: field 'question' is empty": "mmlu_pro (t.jsonl): row 5 (question_id 74)"},
    }
    assert funnel.source_rows_table(report) == [
        {"action": "skipped", "reason": "duplicate question (de-duplication)", "rows": 3, "first": ""},
        {"action": "skipped", "reason": "field 'question' is empty", "rows": 1,
         "first": "mmlu_pro (t.jsonl): row 5 (question_id 74)"},
        {"action": "repaired", "reason": "answer letter and answer_index disagree (the letter is kept)", "rows": 1,
         "first": ""},
    ]  # fmt: skip
    assert funnel.source_rows_table(None) == [] == funnel.source_rows_table({"skipped": {}, "repaired": {}})
