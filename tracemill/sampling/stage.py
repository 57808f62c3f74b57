"""The sampling stage: problem shards in, one sample row per (problem_id, sample_idx) out.

Sampling is the expensive stage and reasoning traces have long-tailed lengths, so there is no
barrier anywhere: a :class:`Sampler` streams the requests of every shard of a run into one
teacher, which keeps a bounded window in flight (twice the engine's slots, or twice an endpoint's
concurrency) and hands each request back the moment it finishes. Finished problems (all ``n``
samples) are buffered and checkpointed, in completion order, every ``checkpoint_every_problems``
problems or ``checkpoint_every_s`` seconds; a shard is assembled and written once all its problems
are done. A rerun after a crash reads the checkpoints, sends only what they lack (and the samples
whose requests had failed, except prompts too long for the model, which would fail again), with
the same seeds, so every (problem_id, sample_idx) appears exactly once and a crash loses at most
one checkpoint window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from tracemill.records import SAMPLE, to_table
from tracemill.sampling.config import SamplingConfig
from tracemill.sampling.prompts import PromptTemplate, prompt_columns
from tracemill.seeds import request_seed
from tracemill.stage import Logger, Stage, reuse_or_make, shard_summary
from tracemill.store import Dataset
from tracemill.teachers.base import (
    PROMPT_TOO_LONG,
    Generation,
    Prompt,
    SampleRequest,
    SamplingParams,
    Teacher,
    split_reasoning,
)
from tracemill.teachers.factory import Endpoints, no_endpoints, teacher_identity

log = logging.getLogger(__name__)

STAGE = "samples"
# Bump when a change here changes the rows written for the same config and teacher.
# sampling-2: rows record the prompt as sent (``prompt``, ``prompt_messages``).
CODE_VERSION = "sampling-2"
# Checkpoint parts of a shard live in ``{dataset}/_checkpoints/part-{shard}-stream``.
CHECKPOINT_TAG = "stream"
# Failures a rerun would only repeat: their rows are kept, not asked for again.
NOT_RETRIED = frozenset({PROMPT_TOO_LONG})
RATE_WINDOW_S = 60.0  # tokens/s and ETA are measured over the last minute


class SamplingFailedError(RuntimeError):
    """Too many requests of a shard failed for good; the checkpoints are kept for the rerun."""


@dataclass
class ShardStats:
    """What one shard cost and produced, for the run's table artifact."""

    rows: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generated_tokens: int = 0  # completion tokens generated in this run, not read back from checkpoints
    generated_problems: int = 0
    resumed_problems: int = 0  # problems whose samples all came from checkpoints
    checkpoint_parts: int = 0
    seconds: float = 0.0
    finish_reasons: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    too_long: list[str] = field(default_factory=list)  # problems whose prompt does not fit the model's context

    @property
    def tokens_per_s(self) -> float:
        """Generation speed of this run: resumed samples cost no time, so their tokens do not count."""
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Progress:
    """The run so far: problems done of those known, completion tokens a second and ETA over the last minute."""

    problems_done: int
    problems_total: int
    tokens_per_s: float
    eta_s: float | None

    def line(self) -> str:
        eta = "?" if self.eta_s is None else f"{self.eta_s:.0f}s"
        return f"{self.problems_done}/{self.problems_total} problems, {self.tokens_per_s:.0f} tokens/s, ETA {eta}"


def template_for(
    problem: Mapping[str, Any], templates: Mapping[str, PromptTemplate], prompt: str | None
) -> PromptTemplate:
    """The configured template, else the problem's own default."""
    name = prompt or problem.get("prompt_template")
    if name is None:
        raise ValueError(f"problem {problem['problem_id']}: no prompt template configured and none on the problem")
    if name not in templates:
        raise ValueError(
            f"problem {problem['problem_id']}: unknown prompt template {name!r}; known: {sorted(templates)}"
        )
    return templates[name]


@dataclass(eq=False)
class _Shard:
    index: int
    dataset: Dataset
    checkpoints: Dataset
    next_part: int
    problems: list[_Problem] = field(default_factory=list)
    open: int = 0  # problems with samples still to come
    done: threading.Event = field(default_factory=threading.Event)
    unflushed: list[_Problem] = field(default_factory=list)  # finished problems no checkpoint holds
    assembled: bool = False
    generated_tokens: int = 0
    parts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # its checkpoint parts, shard write, cleanup


