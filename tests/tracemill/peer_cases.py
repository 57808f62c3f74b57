# ruff: noqa: E501
r"""Grading cases derived from other projects' grader test suites, and our own adversarial cases.

We read the public tests of other graders and wrote, in our own format and mostly in our own
words, a case for each behaviour they check: ``label`` is the peer's verdict, ``source`` names the
repository and file it comes from. A peer usually compares two bare strings; we grade a whole
response, so each case says how the answer is written (boxed, an answer line, prose). Where we
deliberately disagree, ``ours`` is our label and ``why`` says why in one line; those cases are
debatable and left out of the agreement figure, but never out of the no-false-positive check.

:data:`ADVERSARIAL` are our own: shapes that once made a wrong answer correct (a number taken out
of an expression or a hedge, a list read as one number, a lost numerator, a discussed value).
None of them may ever be graded correct.
"""

from __future__ import annotations

from dataclasses import dataclass

from .grading_cases import r1

SOURCES = {
    "mv": ("huggingface/Math-Verify", "tests/test_all.py"),
    "mv-mixed": ("huggingface/Math-Verify", "tests/test_mixed_number_extraction.py"),
    "mv-yujian": ("huggingface/Math-Verify", "tests/test_yujianll.py"),
    "nemo": ("NVIDIA/NeMo-Skills", "tests/test_math_equal.py"),
    "hendrycks": ("hendrycks/math", "modeling/math_equivalence_test.py"),
    "qwen": ("QwenLM/Qwen2.5-Math", "evaluation/grader.py"),
    "minerva": ("EleutherAI/lm-evaluation-harness", "lm_eval/tasks/minerva_math/utils.py"),
}


@dataclass(frozen=True)
class PeerCase:
    id: str
    source: str  # a key of SOURCES
    response: str
    gold: str
    answer_type: str
    label: bool  # the peer's verdict
    ours: bool | None = None  # our label, where we deliberately disagree
    why: str | None = None

    @property
    def expected(self) -> bool:
        return self.label if self.ours is None else self.ours


PEER_CASES: list[PeerCase] = []


def _add(source: str, response: str, gold: str, answer_type: str, label: bool, ours=None, why=None) -> None:
    assert source in SOURCES and (ours is None) == (why is None)
    number = sum(case.source == source for case in PEER_CASES)
    PEER_CASES.append(PeerCase(f"{source}-{number:03d}", source, response, gold, answer_type, label, ours, why))


def boxed(answer: str) -> str:
    return r1(f"So we get $\\boxed{{{answer}}}$.")


def said(final: str) -> str:
    return r1(final)


def both_ways(source: str, a: str, b: str, answer_type: str, label: bool, ours=None, why=None) -> None:
    """A peer that checks a pair in both orders: each side once as the gold, once as the answer."""
    _add(source, boxed(b), a, answer_type, label, ours, why)
    _add(source, boxed(a), b, answer_type, label, ours, why)


DECIMAL_COMMA = "a decimal comma reads as a list or thousands separator to us; we never credit it as a decimal"

# --- Math-Verify: numbers, separators, currency, units (expression extraction) ------------------------
for gold, pred, label in [
    ("-5", "-5", True),
    ("7425000", "7,425,000", True),
    ("1000", "1 000", True),
    ("1000", "1000.0", True),
    ("1000.0", "1,000.0", True),
    ("0.4", ".4", True),
    ("1000.99", "1,000.99", True),
    ("1000.99", "$1,000.99", True),
    ("1000.99", "1,000.99$", True),
    ("1000.99", "1,000.99€", True),
    ("1000.99", "1,000.99m²", True),
]:
    _add("mv", said(f"The answer is {pred}"), gold, "number", label)
_add("mv", said("The number is not 10, it is 1,000.99€"), "1000.99", "number", True)
_add("mv", said("So the number is 10 which is 1,000.99m²"), "1000.99", "number", True)
_add("mv", said("AZYUK2A"), "2", "number", False)
_add("mv", said("The answer is 1000,99"), "1000.99", "number", True, False, DECIMAL_COMMA)
_add("mv", said("The answer is 1.22"), "1,22", "number", True, False, DECIMAL_COMMA)
_add("mv", said("Soucis : 2,74 $ a.."), "2.74", "number", True, False, DECIMAL_COMMA)
_add("mv", said("The answer is 0.111"), "0,111", "number", True, False, DECIMAL_COMMA)

# --- Math-Verify: fractions, intervals --------------------------------------------------------------
_add("mv", boxed("\\frac{10}{9}"), "10/9", "math", True)
_add("mv", boxed("-\\frac{10}{9}"), "-10/9", "math", True)
_add("mv", boxed("[0,1)"), "[0,1)", "math", True)
_add("mv", boxed("[0,1)"), "[0,9)", "math", False)
_add("mv", boxed("[0,9)"), "(0,9)", "math", False)
_add("mv", boxed("-[0,1)"), "1", "math", False)

