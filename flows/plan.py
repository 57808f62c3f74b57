"""``tracemill plan CONFIG``: the build's calls, tokens and cost per stage, before anything runs.

The library (``tracemill.plan``) counts; this reads what it needs: the problems (from the source,
in this process), endpoint prices from the TeacherEndpoint blocks, and the measured mean completion
length of a previous build of the same samples, where the store has one.
"""

from __future__ import annotations

from typing import Any

from blocks.object_store import open_store
from blocks.teacher_endpoint import TeacherEndpoint, endpoint_settings
from tracemill import plan as planning
from tracemill.build import BuildConfig
from tracemill.problems import stage as problems_stage
from tracemill.sampling import stage as sampling
from tracemill.scoring.config import LmJudgeVerifier


def build_plan(config: BuildConfig) -> list[dict[str, Any]]:
    """The plan's rows for ``config`` (see :func:`tracemill.plan.plan`)."""
    store = open_store(config.store)
    shards = problems_stage.num_shards(config.source, store)
    rows = [row for s in range(shards) for row in problems_stage.build_shard(config.source, s, store).to_pylist()]
    teachers = [config.sampling.teacher, config.judge.teacher]
    teachers += [v.teacher for v in config.scores.verifiers if isinstance(v, LmJudgeVerifier)]
    prices = {}
    for name in {teacher.endpoint_block() for teacher in teachers if teacher is not None} - {None}:
        block = TeacherEndpoint.load(name)
        if block.input_price_per_million is not None and block.output_price_per_million is not None:
            prices[name] = planning.Prices(block.input_price_per_million, block.output_price_per_million)
    problems_fp = problems_stage.stage_fingerprint(config.source, store)
    previous = sampling.samples_stage(config.sampling, problems_fp, endpoint_settings).dataset(store)
    measured = None
    if previous.is_complete():
        tokens = [t for t in previous.read(["completion_tokens"])["completion_tokens"].to_pylist() if t is not None]
        measured = sum(tokens) / len(tokens) if tokens else None
    return planning.plan(config, rows, prices=prices, measured_completion=measured)


def print_plan(rows: list[dict[str, Any]]) -> None:
    names = ["stage", "model", "calls", "prompt_tokens", "completion_tokens", "cost", "basis"]
    cells = [[_cell(row[n]) for n in names] for row in rows]
    widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.6g}" if isinstance(value, float) else str(value)