@dataclass(eq=False)
class _Problem:
    shard: _Shard
    problem_id: str
    template: PromptTemplate
    prompt: Prompt
    seed: int
    samples: dict[int, dict[str, Any]]  # sample_idx → sample row
    todo: list[int]  # sample indices not sent yet
    waiting: int = 0  # samples sent and not back yet

    def next_request(self) -> SampleRequest:
        """A request for the first run of consecutive sample indices still to send."""
        first = end = self.todo[0]
        while end + 1 in self.todo:
            end += 1
        self.todo = [i for i in self.todo if i > end]
        count = end - first + 1
        self.waiting += count
        return SampleRequest(self.problem_id, self.prompt, count, self.seed + first, first_idx=first)


class Sampler:
    """Streams the problems of many shards through one teacher and writes each shard when it is done.

    ``sample_shard`` may be called from several threads at once (one per shard task); their
    problems join one queue, served in arrival order by a single thread that runs the teacher's
    ``stream``, while another thread writes checkpoints and reports progress. The queue holds
    problems, not requests: a request is made when the teacher has room for it, so a rule may
    later stop a problem's remaining samples before they are sent. Close it (or use ``with``).
    """

    def __init__(
        self,
        teacher: Teacher,
        params: SamplingParams,
        *,
        templates: Mapping[str, PromptTemplate],
        prompt: str | None,
        base_seed: int,
        max_failed_share: float,
        checkpoint_every_problems: int = 64,
        checkpoint_every_s: float = 60.0,
        progress: Callable[[Progress], None] | None = None,
    ):
        self.teacher = teacher
        self.params = params
        self.templates = templates
        self.prompt = prompt
        self.base_seed = base_seed
        self.max_failed_share = max_failed_share
        self.checkpoint_every_problems = checkpoint_every_problems
        self.checkpoint_every_s = checkpoint_every_s
        self._report = progress
        self._cond = threading.Condition()
        self._pending: deque[_Problem] = deque()
        self._sent: dict[int, _Problem] = {}  # id(request) → its problem
        self._buffer: list[_Problem] = []  # finished problems waiting for the next checkpoint
        self._buffer_since = 0.0
        self._shards: set[_Shard] = set()
        self._closing = False
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._started = time.monotonic()
        self._done = self._total = 0
        self._recent: deque[tuple[float, int, int]] = deque()  # (when, problems finished, tokens) last minute

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the feed the teacher serves -------------------------------------------------------------

    def take(self, wait_s: float = 0.0) -> SampleRequest | None:
        with self._cond:
            if not self._pending and wait_s > 0 and not self._closing:
                self._cond.wait(wait_s)
            if not self._pending:
                return None
            problem = self._pending.popleft()
            request = problem.next_request()
            if problem.todo:
                self._pending.appendleft(problem)
            self._sent[id(request)] = problem
            return request

    def finish(self, request: SampleRequest, generations: list[Generation]) -> None:
        with self._cond:
            problem = self._sent.pop(id(request))
            got = sorted(g.sample_idx for g in generations)
            if got != list(request.sample_indices):
                raise RuntimeError(
                    f"teacher returned samples {got} for {request.key}, asked for {list(request.sample_indices)}"
                )
            tokens = 0
            for gen in generations:
                problem.samples[gen.sample_idx] = _row(problem, gen, self.teacher.model)
                tokens += gen.completion_tokens or 0
            problem.waiting -= len(generations)
            problem.shard.generated_tokens += tokens
            finished = not problem.waiting and not problem.todo
            self._recent.append((time.monotonic(), int(finished), tokens))
            if finished:
                self._finished(problem)

    @property
    def exhausted(self) -> bool:
        with self._cond:
            return self._closing and not self._pending

    @property
    def unsent(self) -> int:
        """Problems with samples not sent to the teacher yet: the work that keeps its window full."""
        with self._cond:
            return len(self._pending)

    def _finished(self, problem: _Problem) -> None:
        """A problem has all its samples: buffer it for a checkpoint, or hand its shard over when it was the last."""
        shard = problem.shard
        shard.open -= 1
        self._done += 1
        if shard.open == 0:
            shard.unflushed = [p for p in self._buffer if p.shard is shard] + [problem]
            self._buffer = [p for p in self._buffer if p.shard is not shard]
            shard.done.set()
            return
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append(problem)
        if len(self._buffer) >= self.checkpoint_every_problems:
            self._cond.notify_all()

    # --- shards ------------------------------------------------------------------------------------

    def sample_shard(self, index: int, problems: pa.Table, dataset: Dataset) -> ShardStats:
        """Sample shard ``index`` into ``dataset``, resuming from its checkpoints; blocks until it is written.

        Raises SamplingFailedError, after checkpointing what it has, when more than
        ``max_failed_share`` of the shard's samples failed for good.
        """
        start = time.perf_counter()
        shard = self._load(index, problems, dataset)
        stats = ShardStats(
            resumed_problems=sum(not p.todo for p in shard.problems),
            generated_problems=sum(bool(p.todo) for p in shard.problems),
        )
        with self._cond:
            if self._error is not None:
                raise RuntimeError("the teacher stopped") from self._error
            if self._closing:
                raise RuntimeError("the sampler is closed")
            self._start_threads()
            self._shards.add(shard)
            self._total += len(shard.problems)
            self._done += stats.resumed_problems
            for problem in shard.problems:
                if problem.todo:
                    self._pending.append(problem)
                    shard.open += 1
            if not shard.open:
                shard.done.set()
            self._cond.notify_all()
        try:
            shard.done.wait()
            with self._cond:
                if self._error is not None:
                    raise RuntimeError("the teacher stopped") from self._error
            table = to_table((r for p in shard.problems for _, r in sorted(p.samples.items())), SAMPLE, what="samples")
            account(table, stats)
            stats.generated_tokens = shard.generated_tokens
            with shard.lock:  # other shards' checkpoints go on while this one is written
                if stats.rows and stats.failed / stats.rows > self.max_failed_share:
                    self._write_part(shard, shard.unflushed)
                    kinds = ", ".join(f"{kind}: {count}" for kind, count in stats.errors.most_common())
                    raise SamplingFailedError(
                        f"{stats.failed} of {stats.rows} samples of shard {index} failed ({kinds}), above the bound "
                        f"of {self.max_failed_share:.0%}; finished problems are checkpointed and a rerun asks only "
                        "for the failed samples"
                    )
                dataset.write_shard(index, table)
                shard.assembled = True
                shard.checkpoints.delete()
        finally:
            with self._cond:
                self._shards.discard(shard)
        stats.checkpoint_parts = shard.parts
        stats.seconds = time.perf_counter() - start
        return stats

    def _load(self, index: int, problems: pa.Table, dataset: Dataset) -> _Shard:
        """The shard's problems with the samples its checkpoints hold (a later part wins) and those to send."""
        checkpoints = dataset.checkpoints(index, CHECKPOINT_TAG)
        parts = checkpoints.shard_indices()
        saved: dict[tuple[str, int], dict[str, Any]] = {}
        for part in parts:
            for row in checkpoints.read_shard(part).to_pylist():
                saved[row["problem_id"], row["sample_idx"]] = row
        shard = _Shard(index, dataset, checkpoints, next_part=parts[-1] + 1 if parts else 0)
        for row in problems.to_pylist():
            pid = row["problem_id"]
            template = template_for(row, self.templates, self.prompt)
            kept = {
                i: saved[pid, i]
                for i in range(self.params.n)
                if (pid, i) in saved and (saved[pid, i]["error"] is None or saved[pid, i]["error"] in NOT_RETRIED)
            }
            todo = [i for i in range(self.params.n) if i not in kept]
            seed = request_seed(self.base_seed, pid)
            shard.problems.append(_Problem(shard, pid, template, template.render(row), seed, kept, todo))
        return shard

    def _write_part(self, shard: _Shard, problems: list[_Problem]) -> None:
        """One checkpoint part of finished problems (caller holds the shard's lock)."""
        if shard.assembled or not problems:
            return
        rows = (r for p in problems for _, r in sorted(p.samples.items()))
        shard.checkpoints.write_shard(shard.next_part, to_table(rows, SAMPLE, what="samples"))
        shard.next_part += 1
        shard.parts += 1

    # --- threads -----------------------------------------------------------------------------------

    def _start_threads(self) -> None:
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._serve, name="tracemill-sampler-teacher", daemon=True),
            threading.Thread(target=self._checkpoint_loop, name="tracemill-sampler-checkpoints", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        try:
            self.teacher.stream(self, self.params)
        except BaseException as exc:
            log.exception("the teacher stopped")
            with self._cond:
                self._error = exc
                self._closing = True
                self._pending.clear()
                for shard in self._shards:
                    shard.done.set()
                self._cond.notify_all()

    def _checkpoint_loop(self) -> None:
        """Write the buffered problems every K problems or T seconds, and report progress about once a second."""
        reported = None
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closing or self._flush_due(), timeout=1.0)
                batch: list[_Problem] = []
                if self._flush_due() or self._closing:
                    batch, self._buffer = self._buffer, []
                progress = self._progress()
                closing = self._closing
            if batch:
                for shard in {p.shard for p in batch}:
                    with shard.lock:
                        self._write_part(shard, [p for p in batch if p.shard is shard])
            if self._report is not None and progress != reported:
                try:
                    self._report(progress)
                except Exception:
                    log.exception("progress report failed")
                reported = progress
            if closing:
                return

    def _flush_due(self) -> bool:
        if not self._buffer:
            return False
        full = len(self._buffer) >= self.checkpoint_every_problems
        return full or time.monotonic() - self._buffer_since >= self.checkpoint_every_s

    def _progress(self) -> Progress:
        now = time.monotonic()
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
            self._recent.popleft()
        span = min(RATE_WINDOW_S, now - self._started)
        tokens_per_s = sum(t for _, _, t in self._recent) / span if span > 0 else 0.0
        finished = sum(p for _, p, _ in self._recent)
        left = self._total - self._done
        eta = left * span / finished if finished else (0.0 if not left else None)
        return Progress(self._done, self._total, round(tokens_per_s, 1), None if eta is None else round(eta))

    def close(self) -> None:
        """Drop requests not sent yet, let those in flight finish, checkpoint what is buffered, stop the threads."""
        with self._cond:
            self._closing = True
            self._pending.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()