# --- Math-Verify: how an answer line is written ---------------------------------------------------------
for pred, label in [
    ("Answer \\[ 9 \\]", True),
    ("Answer $ 9 $", True),
    ("Answer $$ 9 $$", True),
    ("Answer \\( 9 \\)", True),
    ("Answer $ \n 9 \n $", False),
    ("Answer \\( \n 9 \n \\)", False),
    ("Answer \\[ \n 9 \n \\]", True),
    ("Answer $$ \n 9 \n $$", True),
]:
    _add("mv", said(pred), "9", "math", label)
_add("mv", said("Answer \\( (9+1) \\)"), "10", "math", True)
for pred in [
    "\\frac13",
    "\\cfrac{1}{3}",
    "\\dfrac{1}{3}",
    "\\tfrac{1}{3}",
    "1/3",
    "\\left( \\frac{1}{3} \\right)",
    "\\frac{1}{3} \\text{meters}",
    "\\frac{1}{3} \\textbf{meters}",
    "k = \\frac{1}{3}",
]:
    _add("mv", said(f"The answer is ${pred}$."), "1/3", "math", True)
_add("mv", said("The answer is $\\frac3{3}$."), "1", "math", True)
_add("mv", said("The answer is $\\sqrt3$."), "\\sqrt{3}", "math", True)

# --- Math-Verify: percent -------------------------------------------------------------------------------
for pred in ["28 percent", "28 pct", "28 %", "$28$ %", "$28$ percent", "$\\boxed{28}$ pct", "28"]:
    _add("mv", said(f"The answer is {pred}"), "28\\%", "math", True)
for pred in ["28 pct", "28 percent", "28 percentage"]:
    _add("mv", boxed(pred), "28\\%", "math", True)
_add("mv", said("The answer is 28"), "0.28", "math", False)
_add("mv", said("The answer is 28"), "28/100", "math", False)
_add("mv", said("The answer is 28/100"), "28", "math", False)
_add("mv", said("The answer is 28"), "\\frac{28}{100}", "math", False)
_add("mv", said("The answer is 28"), "28*\\frac{1}{100}", "math", False)

# --- Math-Verify: whole solutions (MATH-style) ---------------------------------------------------------
for final, gold in [
    ("If $2-x=p$, then $x=2-p$. Thus $x-p=\\boxed{2-2p}$.", "2-2p"),
    ("\\boxed{\n\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}\n}.", "\\begin{pmatrix} 0 & 3 \\\\ 0 & -1 \\end{pmatrix}"),
    ("So it loses $28\\%$: a total loss of $\\boxed{28\\%}$.", "28\\%"),
    ("Therefore the polar coordinates are $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$", "(3, \\frac{\\pi}{2})"),
    ("$=2+\\frac{5}{3}+1=\\boxed{\\frac{14}{3}}$", "\\frac{14}{3}"),
    ("Therefore, $\\boxed{\\text{Evelyn}}$ is our answer.", "\\text{Evelyn}"),
    ("Hence, the angle between the lines is $\\boxed{90^\\circ}.$", "90^\\circ"),
    ("$\\sqrt{117} = \\boxed{3\\sqrt{13}}$.", "3\\sqrt{13}"),
    ("so \\[p(8) = \\frac{q(8) + 8}{8^2 - 1} = \\boxed{\\frac{3}{56}}.\\]", "\\frac{3}{56}"),
    ("Thus, there are $\\boxed{2}$ distinct possible values for $B$.", "2"),
    ("$$\\frac{1}{2}\\times 3 \\times 10 = \\boxed{15\\mbox{ cm}^2}.$$", "15\\mbox{ cm}^2"),
    ("Checking, we find that the only integer roots are $\\boxed{-2,1}.$", "-2,1"),
    ("Then, $129^{34}+96^{38} \\equiv \\boxed{9} \\pmod{11}.$", "9"),
    ("\\angle BAC &= 50^\\circ+40^\\circ = \\boxed{90^\\circ}.", "90^\\circ"),
    ("Hence, the degree of $p(x)$ is $\\boxed{0}.$", "0"),
    ("for a quotient of $\\boxed{204_5}$.", "204_5"),
    ("we find $(p,q,r) = \\boxed{(6,31,-1)}.$", "(6,31,-1)"),
    ("By the quadratic formula, $x = \\boxed{1 \\pm \\sqrt{19}}.$", "1 \\pm \\sqrt{19}"),
    ("the roots are $x = \\boxed{3 \\pm 2 \\sqrt{2}}.$", "3 \\pm 2 \\sqrt{2}"),
    ("so the answer is $\\boxed{\\{1\\pm\\sqrt{5},-2\\}}.$", "\\{1\\pm\\sqrt{5},-2\\}"),
    ("Hence, $\\boxed{f(2) < f(1) < f(4)}.$", "f(2) < f(1) < f(4)"),
    ("By sum-to-product, \\[\\sin (a + b) - \\sin (a - b) = \\boxed{2 \\sin b \\cos a}.\\]", "2 \\sin b \\cos a"),
    ("The answer is $\\boxed{\\frac{\\pi r}{h+r}}$.", "\\frac{\\pi r}{h+r}"),
    ("The distance is $\\boxed{125\\textnormal{ miles}}.$", "125"),
    (
        "The solution set is $\\boxed{[-1, -\\tfrac12) \\cup (-\\tfrac12, 0) \\cup (0, 1) \\cup (1, \\infty)}.$",
        "[-1, -\\frac{1}{2}) \\cup (-\\frac{1}{2}, 0) \\cup (0, 1) \\cup (1, \\infty)",
    ),
    ("The answer is $\\boxed{\\sqrt 2+\\sqrt 5}$", "\\sqrt{2}+\\sqrt{5}"),
    ("Therefore $\\boxed{\\frac94\\pi}$.", "\\frac{9}{4}\\pi"),
    ("So $x \\in \\boxed{\\{-1\\} \\cup [0,7)}.$", "\\{-1\\} \\cup [0,7)"),
    ("Final Answer: The final answer is $28 \\%$. I hope it is correct. Note: the solution is wrong.", "28\\%"),
    ("so the sum lies between $\\boxed{12 $ and $13 }. $ Final Answer: The final answer is \"$12 $ and $13 $\". I hope "
     "it is correct.", "12\\text{ and }13"),
]:  # fmt: skip
    _add("mv", said(final), gold, "math", True)

