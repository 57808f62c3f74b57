"""Answer extraction: the final answer a response commits to, as a string.

Only the text after the reasoning counts, and only explicit final markers give an answer: a
letter or number that the model merely discusses must never become its answer, since a false
extraction can turn a wrong trace correct. Markers, in priority order: a ``The answer is X``
line, the last ``\\boxed{X}``, ``<answer>X</answer>``, an ``Answer: X`` line (or ``Answer $X$``),
then two last resorts: for integer and number answers the last number of the text, for math
answers a closing sentence ``... is $X$.``; neither ever takes a hedged sentence.

Integer and number answers are read whole: an expression (``\\sqrt{5}``, ``3\\pi``, ``5!``) is
left for the grader to evaluate, never cut down to its first number, and an answer with several
values (``3 or 5``, ``12, 13``) stays several values.
"""

from __future__ import annotations

import re

from tracemill.records import ANSWER_TYPES, OPTION_LETTERS

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_ANSWER_IS_WORDS = r"\bthe\s+(?:final\s+|correct\s+)?answer\s+is\b"
# The content runs to the end of the line or to the next "the answer is" on it (a model that corrects itself).
_ANSWER_IS = re.compile(_ANSWER_IS_WORDS + rf"[\s:*_]*(?P<x>(?:(?!{_ANSWER_IS_WORDS})[^\n])*)", re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<answer>(?P<x>.*?)</answer>", re.IGNORECASE | re.DOTALL)
_ANSWER_LINE = re.compile(
    r"(?<![A-Za-z])(?:final\s+)?answer\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?(?P<x>[^\n]*)", re.IGNORECASE
)
# ``Answer $ 9 $``: no colon, so the whole line must be the marker and one piece of math.
_ANSWER_MATH_LINE = re.compile(
    r"^[ \t*_#]*(?:final\s+)?answer[ \t*_]*"
    r"(?P<x>(?:\$\$[^$]+\$\$|\$[^$\n]+\$|\\\([^\n]+?\\\)|\\\[.+?\\\])[ \t.*_]*)$",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
# Chat-template tokens a model sometimes writes after its answer: the response ends there.
_END_TOKENS = re.compile(r"<\|(?:im_start|im_end|endoftext|eot_id)\|>")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
# A number as written in an answer: sign, thousands separators, decimals, a simple fraction
# (``\frac{3}{4}``, ``\frac34``, ``\frac1{2}``, ``2/3`` also at the end of a sentence).
_FRAC_ARG = r"(?:\{\s*\d+\s*\}|\d)"
NUMBER = (
    rf"(?<![\w.])[-−+]?(?:\\[dt]?frac{_FRAC_ARG}{_FRAC_ARG}"
    r"|(?:\d{1,3}(?:(?:,|\{,\})\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?!\d|\.\d))?|\.\d+)"
)
_NUMBER = re.compile(NUMBER)
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_WRAPPERS = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{")
_LETTER = re.compile(
    rf"^(?:(?:option|choice)\s+)?(?P<paren>[(\[])?\s*(?P<l>[{OPTION_LETTERS}])\s*(?(paren)[)\]])(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_ENGLISH_A = re.compile(r"^\s+[a-z]")  # "A total of", "I think": an article or pronoun, not an option
_LETTER_BREAK = re.compile(r"^(?:$|[).:,;\]]|\s+(?:$|[\w(\[\"'-]))")
# Words that make an answer not one committed value: alternatives ("3 or 5") and doubt ("maybe 4", "4?").
_ALTERNATIVES = re.compile(r"\b(?:or|either)\b|\\(?:lor|vee)\b", re.IGNORECASE)
_DOUBT = re.compile(r"\b(?:maybe|perhaps|possibly|probably|unsure|unclear|guess)\b|\?", re.IGNORECASE)
# Words next to a lone number that make it part of an expression or a bound, not the answer itself.
_MATH_WORDS = re.compile(
    r"\b(?:sqrt|roots?|squared|cubed|halfs?|halves|thirds?|quarters?|fourths?|fifths?|sixths?|sevenths?|eighths?"
    r"|ninths?|tenths?|twice|double|triple|times|over|divided|plus|minus|negative|factorial|pi|log|ln|sin|cos|tan"
    r"|exp|power|least|most|than|about|approx\w*|around|nearly|almost|roughly|under|between|up|e|i)\b",
    re.IGNORECASE,
)
_UNIT_NOISE = re.compile(
    r"\\[%$]|\\[,;:! ]|\\q?quad|\^\s*\{?\s*\\circ\s*\}?|\\degree|°|[$€£¥%]|(?<=[A-Za-z])\^\{?[23]\}?"
)
_ATTACHED_UNITS = {"m", "g", "s", "l", "h", "cm", "mm", "km", "kg", "mg", "ml", "ft", "in", "lb", "oz", "yd", "hr"}
_UNIT_TEXT = re.compile(r"[\sA-Za-z.,:;'\"()*-]*")
# Where a marker's content turns into an explanation: "12 because ...", "7. I hope it is correct."
_EXPLANATION = re.compile(r"(?:,?\s+(?:because|since|as|which|where|given)\b|\.\s+(?=[A-Z]))")
_CONNECTOR = re.compile(r"^\s*(?:,|;|&|\band\b|\bor\b)?\s*$", re.IGNORECASE)
# The last resort for math: a closing sentence that states one piece of math after "is" (or the like).
_CLOSING = re.compile(
    r"\b(?:is|are|equals?|was|be|gives?|get|obtain|yields?)\s*:?\s*"
    r"(?:\$\$(?P<a>[^$]+?)\$\$|\$(?P<b>[^$]+?)\$|\\\((?P<c>.+?)\\\)|\\\[(?P<d>.+?)\\\]"
    r"|(?P<e>-?\d[\d,]*(?:\.\d+)?(?:/\d+)?))\s*[.!]?\s*$",
    re.DOTALL,
)
_EQUALS = re.compile(r"(?<![<>!=\\])=(?!=)")
_VERB = re.compile(r"\b(?:is|are|was|were|equals?)\b", re.IGNORECASE)
# Boxes on one line joined only by connectors: "\\boxed{-2} and \\boxed{1}" is one answer, two values.
_BOX_JOINT = re.compile(r"^(?:\s|,|;|\$|\\[()\[\]]|\\q?quad|\\text\s*\{\s*(?:and|or|,)?\s*\}|\band\b|\bor\b)*$")
_DOUBT_DOTS = re.compile(r"\.\.\.|…|\\[lc]?dots\b")
_DISCUSSION = re.compile(
    r"\b(?:if|suppose|assume|assuming|check|checking|not|but|wrong|incorrect|instead|try|let|when|whether|test)\b",
    re.IGNORECASE,
)
# Unicode math as LaTeX, in golds and answers alike, before any comparison.
_UNICODE = {
    "π": "\\pi ",
    "×": "\\times ",
    "÷": "\\div ",
    "≤": "\\le ",
    "≥": "\\ge ",
    "≠": "\\neq ",
    "·": "\\cdot ",
    "⋅": "\\cdot ",
    "∞": "\\infty ",
    "±": "\\pm ",
    "∪": "\\cup ",
    "∩": "\\cap ",
    "−": "-",
    "½": "\\frac{1}{2}",
    "¼": "\\frac{1}{4}",
    "¾": "\\frac{3}{4}",
    "²": "^{2}",
    "³": "^{3}",
}
_UNICODE_CHARS = re.compile("[" + "".join(_UNICODE) + "]")
_ROOT_ARG = re.compile(r"\s*(?:\d+(?:\.\d+)?|[A-Za-z]|\\[A-Za-z]+)")


def final_text(response: str | None) -> str | None:
    """The part of a response that can hold the answer: after the last ``</think>``.

    A text that opens ``<think>`` and never closes it was cut off mid-reasoning: it has no answer.
    """
    if response is None:
        return None
    end = response.rfind(THINK_CLOSE)
    if end >= 0:
        response = response[end + len(THINK_CLOSE) :]
    elif THINK_OPEN in response:
        return None
    token = _END_TOKENS.search(response)
    return response[: token.start()] if token else response


def normalize_unicode(text: str) -> str:
    """Unicode math as LaTeX: ``√{3}``, ``√3`` -> ``\\sqrt{3}``, ``π`` -> ``\\pi``, ``≤`` -> ``\\le`` (GeoQA golds)."""
    if "√" in text:
        out, pos = [], 0
        while (root := text.find("√", pos)) >= 0:
            out.append(text[pos:root])
            start = root + 1
            while start < len(text) and text[start] == " ":
                start += 1
            if start < len(text) and text[start] in "{(":
                close = "}" if text[start] == "{" else ")"
                depth, end = 0, start
                for end in range(start, len(text)):
                    depth += {text[start]: 1, close: -1}.get(text[end], 0)
                    if depth == 0:
                        break
                out.append("\\sqrt{" + text[start + 1 : end] + "}")
                pos = end + 1
            elif match := _ROOT_ARG.match(text, start):
                out.append("\\sqrt{" + match.group(0).strip() + "}")
                pos = match.end()
            else:
                out.append("\\sqrt")
                pos = start
        text = "".join(out) + text[pos:]
    return _UNICODE_CHARS.sub(lambda m: _UNICODE[m.group(0)], text)


def hedged(answer: str, *, alternatives: bool = True) -> bool:
    """Whether an answer doubts itself (``maybe 4``) or, unless told not to, offers alternatives (``3 or 5``).

    Math answers may be a set of solutions (``x = 2 or x = 3``): the grader compares those as sets.
    """
    text = unwrap(answer)
    if _DOUBT.search(text) or _DOUBT_DOTS.search(text):
        return True
    if spaced_digits(text) and parse_number_text(text) is None:  # "1 2", but not "1 000" or "4 4/9"
        return True
    return bool(alternatives and _ALTERNATIVES.search(text))


def spaced_digits(text: str) -> bool:
    """Digits apart by spaces that are no thousands groups: ``1 2`` is two numbers (``1 000`` is one)."""
    text = _SPACING.sub(" ", text.replace("\\!", ""))
    return any(
        not re.fullmatch(r"\d{1,3}(?:\s\d{3})+", run) for run in re.findall(r"(?<![\w^_{.])\d++(?:[ \t]+\d++)+", text)
    )


def brace_group(text: str, start: int) -> tuple[str, int] | None:
    """The content of the ``{...}`` group whose ``{`` is at ``start``, and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        char = text[i]
        if char == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif char == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def boxed_answers(text: str) -> list[str]:
    """Every brace-matched ``\\boxed{...}`` / ``\\fbox{...}`` content, in order (unclosed ones skipped)."""
    found = []
    pos = 0
    while match := _BOX.search(text, pos):
        group = brace_group(text, match.end() - 1)
        if group is None:
            pos = match.end()
            continue
        found.append(group[0].strip())
        pos = group[1]
    return found


def _final_boxes(text: str) -> list[str]:
    """The boxed answers for extraction: the last boxes on a line joined only by ``and`` or commas are one.

    ``\\boxed{-2} \\text{ and } \\boxed{1}`` answers with two values, ``-2, 1``; joined by ``or`` they
    stay a hedge (``-2 \\text{ or } 1``).
    """
    spans: list[tuple[int, int, str]] = []
    pos = 0
    while match := _BOX.search(text, pos):
        group = brace_group(text, match.end() - 1)
        if group is None:
            pos = match.end()
            continue
        spans.append((match.start(), group[1], group[0].strip()))
        pos = group[1]
    if len(spans) < 2:
        return [content for _, _, content in spans]
    first = len(spans) - 1
    while first > 0 and _BOX_JOINT.match(text[spans[first - 1][1] : spans[first][0]]):
        first -= 1
    joined = spans[first][2]
    for (_, end, _), (start, _, content) in zip(spans[first:], spans[first + 1 :], strict=False):
        hedge = re.search(r"\bor\b", text[end:start], re.IGNORECASE)
        joined += (" \\text{ or } " if hedge else ", ") + content
    return [content for _, _, content in spans[:first]] + [joined]


def unwrap(text: str, pattern: re.Pattern[str] = _WRAPPERS) -> str:
    """Replace ``\\text{X}`` (and the like) by ``X``, brace-matched, nested ones too."""
    while match := pattern.search(text):
        group = brace_group(text, match.end() - 1)
        if group is None:
            return text[: match.start()] + text[match.end() :]
        text = text[: match.start()] + group[0] + text[group[1] :]
    return text


def clean(text: str) -> str:
    """Strip what surrounds an answer: markdown emphasis, math delimiters, a closing period."""
    text = text.strip()
    boxed = boxed_answers(text)
    if boxed:
        return boxed[-1]
    tagged = _ANSWER_TAG.findall(text)
    if tagged:
        return clean(tagged[-1])
    for _ in range(3):
        before = text
        text = text.strip().strip("*").strip()
        if text.startswith("__") and text.endswith("__"):
            text = text[2:-2]
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            inner = text[len(left) : len(text) - len(right)]
            whole = text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right)
            bare = inner.replace("\\$", "")  # an escaped dollar is currency, not a delimiter
            if whole and left not in bare and right not in bare:  # "$12$ and $13$" is two pieces
                text = inner
        text = text.strip()
        if text.endswith(".") and not text.endswith(".."):  # a closing period, never an ellipsis
            text = text[:-1].rstrip()
        if text == before:
            break
    return text


def _marker_content(text: str, match: re.Match[str]) -> str:
    """What follows a marker: the rest of its line, or the next non-empty line if that is empty."""
    content = match.group("x")
    if not clean(content):
        rest = text[match.end() :].lstrip("\n")
        content = rest.split("\n", 1)[0] if rest.strip() else ""
    return _cut_explanation(content)


def _cut_explanation(content: str) -> str:
    """``7. I hope it is correct.`` -> ``7``; ``12 because ...`` -> ``12`` (outside math and braces only)."""
    depth, dollars = 0, 0
    for i, char in enumerate(content):
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
        elif char == "$" and not content[:i].endswith("\\"):
            dollars += 1
        elif depth <= 0 and dollars % 2 == 0 and _EXPLANATION.match(content, i):
            return content[:i]
    return content


def _first_math_span(text: str) -> str:
    """In ``$x = 5$ because ...`` the answer is the math, not the sentence after it.

    Several pieces of math joined only by connectors (``$12$ and $13$``, ``$2$ or $3$``) are one
    answer with several values, kept whole as a list (``or`` stays: a hedge is never credited).
    """
    spans = list(_MATH_SPAN.finditer(text))
    if not spans or spans[0].start() > 2:
        return text
    values = [next(g for g in spans[0].groups() if g is not None)]
    for before, span in zip(spans, spans[1:], strict=False):
        between = text[before.end() : span.start()]
        if not _CONNECTOR.match(between):
            break
        joiner = " \\text{ or } " if re.search(r"\bor\b", between, re.IGNORECASE) else ", "
        values.append(joiner + next(g for g in span.groups() if g is not None))
    return "".join(values)


def choice_letter(answer: str, num_choices: int | None = None) -> str | None:
    """The option letter an answer states (``C``, ``(C)``, ``\\text{C}``, ``C) 42``), or None."""
    text = clean(unwrap(answer)).strip().strip("*").strip()
    match = _LETTER.match(text)
    if match is None:
        return None
    letter, rest = match.group("l"), match.group("rest")
    if match.group("paren") is None:
        if letter.islower() and rest.strip():
            return None  # "a prime number"
        if not _LETTER_BREAK.match(rest) or (letter in "AI" and _ENGLISH_A.match(rest)):
            return None  # "E = mc^2", "A total of 5"
    letter = letter.upper()
    count = min(num_choices, len(OPTION_LETTERS)) if num_choices else len(OPTION_LETTERS)
    return letter if OPTION_LETTERS.index(letter) < count else None


def _as_type(content: str, answer_type: str, num_choices: int | None) -> str | None:
    """The answer a marker's content gives for this answer type, or None if it gives none.

    A hedged content (``3 or 5``, ``(B) or (C)``) is returned whole, so that no earlier marker
    takes its place and the grader leaves it undecided.
    """
    text = clean(normalize_unicode(content))
    if answer_type == "choice":
        letter = choice_letter(text, num_choices)
        return text if letter is not None and hedged(text) else letter
    if answer_type == "text":
        return text or None
    if answer_type == "math" and _VERB.search(_MATH_SPAN.sub(" ", text)):
        return _closing_math(text)  # "The volume of $V$ is 120": the value after "is", or nothing
    if answer_type == "math":
        return clean(_first_math_span(text)) or None
    return _numeric(clean(_first_math_span(text)))


def _numeric(whole: str) -> str | None:
    """An integer or number answer read whole: a number, an expression, or several values as they are."""
    whole = _EQUALS.split(whole)[-1].strip()  # "x = 5", "3 \\times 4 = 12"
    if parse_number_text(whole):
        return whole
    plain = unwrap(whole)
    matches = _numbers(plain)
    if not matches:
        return whole if number_word(whole) is not None else None
    if len(matches) == 1 and not hedged(plain):
        number = matches[0]
        rest = _UNIT_NOISE.sub(" ", plain[: number.start()] + " " + plain[number.end() :])
        attached = re.match(r"[A-Za-z]*", plain[number.end() :]).group(0)  # "3x" is a term, "5cm" a unit
        unit = not attached or attached.lower() in _ATTACHED_UNITS or len(attached) >= 3
        if _UNIT_TEXT.fullmatch(rest) and not _MATH_WORDS.search(rest) and unit:
            return number.group(0).strip()  # "12 apples", "5 cm", "$18", "45 degrees"
    return whole  # "\\sqrt{5}", "3\\pi", "5!", "2^{10}", "3 or 5", "12, 13": the grader reads it whole


def extract(response: str | None, answer_type: str, num_choices: int | None = None) -> str | None:
    """The answer a response commits to, or None when it has none (truncated, no final marker)."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}; known: {list(ANSWER_TYPES)}")
    text = final_text(response)
    if not text or not text.strip():
        return None
    tiers: list[list[str]] = [
        [_marker_content(text, m) for m in _ANSWER_IS.finditer(text)],
        _final_boxes(text),
        [m.group("x") for m in _ANSWER_TAG.finditer(text)],
        [_marker_content(text, m) for m in _ANSWER_LINE.finditer(text)]
        + [m.group("x") for m in _ANSWER_MATH_LINE.finditer(text)],
    ]
    for contents in tiers:
        for content in reversed(contents):
            answer = _as_type(content, answer_type, num_choices)
            if answer is not None:
                return answer
    if answer_type in ("integer", "number"):
        return _last_number(normalize_unicode(text))
    if answer_type == "math":
        return _closing_math(normalize_unicode(text))
    return None


def _numbers(text: str) -> list[re.Match[str]]:
    """The numbers of a text, but not exponents or subscripts (``m^{2}``, ``x_1``)."""
    return [m for m in _NUMBER.finditer(text) if not text[: m.start()].rstrip("{ ").endswith(("^", "_"))]


def _last_sentence(text: str) -> str:
    """The text's last sentence (a period followed by a space ends one; decimals do not)."""
    text = text.strip()
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s)|\n", text[:-1])]
    return text[ends[-1] :].strip() if ends else text


def _last_number(text: str) -> str | None:
    """The last number of a text without markers, unless the sentence it ends hedges (``3 or 5``)."""
    numbers = _numbers(text)
    if not numbers:
        return None
    last = numbers[-1]
    sentence = _last_sentence(text[: last.end()] + text[last.end() :].split("\n", 1)[0])
    return None if hedged(sentence) else last.group(0).strip()


def _closing_math(text: str) -> str | None:
    """A math answer stated in prose: the last sentence ends ``is $X$.`` and discusses nothing else.

    The sentence must hold exactly one piece of math and no hedge, condition or check, so a value
    that is merely discussed ("if $x = 3$ ...", "not $4$") never becomes the answer.
    """
    sentence = _last_sentence(text)
    match = _CLOSING.search(sentence)
    if match is None or hedged(sentence) or _DISCUSSION.search(sentence):
        return None
    return clean(next(g for g in match.group("a", "b", "c", "d", "e") if g is not None))


# --- normal forms, shared by the grader's fast paths -------------------------------------------

_SPACING = re.compile(r"\\[,;:! ]|\\q?quad|\\displaystyle|\\left|\\right|~")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree")
_FRAC = re.compile(r"\\[dt]frac")
_CURRENCY = re.compile(r"\\\$|\$|€|£|¥|\bUSD\b|\\euro")
_PERCENT = re.compile(r"\s*(?:\\%|%|\\percent|percent(?:age)?|pct)\.?\s*$", re.IGNORECASE)
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


def normalize(answer: str) -> str:
    """A canonical string for exact comparison: no spacing commands, delimiters, wrappers or degrees."""
    text = clean(answer)
    text = unwrap(text)
    text = _SPACING.sub(" ", text)
    text = _FRAC.sub(r"\\frac", text)
    text = _DEGREES.sub("", text)
    text = text.replace("{,}", ",").replace("−", "-")
    text = re.sub(r"\s+", "", text)
    return text.rstrip(".")


def normalize_text(answer: str) -> str:
    """A canonical form of a free-text answer: case, punctuation, articles and spacing aside."""
    text = unwrap(clean(answer)).lower()
    text = re.sub(r"[^\w\s.-]", " ", text)
    text = re.sub(r"\b(?:a|an|the)\b", " ", text)
    return " ".join(text.split()).strip(".")


def number_word(text: str) -> int | None:
    """``five`` -> 5 for small counts written out (CLEVR-style answers)."""
    word = clean(text).strip().lower()
    return _WORDS.index(word) if word in _WORDS else None


def parse_number_text(answer: str) -> tuple[str, bool] | None:
    """The bare number an answer is, as text without separators, and whether it was a percent.

    ``$1,000.50`` -> ``1000.50``; ``25\\%`` -> (``25``, True); ``\\frac{3}{4}`` -> ``3/4``.
    Anything else (an expression, several numbers) is None.
    """
    spaced = re.sub(r",\s*\\!\s*", ",", unwrap(clean(answer)))  # "10,\\!000", "11,\\! 111": one number
    spaced = _SPACING.sub(" ", spaced)
    if mixed := re.fullmatch(r"\s*([-+]?)(\d+)\s+(\d+)\s*/\s*(\d+)\s*", spaced):
        sign, whole, num, den = mixed.groups()  # "4 4/9" is 40/9; "11 7/6" is not a mixed number
        if int(den) > 0 and int(num) < int(den):
            return f"{'-' if sign == '-' else ''}{int(whole) * int(den) + int(num)}/{den}", False
        return None
    if re.search(r"\d\s*[,;]\s+\d", spaced):
        return None  # "32, 349" is a list of two numbers; "32,349" is one
    for digits in re.findall(r"(?<!\d)\d++(?:\s+\d++)+", spaced):  # the lookbehind keeps it linear on long runs
        if not re.fullmatch(r"\d{1,3}(?:\s\d{3})+", digits):
            return None  # "1 000" is a thousand; "1 2" is two numbers
    text = normalize(answer)
    text = _CURRENCY.sub("", text)
    percent = bool(_PERCENT.search(text))
    text = _PERCENT.sub("", text).strip()
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    text = text.lstrip("+")
    if m := re.fullmatch(r"(-?)\\frac(?:\{(\d+)\}|(\d))(?:\{(\d+)\}|(\d))", text):
        text = f"{m.group(1)}{m.group(2) or m.group(3)}/{m.group(4) or m.group(5)}"
    if re.fullmatch(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?", text):
        return text, percent
    return None