def sampler_for(
    config: SamplingConfig, teacher: Teacher, progress: Callable[[Progress], None] | None = None
) -> Sampler:
    """The Sampler a sampling config describes, around an already built teacher."""
    return Sampler(
        teacher,
        config.params(),
        templates=config.templates(),
        prompt=config.prompt,
        base_seed=config.seed,
        max_failed_share=config.max_failed_share,
        checkpoint_every_problems=config.checkpoint_every_problems,
        checkpoint_every_s=config.checkpoint_every_s,
        progress=progress,
    )


def _row(problem: _Problem, gen: Generation, teacher: str) -> dict[str, Any]:
    reasoning, response = (None, None)
    if gen.text is not None:
        reasoning, response = split_reasoning(gen.text, gen.reasoning, problem.template.opens_think)
    return {
        "problem_id": problem.problem_id,
        "sample_idx": gen.sample_idx,
        "teacher": teacher,
        "prompt_version": problem.template.id,
        **prompt_columns(problem.prompt),
        "seed": gen.seed,
        "reasoning": reasoning,
        "response": response,
        "finish_reason": gen.finish_reason,
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "latency_s": gen.latency_s,
        "error": gen.error,
    }


def account(table: pa.Table, stats: ShardStats) -> ShardStats:
    """Add a sample table's rows, failures, tokens, finish reasons and too-long prompts to ``stats``."""
    stats.rows += table.num_rows
    too_long = set(stats.too_long)
    for row in table.select(["problem_id", "finish_reason", "prompt_tokens", "completion_tokens", "error"]).to_pylist():
        if row["error"] is not None:
            stats.failed += 1
            stats.errors[row["error"]] += 1
            if row["error"] == PROMPT_TOO_LONG:
                too_long.add(row["problem_id"])
            continue
        stats.finish_reasons[row["finish_reason"] or "unknown"] += 1
        stats.prompt_tokens += row["prompt_tokens"] or 0
        stats.completion_tokens += row["completion_tokens"] or 0
    stats.too_long = sorted(too_long)
    return stats