# --- Math-Verify: relations -------------------------------------------------------------------------------
for gold, pred, label in [
    ("x >= 5", "x \\geq 5", True),
    ("x < 3", "x \\lt 3", True),
    ("x \\leq 2", "x <= 2", True),
    ("x > 5", "x \\gt 5", True),
    ("x != 3", "x \\neq 3", True),
    ("x > 5", "x < 5", False),
    ("x \\geq 5", "x \\leq 5", False),
    ("x \\neq 5", "x != 5", True),
    ("x \\leq 5", "5 \\geq x", True),
    ("x \\geq 5", "5 \\leq x", True),
    ("x = 11", "x = 5+5+1 = 7 =11", True),
    ("7 = 11a+c", "11a+c", False),
    ("x = 1/3", "x = 5+5+1 = 1/3 \\approx 11", True),
    ("11", "x=11", True),
    ("11", "x\\approx11", True),
    ("1/3", "x=1/3\\approx1.3", True),
    ("x < 1", "-x > -1", True),
    ("x < 1", "x > -1", False),
    ("x <= 1", "-x >= -1", True),
    ("a +3z = 0", "0", False),
    ("2x + z = 1", "1", False),
    ("a^2 + b = 0", "0", False),
    ("k=1", "1", True),
    ("1", "k=1", True),
    ("z = 1 + 1 = 2", "z = 3+3 = 2", True),
    ("2x+4y-3=0", "y=-\\frac{1}{2}x+\\frac{3}{4}", True),
    ("x^2/4 + y^2/3 = 1", "x^2/16 + y^2/12 = 1/4", True),
]:
    _add("mv", said(f"The solution is ${pred}$."), gold, "math", label)
_add("mv", said("The solution is $0$."), "1 = \\zzz = x = 0", "math", True)

# --- Math-Verify: matrices ----------------------------------------------------------------------------------
for gold, pred, label in [
    ("\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}", "\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}", True),
    ("\\begin{bmatrix}0 & 0 \\\\0 & 0\\end{bmatrix}", "\\begin{pmatrix}0 & 0 \\\\0 & 0\\end{pmatrix}", True),
    ("\\begin{pmatrix}1 & 2 \\\\3 & 4\\end{pmatrix}", "\\left[\\begin{array}{cc}1 & 2 \\\\3 & 4\\end{array}\\right]", True),
    ("\\begin{pmatrix}\\frac{1}{2} & \\frac{3}{4} \\\\ \\frac{5}{6} & \\frac{7}{8}\\end{pmatrix}",
     "\\begin{pmatrix}\\frac{1}{2} & \\frac{3}{4} \\\\ \\frac{5}{6} & \\frac{7}{8}\\end{pmatrix}", True),
    ("\\begin{pmatrix}6 & 8 \\\\ 10 & 12\\end{pmatrix}",
     "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}5 & 6 \\\\ 7 & 8\\end{pmatrix}", True),
    ("\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "\\begin{pmatrix}1 & 2 \\\\ 3 & 5\\end{pmatrix}", False),
]:  # fmt: skip
    _add("mv", said(f"The matrix is ${pred}$."), gold, "math", label)
_add("mv", boxed("\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix} \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}"),
     "\\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}", "math", True)  # fmt: skip

# --- Math-Verify (from the Qwen parser's cases): harder expressions ---------------------------------------
for gold, pred, label in [
    ("\\frac{1}{12}", "0.0833333333333333", True),
    ("(1,\\frac{9}{2})", "(1,4.5)", True),
    ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}", True),
    ("\\tan^2(y)+1", "\\sec^2(y)", True),
    ("\\begin{pmatrix}-\\frac{7}{4}&-2\\\\4&\\frac{1}{4}\\end{pmatrix}",
     "\\begin{pmatrix}-\\frac{7}{4}&-2\\\\4&\\frac{1}{4}\\end{pmatrix}", True),
    ("34x+45y-20z+100=0", "-34x-45y+20z-100=0", True),
    ("\\frac{\\sqrt{\\sqrt{11}+\\sqrt{194}}}{15+2\\sqrt{33}}", "\\frac{\\sqrt{\\sqrt{11}+\\sqrt{194}}}{2\\sqrt{33}+15}", True),
    ("(a+5)(b+2)", "(+5)(b+2)", False),
    ("2", "\\frac{1+\\sqrt{5}}{2}", False),
    ("4", "\\frac{34}{16}+\\frac{\\sqrt{1358}}{16}", False),
    ("1\\sqrt{19}", "1", False),
    ("x+2n+1", "x+1", False),
]:  # fmt: skip
    _add("mv", boxed(pred), gold, "math", label)
