"""A judge model on the local OpenAI-compatible server (tests/fake_openai.py): it answers each judge
prompt by the predicted answer the prompt holds, with chat completions built from the openai
library's own types, so the judge's whole path (prompt, request, parsing) is the real one.
"""

from __future__ import annotations

from typing import Any

from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice

from tests.fake_openai import Fault, Reply, prompt_of

NO_VERDICT = "I cannot tell."


def chat_reply(text: str) -> Reply:
    """A 200 whose body is a chat completion saying ``text``."""
    completion = ChatCompletion(
        id="judge",
        object="chat.completion",
        created=0,
        model="judge-m",
        choices=[Choice(index=0, finish_reason="stop", message=ChatCompletionMessage(role="assistant", content=text))],
        usage=CompletionUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
    )
    return Reply(raw=completion.model_dump_json().encode())


def predicted_of(body: dict[str, Any]) -> str:
    """The predicted answer a judge request asks about."""
    return prompt_of(body).rsplit("Predicted answer: ", 1)[1].strip()


def fake_judge(replies: dict[str, str]) -> Fault:
    """Reply to each judge prompt with ``replies[predicted answer]``; an unknown answer gets no verdict line."""

    def fault(body: dict[str, Any], attempt: int) -> Reply:
        return chat_reply(replies.get(predicted_of(body), NO_VERDICT))

    return fault
