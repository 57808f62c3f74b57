"""Reward models on vLLM's pooling runner: ``classify`` for one score per sample, ``token_classify`` per step.

A reward model reads the prompt (through its chat template, when it has one) and the scored text. A
process reward model reads the steps one after another and is scored at each step's last token, as
PRMs are trained (Qwen2.5-Math-PRM reads its step marker there). Texts are tokenized here, piece by
piece, so the step ends are exact and an input longer than ``max_length`` is cut (see :func:`encode`)
and recorded as truncated. The score is the head's activated output of its last
label: a probability for one-label reward heads and the "good" class of two-label PRMs.

vLLM spawns worker processes: build an engine only under a ``__main__`` guard or in a flow run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracemill.scoring.config import ProcessRewardModelVerifier, RewardModelVerifier


@dataclass(frozen=True)
class Encoded:
    """A scoring input as token ids, the positions where each piece ends, and whether it was cut."""

    token_ids: list[int]
    ends: list[int]  # one per piece that survived truncation
    truncated: bool


def encode(tokenizer: Any, prompt: str, pieces: Sequence[str], max_length: int) -> Encoded:
    """Token ids of the prompt followed by ``pieces``, at most ``max_length`` of them.

    Past ``max_length`` starts are cut: the text's first, so that it keeps what fits beside the whole
    prompt, but never less than half of ``max_length`` (a long prompt then loses its start instead).
    The end of the text, where the answer is, always stays; a piece wholly cut away has no end (and so
    no score).
    """
    if getattr(tokenizer, "chat_template", None):
        head = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    else:
        head = prompt + "\n"
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    piece_ids = [tokenizer(piece, add_special_tokens=False)["input_ids"] for piece in pieces]
    body = [token for ids in piece_ids for token in ids]
    ends, position = [], 0  # each piece's last token, as a position in the body
    for ids in piece_ids:
        position += len(ids)
        ends.append(position - 1 if ids else -1)
    truncated = len(head_ids) + len(body) > max_length
    body_keep = (
        min(len(body), max(max_length - len(head_ids), max_length - max_length // 2)) if truncated else len(body)
    )
    head_keep = min(len(head_ids), max_length - body_keep)
    cut = len(body) - body_keep
    ids = head_ids[len(head_ids) - head_keep :] + body[cut:]
    return Encoded(ids, [head_keep + end - cut for end in ends if end >= cut], truncated)


class PoolingScorer:
    """``vllm.LLM(runner="pooling")`` for one reward model, loaded once per flow run."""

    def __init__(self, verifier: RewardModelVerifier | ProcessRewardModelVerifier, **engine_args: Any):
        from vllm import LLM

        from tracemill import lifetime

        self.verifier = verifier
        self.task = "classify" if isinstance(verifier, RewardModelVerifier) else "token_classify"
        args = {**verifier.engine_args(), **engine_args}
        with lifetime.reaped_with_us():  # the engine core and its workers die with this process
            self.llm = LLM(model=verifier.model, runner="pooling", pooler_config={"task": self.task}, **args)
        self.tokenizer = self.llm.get_tokenizer()

    def score(self, inputs: Sequence[Encoded]) -> list[list[float]]:
        """Per input: ``[score]`` for a reward model, one score per piece end for a process reward model."""
        if not inputs:
            return []
        prompts = [{"prompt_token_ids": item.token_ids} for item in inputs]
        outputs = self.llm.encode(prompts, pooling_task=self.task, use_tqdm=False)
        scores = []
        for item, output in zip(inputs, outputs, strict=True):
            data = output.outputs.data
            if self.task == "classify":
                scores.append([float(data.reshape(-1)[-1])])
            else:
                scores.append([float(data[end].reshape(-1)[-1]) for end in item.ends])
        return scores

    def close(self) -> None:
        """Shut the engine down now, rather than when the process exits."""
        self.llm.llm_engine.engine_core.shutdown()