ROUNDED = "a value rounded to two places is not the exact gold; we credit decimals only to six significant digits"
_add("mv", boxed("\\begin{pmatrix}0.33\\\\0.2 \\end{pmatrix}"), "\\begin{pmatrix}\\frac{1}{3}\\\\ \\frac{1}{5} \\end{pmatrix}",
     "math", True, False, ROUNDED)  # fmt: skip
_add("mv", boxed("(0.6,2.6667]"), "(\\frac{3}{5},\\frac{8}{3}]", "math", True, False, ROUNDED)

# --- Math-Verify: extraction from long, messy responses ----------------------------------------------------
for final, gold, label in [
    ("So P(A) = 2/3. Therefore, the probability that Alice wins the game is 2/3. <|im_start|>user", "2/3", True),
    ("So, the ordered pair $(x, y)$ that solves the system is $(7, 6)$. <|im_start|>user", "(7,6)", True),
    ("Final Answer: The final answer is $(0, 1)$. I hope it is correct. <|im_start|>user", "[0,1)", False),
    ("which is $\\boxed{[-3, 2]}$. Final Answer: The final answer is $[-3, 2]$. I hope it is correct. I apologize, let "
     "me correct it: the domain is $\\boxed{(-\\infty, -3] \\cup [2, \\infty)}$. Final Answer: The final answer is "
     "$(-\\infty, -3] \\cup [2, \\infty)$. I hope it is correct.", "[-3,2]", False),
    ("Paula's investment is worth $\\boxed{\\$16,\\!386.20}$ at the end. The answer is $16,\\!386.20$. I apologize for "
     "the repetition.", "16386.20", True),
    ("Final Answer: The volume of $ABCDEFGH$ is 120. I hope it is correct.", "120", True),
    ("Final Answer: The final answer is 12,000,023. I hope it is correct. <|im_start|>user", "12000023", True),
    ("So the smallest is $14{,}922$. Final Answer: The smallest possible value of $N$ is $\\boxed{14{,}916}$. I hope "
     "it is correct.", "14916", True),
    ("Thus, $(p,q) = \\boxed{\\left( \\frac{1}{5}, \\frac{1}{6} \\right)}.$ Final Answer: The final answer is "
     "$\\left( \\frac{1}{5}, \\frac{1}{6} \\right)$. I hope it is correct.", "\\left(\\frac{1}{5},\\frac{1}{6}\\right)",
     True),
    ("Thus, $(t,u) = \\boxed{\\left( \\frac{4}{5}, \\frac{1}{5} \\right)}.$", "\\left(\\frac{4}{5},\\frac{1}{5}\\right)",
     True),
    ("Final Answer: The final answer is $\\frac{10\\sqrt{10.5}}{27}$. I hope it is correct.", "\\frac{5\\sqrt{42}}{27}",
     True),
    ("Rounded to the nearest cent, it is worth $\\boxed{\\$16386.17}$ after 5 years. I hope it is correct.",
     "16386.17", True),
    ("$$\\frac{1}{5}=\\boxed{20 \\%}. $$ Final Answer: The final answer is $20 \\%$. I hope it is correct. Note: the "
     "solution assumes the total is the sum.", "20", True),
    ("Final Answer: The maximum number of points that could be in the domain of $f(x)$ is 19. <|im_start|>user",
     "19", True),
    ("Therefore, the point is $\\boxed{(0, 0)}$. Final Answer: The final answer is $(0, 0)$. I hope it is correct.",
     "(\\tfrac{27}{8},\\tfrac{15}{8})", False),
    ("Final Answer: The largest $n$ is 34.", "34", True),
    ("Thus, $(t,u) = \\boxed{\\left( \\frac{4}{3}, -\\frac{1}{3} \\right)}.$", "\\left( \\frac{4}{3}, -\\frac{1}{3} \\right)",
     True),
    ("Final Answer: The final answer is 16386.16.", "16386.16", True),
    ("So, the sum is $\\boxed{5866608}$. Final Answer: The final answer is 5866608. I hope it is correct.", "5866608",
     True),
    ("$1 \\times 5! \\times 5! = 120 \\times 120 = \\boxed{14400}$. Final Answer: The final answer is 14400.", "14400",
     True),
    ("Thus, the smallest is $14{,}940$. Final Answer: The final answer is $14{,}916$. I hope it is correct.", "14916",
     True),
    ("$$\\frac{1}{5} \\times 100\\% = \\boxed{20\\%}$$ Final Answer: The final answer is $20\\%$. I hope it is correct.",
     "20\\%", True),
    ("So, Anna pays approximately $7.78 for her fudge. Final Answer: The final answer is 7.78.", "7.78", True),
    ("the new error is at least $100\\%$ of the original. Final Answer: The final answer is $100$. I hope it is "
     "correct.", "100", True),
    ("$$-1(x-1)+2(y-1)+1(z-1)=0\\Rightarrow\\boxed{x-2y+z-1=0}.$$ Final Answer: The final answer is $x-2y+z-1=0$.",
     "x-2y+z-1=0", True),
    ("$0.04 \\cdot 10,000 \\cdot \\frac{1}{2} = \\boxed{200}$, then $\\boxed{255}$. Final Answer: The final answer is "
     "$10,455$. I hope it is correct.", "10455", True),
    ("Thus, the values of \\( k \\) are: \\[ \\boxed{[-4, 0]} \\]", "[-4,0]", True),
    ("The solution is \\( x \\in (-6, 10) \\). Final Answer: The final answer is \\((-6, 10)\\). I hope it is correct.",
     "(-6, 10)", True),
    ("Thus, the product in base three is \\(\\boxed{1112122_3}\\).", "1112112_3", False),
    ("is $\\boxed{11,\\! 111,\\! 111,\\! 100}$", "11111111100", True),
    ("is $\\boxed{32,\\! 349}$", "32349", True),
    ("is $\\boxed{32, 349}$", "32349", False),
    ("Thus, the answer is $x \\in \\boxed{(2,12) \\cup (12,102)}$", "(2, 12) \\cup (12, 102)", True),
    ("The integers are \\boxed{-2} and \\boxed{1}. </think> So \\[ \\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}. \\]",
     "1,-2", True),
    ("The solution in interval notation is $x \\in [-2,7]$.", "[-2, 7]", True),
]:  # fmt: skip
    _add("mv", said(final), gold, "math", label)