def samples_stage(config: SamplingConfig, problems: str, endpoints: Endpoints = no_endpoints) -> Stage:
    """The samples stage of the problems dataset ``problems``; an endpoint teacher is named by its block's settings."""
    identity = config.identity(teacher_identity(config.teacher, endpoints(config.teacher)))
    return Stage(STAGE, "sample", CODE_VERSION, identity, (problems,), config)


@dataclass(frozen=True)
class SamplesJob:
    """Sample one problems shard, resuming from its checkpoints (a :class:`~tracemill.stage.ShardJob`).

    The shard jobs of a run share one ``sampler`` and run at once, so their requests stream into
    one engine. ``sampler`` builds it (and the engine) on first use, so a run whose shards all exist
    never loads it.
    """

    problems: Dataset
    dataset: Dataset
    sampler: Callable[[], Sampler]

    @property
    def outputs(self) -> tuple[Dataset, ...]:
        return (self.dataset,)

    def run(self, shard: int, force: bool, log: Logger) -> dict[str, Any]:
        made: list[ShardStats] = []

        def make() -> None:  # the sampler writes the shard itself, from its checkpoints
            made.append(self.sampler().sample_shard(shard, self.problems.read_shard(shard), self.dataset))

        reuse_or_make(self.outputs, shard, make, force=force, checkpoints=CHECKPOINT_TAG)
        stats = made[0] if made else account(self.dataset.read_shard(shard), ShardStats())
        return shard_summary(
            self.dataset,
            shard,
            rows=stats.rows,
            failed=stats.failed,
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            generated_tokens=stats.generated_tokens,
            seconds=round(stats.seconds, 3),
            tokens_per_s=round(stats.tokens_per_s, 1),
            finish_reasons=dict(stats.finish_reasons),
            errors=dict(stats.errors),
            prompt_too_long=stats.too_long,
            generated_problems=stats.generated_problems,
            resumed_problems=stats.resumed_problems,
            checkpoint_parts=stats.checkpoint_parts,
        )
