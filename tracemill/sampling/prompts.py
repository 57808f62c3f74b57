"""Versioned prompt templates. Every sample records the template's id (name, version and content hash) and
the prompt exactly as it was sent (:func:`prompt_columns`), which filters and exports read as it is.

A template is text with ``{fields}`` filled from a problem row: ``question``, ``description``
(empty when the problem has none), ``problem`` (the description, if any, then the question) and
``options`` (lettered choices, one per line).
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tracemill.records import OPTION_LETTERS
from tracemill.teachers.base import Prompt

FIELDS = {"question", "description", "problem", "options"}


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    text: str
    mode: Literal["chat", "completion"] = "chat"
    system: str | None = None

    def __post_init__(self) -> None:
        used = {field for _, field, _, _ in string.Formatter().parse(self.text) if field is not None}
        unknown = used - FIELDS
        if unknown:
            raise ValueError(f"prompt {self.name!r}: unknown field(s) {sorted(unknown)}; known: {sorted(FIELDS)}")

    @property
    def content_hash(self) -> str:
        payload = f"{self.mode}\x1f{self.system or ''}\x1f{self.text}"
        return hashlib.sha256(payload.encode()).hexdigest()[:8]

    @property
    def id(self) -> str:
        """Recorded on every sample: a changed text shows even if the version was not bumped."""
        return f"{self.name}@v{self.version}:{self.content_hash}"

    @property
    def opens_think(self) -> bool:
        """A completion prompt that ends inside ``<think>``: the model's text starts with reasoning."""
        return self.mode == "completion" and self.text.rstrip().endswith("<think>")

    def render(self, problem: Mapping[str, Any]) -> Prompt:
        text = self.text.format(**prompt_fields(problem))
        if self.mode == "completion":
            return text
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return [*messages, {"role": "user", "content": text}]


def prompt_columns(prompt: Prompt) -> dict[str, Any]:
    """A sample row's record of the prompt it was sent, so later stages never render it again.

    ``prompt``: a completion prompt's text, or a chat prompt's user message(s); ``prompt_messages``: a chat
    prompt's messages exactly as sent (None for a completion prompt).
    """
    if isinstance(prompt, str):
        return {"prompt": prompt, "prompt_messages": None}
    return {
        "prompt": "\n\n".join(m["content"] for m in prompt if m["role"] == "user"),
        "prompt_messages": [{"role": m["role"], "content": m["content"]} for m in prompt],
    }


def prompt_fields(problem: Mapping[str, Any]) -> dict[str, str]:
    description = problem.get("description") or ""
    question = problem["question"]
    choices = problem.get("choices") or []
    if len(choices) > len(OPTION_LETTERS):
        raise ValueError(f"problem {problem.get('problem_id')}: {len(choices)} choices, at most {len(OPTION_LETTERS)}")
    return {
        "question": question,
        "description": description,
        "problem": f"{description}\n{question}" if description else question,
        "options": "\n".join(f"{OPTION_LETTERS[i]}) {choice}" for i, choice in enumerate(choices)),
    }


_CLEVR = "Answer the question according to scene description.\n\n{description}\nQuestion:\n{question}"

BUILTIN: dict[str, PromptTemplate] = {
    t.name: t
    for t in [
        PromptTemplate("clevr_v1", 1, _CLEVR),
        PromptTemplate(
            "clevr_v2",
            2,
            _CLEVR + "\n\nEnd your answer with a new line that starts with **The answer is: ** followed by the number.",
        ),
        PromptTemplate(
            "math_boxed",
            1,
            "{problem}\n\nPlease reason step by step, and put your final answer within \\boxed{{}}.",
        ),
        PromptTemplate(
            "choice",
            1,
            "{problem}\n\n{options}\n\nThink step by step, then end your answer with a line of the form "
            "'Answer: X' where X is the letter of the correct option.",
        ),
        PromptTemplate(
            "r1_think_answer",
            1,
            "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
            "The assistant first thinks about the reasoning process in the mind and then provides the user with "
            "the answer. The reasoning process and answer are enclosed within <think> </think> and "
            "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
            "<answer> answer here </answer>. User: {problem}. Assistant: <think>",
            mode="completion",
        ),
    ]
}


def templates(custom: Iterable[PromptTemplate] = ()) -> dict[str, PromptTemplate]:
    """Built-in templates plus the user's; a user template may replace a built-in of the same name."""
    return {**BUILTIN, **{t.name: t for t in custom}}