PROSE = "an answer stated only in prose, without a marker or an 'is X' sentence, is left undecided"
_add("mv", said("Therefore, there are 12 distinct sequences that meet the three given conditions. I hope it is correct."),
     "12", "math", True, False, PROSE)  # fmt: skip
_add("mv", said("Final Answer: Jane started growing Sphere 3 hours ago. I hope it is correct."), "3", "math", True,
     False, PROSE)  # fmt: skip
_add("mv", said("Therefore, the minimum error in the measurement of the position increases by 100%."), "100\\%",
     "math", True, False, PROSE)  # fmt: skip
for gold, pred, label in [
    ("(3,1)", "{1,3}", False),
    ("\\text{C}", "\\text{(C)}", True),
    ("\\text{E}", "E", True),
    ("1, 2", "1,2", True),
    ("-2 \\le x \\le 7", "x \\in [-2,7]", True),
    ("x \\in [-2,7]", "-2 \\le x \\le 7", True),
    ("4.123105625617661", "\\sqrt{17}", True),
    ("4", "4\\sqrt{2}", False),
]:
    _add("mv", boxed(pred), gold, "math", label)
_add(
    "mv", boxed("{1,3}"), "(1,3)", "math", True, False, "a pair is ordered: a bare list of its entries is not the pair"
)
_add("mv", boxed("13"), "\\text{13}", "math", False, True, "\\text{13} is the number 13 in text mode")

# --- Math-Verify: punctuation inside the math ------------------------------------------------------------
for gold, pred, label in [
    ("\\frac{1}{3}", "$\\frac{1}{3}.$", True),
    ("\\frac{1}{3}", "$$\\frac{1}{3}.$$", True),
    ("\\frac{1}{3}", "\\[\\frac{1}{3}.\\]", True),
    ("\\frac{1}{3}", "$\\frac{1}{3},$", True),
    ("\\frac{1}{3}", "$\\frac{1}{3} .$", True),
    ("\\sqrt{2}", "$\\sqrt{2}.$", True),
    ("(1,2)", "$(1,2).$", True),
    ("5", "$5 \\text{ cm}.$", True),
    ("42", "$42.$", True),
    ("2", "$2^{10}.$", False),
    ("1", "$1/3.$", False),
    ("1, 2, 3", "$1, 2, 3, ...$", False),
]:
    _add("mv", said(f"The answer is {pred}"), gold, "math", label)

# --- Math-Verify: mixed numbers -------------------------------------------------------------------------------
for pred, gold, label in [
    ("4 4/9", "40/9", True),
    ("4 4/9", "4", False),
    ("-4 4/9", "-40/9", True),
    ("11 5/6", "71/6", True),
    ("11 + 4/9", "103/9", True),
    ("11 - 4/9", "103/9", False),
    ("10/2", "5", True),
    ("$5.00", "5", True),
    ("28%", "7/25", True),
    ("4 4/0", "4", False),
    ("11 7/6", "11", False),
]:
    _add("mv-mixed", said(f"The answer is {pred}."), gold, "number", label)
