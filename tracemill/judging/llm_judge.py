"""The LLM judge: is a predicted answer the same as the reference answer, in the context of the problem?

Rules grade most answers; a judge model decides what they cannot (units, wording, forms the
symbolic engine does not know). The prompt follows NeMo-Skills' math judge: a few worked examples,
then the problem, the reference and the predicted answer, and the reply must end in a line
``Judgement: Yes`` or ``Judgement: No``. Anything else is undecided: a judge that rambles never
turns a sample correct. The judge goes through the teacher interface, so the vLLM offline engine
and any OpenAI-compatible endpoint both work; on vLLM, :data:`VERDICT_REGEX` as the guided regex
forces the verdict line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tracemill.seeds import request_seed
from tracemill.teachers.base import Prompt, SampleRequest, SamplingParams, Teacher

# Names the prompt in the judge's identity; the grader version (a hash of this module's source, see
# tracemill.judging.stage.CODE_VERSION) already changes with any change to its wording.
PROMPT_VERSION = "judge-math-1"

# Guided-decoding regex for vLLM: the verdict line alone.
VERDICT_REGEX = r"Judgement: (Yes|No)"

_VERDICT_LINE = re.compile(r"Judgement: (Yes|No)")

JUDGE_PROMPT = """\
You will see a problem, its reference answer and a predicted answer. Decide whether the predicted answer \
is equivalent to the reference answer in the context of the problem.

Explain your reasoning in one or two sentences, then give your judgement on a last line of its own, \
exactly "Judgement: Yes" or "Judgement: No". Only allow trivial simplifications and rewritings \
(order of factors, equivalent fractions and decimals, an omitted unit); a different value is "No".

Example 1:
Problem: Factor $2x^2 + 6x$.
Reference answer: $2x(x+3)$
Predicted answer: $(x+3) \\cdot 2x$

Reasoning: The factors are the same, only in a different order.
Judgement: Yes

Example 2:
Problem: A tank holds 12 litres and loses a quarter of its water. How many litres are left?
Reference answer: 9
Predicted answer: 9 litres

Reasoning: The predicted answer is the same number with the unit the problem uses.
Judgement: Yes

Example 3:
Problem: What is the probability that two fair coins both land heads?
Reference answer: \\frac{{1}}{{4}}
Predicted answer: \\frac{{1}}{{2}}

Reasoning: One quarter and one half are different values.
Judgement: No

Now the problem to judge:
Problem: {problem}
Reference answer: {reference}
Predicted answer: {predicted}
"""


@dataclass(frozen=True)
class JudgeItem:
    """One comparison for the judge; ``key`` (problem id and sample index) seeds the request."""

    key: str
    problem: str
    reference: str
    predicted: str


def judge_prompt(problem: str, reference: str, predicted: str) -> Prompt:
    """The judge's chat messages for one comparison."""
    text = JUDGE_PROMPT.format(problem=problem.strip(), reference=reference.strip(), predicted=predicted.strip())
    return [{"role": "user", "content": text}]


def parse_judgement(text: str | None) -> bool | None:
    """True for a final line ``Judgement: Yes``, False for ``Judgement: No``, None for anything else.

    Only the text after a ``</think>`` counts, and only its last non-empty line, which must be the
    verdict and nothing more: a verdict quoted mid-reply or hedged ("Judgement: Yes, probably") is
    undecided.
    """
    if text is None:
        return None
    if "</think>" in text:
        answer = text.rsplit("</think>", 1)[1]
    elif text.lstrip().startswith("<think>"):
        return None  # still reasoning when it stopped
    else:
        answer = text
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    if not lines:
        return None
    match = _VERDICT_LINE.fullmatch(lines[-1])
    return None if match is None else match.group(1) == "Yes"


def ask_judge(
    items: Sequence[JudgeItem], teacher: Teacher, params: SamplingParams, *, base_seed: int = 0
) -> list[bool | None]:
    """The judge's verdict on each item, in order; None where its reply was not a verdict or failed."""
    if not items:
        return []
    requests = [
        SampleRequest(
            key=item.key,
            prompt=judge_prompt(item.problem, item.reference, item.predicted),
            n=1,
            seed=request_seed(base_seed, item.key),
        )
        for item in items
    ]
    generations = teacher.generate(requests, replace(params, n=1))
    # An API's separate reasoning field (DeepSeek's reasoning_content) is never read for the verdict.
    return [None if gens[0].error is not None else parse_judgement(gens[0].text) for gens in generations]