_add("mv-mixed", said("There are 4 objects and 4/9 remain."), "4/9", "number", True)

# --- Math-Verify: strings, lists, plus-minus ---------------------------------------------------------------
for gold, pred, label in [
    ("n=1, 2, 3", "n=1, 2, 3", True),
    ("n=2, 3, 4", "n=1, 2, 3", False),
    ("D = (0, 1)", "D = (0, 1)", True),
    ("D = (0, 1)", "D = (0, 1.5)", False),
    ("19, 46, and 82", "19, 46, \\text{ and } 82", True),
    ("19, 46, and 82", "21, 36, and 82", False),
    ("1 - \\frac{1}{\\mathrm{e}}", "1 - \\frac{1}{\\mathrm{e}}", True),
    ("1 - \\frac{1}{\\mathrm{e}}", "1 + \\frac{1}{\\mathrm{e}}", False),
    ("\\pm 2021", "2021", False),
    ("\\pm 2021", "{-2021, 2021}", True),
    ("12:00", "1:00", False),
    ("12:00", "12:00", True),
]:
    _add("mv-yujian", boxed(pred), gold, "math", label)

# --- NeMo-Skills math_equal: checked in both orders ---------------------------------------------------------
for a, b in [
    ("5", "5"),
    ("5", "5.0"),
    ("1/2", "0.5"),
    ("\\frac{1}{2}", "0.5"),
    ("x^2+2x+1", "x^2 + 2*x + 1"),
    ("x^2+2x+1", "x^2 + 2*x - (-1)"),
    ("odd", "\\text{odd}"),
    (".185", "0.185"),
    ("\\frac {1}{2}", "0.5"),
    ("17\\text{ any text}", "17"),
    ("\\$10", "10"),
    ("10%", "10"),
    ("10\\%", "10"),
    ("2.5", "\\frac{5}{2}"),
    ("\\frac{1}{3}", "\\dfrac{1}{3}"),
    ("(r+5)(r+5)", "(r+5)^2"),
    ("\\begin{pmatrix}0&0&0\\\\0&1&0\\\\0&0&1\\end{pmatrix}",
     "\\begin{bmatrix} 0 & 0 & 0 \\\\ 0 & 1 & 0 \\\\ 0 & 0 & 1 \\end{bmatrix}"),
]:  # fmt: skip
    both_ways("nemo", a, b, "math", True)
both_ways("nemo", "918\\frac{1}{2}", "918.5", "math", True)
both_ways("nemo", "y = x^2+2x+1", "2x+ 1+x^2", "math", True)
both_ways("nemo", "\\frac{\\sqrt{3}}{3}", "\\frac{\\sqrt{3}}{3} \\approx 0.577", "math", True)
for a, b in [("E", "\\mathrm{E}"), ("A", "\\textbf{A}")]:
    both_ways("nemo", a, b, "choice", True)
_add("nemo", said("The answer is C. x = 42"), "C", "choice", True)
for a, b in [
    ("5", "5.001"),
    ("x^2+2x+1", "x^3+2x+1"),
    ("odd", "\\text{oddd}"),
    ("E", "\\mathrm{E}*2"),
    ("\\sqrt{67},-\\sqrt{85}", "\\sqrt{67}"),
]:
    both_ways("nemo", a, b, "math", False)
_add("nemo", said("I cannot tell."), "0", "math", False)

# --- hendrycks/math is_equiv -----------------------------------------------------------------------------------
for gold, pred, label in [
    ("\\tfrac{1}{2} + \\frac1{72}", "\\frac{1}{2} + 2/3", False),
    ("10, 4, 2", "4, 12, 2", False),
    ("\\tfrac{1}{2} +\\! \\frac1{72}", "\\dfrac{1}{2} +\\frac{1}{72}", True),
    ("10\\text{ units}", "10 ", True),
    ("10\\text{ units}", "100 ", False),
    ("10", "\\$10", True),
    ("\\left(x-2\\right)\\left(x+2\\right)", "(x-2)(x+2)", True),
    ("0.1", ".1", True),
    ("10\\%", "10", True),
    ("10\\sqrt{3} + \\sqrt4", "10\\sqrt3 + \\sqrt{4}", True),
    ("\\frac34i", "\\frac{3}{4}i", True),
    ("\\tfrac83", "\\frac{8}{3}", True),
    ("5x - 7y + 11z + 4 = 0", "x + y - z + 2 = 0", False),
    ("1/2", "\\frac{1}{2}", True),
]:
    _add("hendrycks", boxed(pred), gold, "math", label)

SET = "a bare comma list of values is compared as a set, as our own labelled set says; is_equiv compares strings"
_add("hendrycks", boxed("4, 10, -2"), "10, 4, -2", "math", False, True, SET)
_add("hendrycks", boxed("4, .1, 2"), "0.1, 4, 2", "math", False, True, SET)

# --- Qwen2.5-Math math_equal ---------------------------------------------------------------------------------
for gold, pred, label in [
    ("\\frac{1}{12}", "1/12", True),
    ("(1,\\frac{9}{2})", "(1,4.5)", True),
    ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}", True),
    ("16", "16.0", True),
    ("7(x+3)(x-3)", "7*(x - 3)*(x + 3)", True),
    ("\\frac1{6}", "1/6", True),
    ("\\frac{11}{2}", "5.51", False),
    ("6+9.2i", "6.0+9.1i", False),
    ("(1.0,4.5)", "(1,\\frac{9}{2})", True),
    ("\\begin{pmatrix} -10 \\\\ 6 \\end{pmatrix}", "\\begin{pmatrix}-10\\\\6\\end{pmatrix}", True),
    ("(6, -\\frac{3}{8})", "\\left( 6, -\\frac{3}{8} \\right)", True),
]:
    _add("qwen", boxed(pred), gold, "math", label)
PYTHON = "Python's ** is not how a model writes a power in an answer; we leave it to the LLM judge"
_add("qwen", boxed("3*s**2"), "3s^2", "math", True, False, PYTHON)
_add("qwen", boxed("2*x*(15*x**2 - 4*x + 10)"), "2x(15x^2-4x+10)", "math", True, False, PYTHON)
_add("qwen", boxed("(-1.732, 1.732)"), "(-\\sqrt{3},\\sqrt{3})", "math", True, False, ROUNDED)
_add("qwen", boxed("33.3"), "\\frac{100}{3}", "math", True, False, ROUNDED)
_add("qwen", said("The answer is (A) 3"), "A", "choice", True)
_add("qwen", boxed("a = b"), "b = a", "math", True)

# --- Minerva (lm-evaluation-harness): what its answer normaliser strips -----------------------------------------
_add("minerva", said("Final Answer: The final answer is $42$. I hope it is correct."), "42", "math", True)
_add("minerva", said("Final Answer: The final answer is $41$. I hope it is correct."), "42", "math", False)
_add("minerva", said("Final Answer: The final answer is 42. I hope it is correct."), "42", "math", True)
_add("minerva", said("Final Answer: The final answer is \\frac{2}{3}. I hope it is correct."), "\\frac23", "math", True)
for pred, gold in [
    ("10 \\text{ square units}", "10"),
    ("12 \\text{ ways}", "12"),
    ("5 \\text{ integers}", "5"),
    ("7 \\text{ dollars}", "7"),
    ("30 \\text{ mph}", "30"),
    ("8 \\text{ inches}", "8"),
    ("6 \\text{ ft}", "6"),
    ("3 \\text{ hours}", "3"),
    ("4 \\text{ km}", "4"),
    ("9 \\text{ points}", "9"),
    ("11 \\text{ feet}", "11"),
    ("15 \\text{ minutes}", "15"),
    ("25 \\text{ cents}", "25"),
    ("45 \\text{ degrees}", "45"),
    ("20 \\text{ cm}", "20"),
    ("3 \\text{ pounds}", "3"),
    ("100 \\text{ meters}", "100"),
    ("12 \\text{ edges}", "12"),
    ("30 \\text{ students}", "30"),
    ("1,\\!000", "1000"),
    ("10{,}000", "10000"),
    ("60^{\\circ}", "60"),
    ("60^\\circ", "60"),
    ("5\\;", "5"),
    ("\\text{(B)}", "\\text{(B)}"),
    ("\\dfrac{5}{2}", "\\frac{5}{2}"),
    ("\\sqrt2", "\\sqrt{2}"),
    ("\\frac{\\sqrt3}{2}", "\\frac{\\sqrt{3}}{2}"),
    ("x = 4", "4"),
    ("\\$4.50", "4.50"),
    ("5\\mathrm{th}", "5"),
    ("\\left(2, 3\\right)", "(2,3)"),
    ("2.50", "2.5"),
]:
    _add("minerva", said(f"Final Answer: The final answer is ${pred}$. I hope it is correct."), gold, "math", True)
for pred, gold in [
    ("11", "12"),
    ("\\frac{1}{3}", "\\frac{1}{4}"),
    ("(3, 2)", "(2,3)"),
    ("-4", "4"),
    ("2\\sqrt{2}", "2"),
]:
    _add("minerva", said(f"Final Answer: The final answer is ${pred}$. I hope it is correct."), gold, "math", False)


@dataclass(frozen=True)
class Adversarial:
    id: str
    response: str
    gold: str
    answer_type: str
    num_choices: int | None = None


ADVERSARIAL: list[Adversarial] = []


def _trap(id: str, final: str, gold: str, answer_type: str, num_choices: int | None = None) -> None:  # noqa: A002
    ADVERSARIAL.append(Adversarial(id, r1(final), gold, answer_type, num_choices))


# integer and number: the first number of an expression, a hedge, a list, a lost numerator
for kind in ("integer", "number"):
    _trap(f"{kind}-sqrt", "\\boxed{\\sqrt{5}}", "5", kind)
    _trap(f"{kind}-sqrt-text", "The answer is $\\sqrt{7}$.", "7", kind)
    _trap(f"{kind}-pi-multiple", "\\boxed{3\\pi}", "3", kind)
    _trap(f"{kind}-pi-over", "\\boxed{\\frac{\\pi}{4}}", "4", kind)
    _trap(f"{kind}-factorial", "\\boxed{5!}", "5", kind)
    _trap(f"{kind}-frac-half-braced", "\\boxed{\\frac1{2}}", "2", kind)
    _trap(f"{kind}-frac-half-braced-num", "\\boxed{\\frac1{2}}", "1", kind)
    _trap(f"{kind}-or-prose", "The answer is 3 or 5.", "3", kind)
    _trap(f"{kind}-or-prose-second", "The answer is 3 or 5.", "5", kind)
    _trap(f"{kind}-or-text-box", "\\boxed{3 \\text{ or } 5}", "3", kind)
    _trap(f"{kind}-either", "Answer: either 4 or 6", "4", kind)
    _trap(f"{kind}-maybe", "Answer: maybe 7", "7", kind)
    _trap(f"{kind}-question", "The answer is 7?", "7", kind)
    _trap(f"{kind}-list-space", "\\boxed{32, 349}", "32349", kind)
    _trap(f"{kind}-list-two", "Answer: $12$ and $13$", "12", kind)
    _trap(f"{kind}-list-two-second", "Answer: $12$ and $13$", "13", kind)
    _trap(f"{kind}-digits-spaced", "\\boxed{1 2}", "12", kind)
    _trap(f"{kind}-numerator-lost", "So the probability is 2/3.", "3", kind)
    _trap(f"{kind}-at-least", "The answer is at least 12.", "12", kind)
    _trap(f"{kind}-half-of", "The answer is half of 12.", "12", kind)
    _trap(f"{kind}-power", "\\boxed{2^{10}}", "2", kind)
    _trap(f"{kind}-times-coefficient", "\\boxed{4\\sqrt{2}}", "4", kind)
    _trap(f"{kind}-variable", "\\boxed{3x}", "3", kind)
    _trap(f"{kind}-hedge-last-number", "It could be 3 or 5", "5", kind)
    _trap(f"{kind}-unicode-root", "\\boxed{√5}", "5", kind)
    _trap(f"{kind}-unicode-pi", "\\boxed{2π}", "2", kind)
    _trap(f"{kind}-boxes-or", "\\boxed{3} or \\boxed{5}", "5", kind)
# math: hedges, lists, discussed values, unicode golds
_trap("math-list-cut", "Answer: $12$ and $13$", "12", "math")
_trap("math-or-spans", "Answer: $2$ or $3$", "2", "math")
_trap("math-or-box", "\\boxed{2 \\text{ or } 3}", "3", "math")
_trap("math-maybe", "The answer is maybe $\\frac{1}{2}$", "\\frac{1}{2}", "math")
_trap("math-ellipsis", "The answer is $1, 2, 3, \\ldots$", "1, 2, 3", "math")
_trap("math-unicode-gold-coefficient", "\\boxed{1.5}", "\\frac{3}{2}√{3}", "math")
_trap("math-unicode-gold-root-only", "\\boxed{\\sqrt{3}}", "\\frac{3}{2}√{3}", "math")
_trap("math-unicode-pi-gold", "\\boxed{2}", "2π", "math")
_trap("math-unicode-le", "\\boxed{x \\ge 3}", "x ≤ 3", "math")
_trap("math-discussed-if", "If $x = 3$, the equation balances.", "3", "math")
_trap("math-discussed-not", "The answer is not $4$.", "4", "math")
_trap("math-discussed-check", "Let us check that the value is $5$.", "5", "math")
_trap("math-boxes-or", "\\boxed{-2} or \\boxed{1}", "1", "math")
_trap("math-tuple-vs-set", "\\boxed{\\{(1,2),(3,4)\\}}", "(1,2),(3,5)", "math")
_trap("math-thousands-list", "\\boxed{1, 000}", "1000", "math")
# choice: hedges between letters, a letter inside a word, an option discussed
_trap("choice-or", "The answer is (B) or (C).", "B", "choice", 4)
_trap("choice-or-second", "The answer is (B) or (C).", "C", "choice", 4)
_trap("choice-maybe", "Answer: maybe B", "B", "choice", 4)
_trap("choice-discussed", "Option B looks right, but I am not sure.", "B", "choice", 4)
_trap("choice-either", "The answer is either A or D.", "A", "choice", 4)
_trap("choice-boxes-or", "\\boxed{A} or \\boxed{D}", "D", "choice", 4)
# text: hedges and partial answers
_trap("text-or", "Answer: yes or no", "yes", "text")
_trap("text-maybe", "Answer: maybe yes", "yes", "text")
_trap("text-question", "The answer is yes?", "yes", "text")
_trap("text-either", "Answer: either Paris or Lyon", "Paris", "text")
_trap("text-partial", "Answer: Paris, France", "Paris", "text")
