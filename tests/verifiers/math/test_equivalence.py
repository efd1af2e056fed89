"""The `math` verifier end to end (in this thread): model-style completions against
references, with the verdict our policy gives (see verifiers/math/equivalence.py)."""
import time

import pytest

import verifiers
from verifiers import InvalidParamsError, InvalidReferenceError, Status
from verifiers.math.verifier import MathVerifier

ACCEPT, REJECT = 1.0, 0.0

TABLE = [
    # --- numbers: integers, separators, decimals, fractions, LaTeX forms
    ("The total cost is $\\boxed{1,000}$ dollars.", "1000", ACCEPT),
    ("\\boxed{11,\\!111}", "11111", ACCEPT),
    ("\\boxed{1,2}", "12", REJECT),  # a list of two numbers, not twelve
    ("\\boxed{0.5}", "\\frac{1}{2}", ACCEPT),
    ("\\boxed{.75}", "3/4", ACCEPT),
    ("So $x = \\boxed{\\dfrac{3}{4}}$", "0.75", ACCEPT),
    ("\\boxed{\\tfrac34}", "\\frac{3}{4}", ACCEPT),
    ("\\boxed{2\\frac{1}{2}}", "2.5", ACCEPT),  # mixed number
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", ACCEPT),
    ("\\boxed{2\\sqrt{3}}", "\\sqrt{8}", REJECT),
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt2}{2}", ACCEPT),
    ("\\boxed{\\pi/2}", "\\frac{\\pi}{2}", ACCEPT),
    ("\\boxed{2^{10}}", "1024", ACCEPT),
    ("\\boxed{2^{100}+1}", "1267650600228229401496703205376", REJECT),  # exact, not 1e-6 close
    ("\\boxed{1000001}", "1000000", REJECT),
    ("\\boxed{1.2 \\times 10^{3}}", "1200", ACCEPT),
    ("\\boxed{1.2e-3}", "0.0012", ACCEPT),
    ("\\boxed{-3}", "-3", ACCEPT),
    ("\\boxed{3}", "-3", REJECT),
    ("\\boxed{7.002}", "7", REJECT),
    # --- rounded decimals of exact non-terminating values: strict by default (test_precision.py)
    ("\\boxed{3.14}", "\\pi", REJECT),
    ("\\boxed{3.1}", "\\pi", REJECT),
    ("\\boxed{0.333}", "\\frac{1}{3}", REJECT),
    ("\\boxed{\\frac{7}{3}}", "2.33", REJECT),
    ("\\boxed{\\frac{7}{4}}", "2.33", REJECT),
    ("\\boxed{0.54}", "0.5", REJECT),  # two decimals are compared with rel_tol only
    ("\\boxed{\\frac{27}{50}}", "0.5", REJECT),  # 0.54 terminates: no rounding
    # --- percentages ("either" policy) and degrees
    ("\\boxed{50\\%}", "50", ACCEPT),
    ("\\boxed{50\\%}", "0.5", ACCEPT),
    ("\\boxed{0.5}", "50\\%", ACCEPT),
    ("\\boxed{5\\%}", "0.5", REJECT),
    ("\\boxed{36^\\circ}", "36", ACCEPT),
    ("\\boxed{60^{\\circ}}", "\\frac{\\pi}{3}", ACCEPT),
    ("\\boxed{30^{\\circ}}", "\\frac{\\pi}{3}", REJECT),
    # --- units, words around the value, spacing commands
    ("\\boxed{5 \\text{ cm}}", "5", ACCEPT),
    ("\\boxed{12 \\text{ dollars}}", "\\$12", ACCEPT),
    ("\\boxed{7 \\text{ m}^2}", "7", ACCEPT),
    ("the answer is 12 apples.", "12", ACCEPT),
    ("\\boxed{3^{\\text{rd}}}", "3", ACCEPT),
    ("\\boxed{6 \\text{ cm}}", "5", REJECT),
    ("\\boxed{\\left( 1 , \\, 2 \\right)}", "(1,2)", ACCEPT),
    ("\\boxed{1\\,000\\,000}", "10^6", ACCEPT),
    # --- x = value, equations
    ("\\boxed{x = 3}", "3", ACCEPT),
    ("\\boxed{x=-3}", "3", REJECT),
    ("\\boxed{y = 3x - 1}", "3x-1", ACCEPT),
    ("\\boxed{f(x) = x^2 - 1}", "(x-1)(x+1)", ACCEPT),
    ("\\boxed{3x - y - 1 = 0}", "y = 3x - 1", ACCEPT),  # same line, other form
    ("\\boxed{x + y = 3}", "y = 3x - 1", REJECT),
    ("\\boxed{a = b}", "a = c", REJECT),
    # --- symbolic expressions
    ("\\boxed{2x+2}", "2(x+1)", ACCEPT),
    ("\\boxed{2x+1}", "2(x+1)", REJECT),
    ("\\boxed{\\frac{a+b}{2}}", "\\frac{a}{2} + \\frac{b}{2}", ACCEPT),
    ("\\boxed{\\sin^2 x + \\cos^2 x}", "1", ACCEPT),
    ("\\boxed{\\ln(e^2)}", "2", ACCEPT),
    ("\\boxed{3+i}", "i(1-3i)", ACCEPT),
    ("\\boxed{\\lceil n/2 \\rceil}", "\\lceil n/3 \\rceil", REJECT),
    # a free variable is not renamed (3.0.0): `3t + 1` is not `3k + 1` in a problem about k;
    # a variable bound by a function name is: `f(t) = 3t + 1` = `f(k) = 3k + 1`
    ("\\boxed{3t + 1}", "3k + 1", REJECT),
    ("\\boxed{f(t) = 3t + 1}", "f(k) = 3k + 1", ACCEPT),
    ("\\boxed{t}", "k", REJECT),  # but a bare variable is not renamed
    # --- tuples, lists, sets, intervals, unions
    ("\\boxed{(1, 2)}", "(1,2)", ACCEPT),
    ("\\boxed{(2, 1)}", "(1,2)", REJECT),
    ("The solutions are $\\boxed{3, -2}$.", "-2, 3", ACCEPT),  # bare lists are order-free
    ("\\boxed{x = 2, y = 3}", "(2, 3)", ACCEPT),
    ("\\boxed{x = 3, y = 2}", "(2, 3)", REJECT),
    ("\\boxed{\\{1, 2, 3\\}}", "3, 2, 1", ACCEPT),
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2, 3\\}", REJECT),
    ("\\boxed{2 \\pm \\sqrt{3}}", "2+\\sqrt{3}, 2-\\sqrt{3}", ACCEPT),
    ("\\boxed{(0, 1]}", "(0,1]", ACCEPT),
    ("\\boxed{[0, 1)}", "(0,1]", REJECT),
    ("\\boxed{[-1, 4]}", "(-1, 4)", REJECT),
    ("\\boxed{(-\\infty, 3) \\cup (5, \\infty)}", "(5,\\infty)\\cup(-\\infty,3)", ACCEPT),
    ("\\boxed{x < 3}", "(-\\infty, 3)", ACCEPT),
    ("\\boxed{x \\le 3}", "(-\\infty, 3)", REJECT),
    ("\\boxed{\\{x \\mid 1 < x \\leq 4\\}}", "(1, 4]", ACCEPT),
    ("\\boxed{x < -1 \\text{ or } x > 2}", "(-\\infty,-1)\\cup(2,\\infty)", ACCEPT),
    ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "(1,2)", ACCEPT),
    ("\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}}", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4\\end{bmatrix}", REJECT),
    # --- text answers
    ("\\boxed{\\text{Yes}}", "yes", ACCEPT),
    ("\\boxed{\\textbf{(B)}}", "B", ACCEPT),
    ("\\boxed{B}", "C", REJECT),
    ("\\boxed{\\text{even}}", "odd", REJECT),
    # --- references in other wrappings
    ("\\boxed{7}", "$7$", ACCEPT),
    ("\\boxed{7}", "\\boxed{7}", ACCEPT),
    ("\\boxed{7}", {"answer": "7"}, ACCEPT),
]


@pytest.mark.parametrize("completion,reference,reward", TABLE)
def test_equivalence_table(completion, reference, reward):
    result = verifiers.verify("math", completion, reference)
    assert result.status is Status.OK, result.reason
    assert result.reward == reward, result.reason
    assert "extracted" in result.details and "reference" in result.details


def test_result_names_what_was_extracted_and_why():
    r = verifiers.verify("math", "so the answer is \\boxed{\\frac{1}{2}}", "0.5")
    assert r.reward == 1.0
    assert r.details["extracted"] == "\\frac{1}{2}" and r.details["method"] == "boxed"
    assert "\\frac{1}{2}" in r.reason and "equivalent" in r.reason


@pytest.mark.parametrize("completion", ["", "I am not sure how to do this one, sorry."])
def test_no_answer_is_a_wrong_answer(completion):
    # A trainer skips non-OK samples: an ABSTAIN here would let a policy escape its penalty
    # by never answering. `unanswered = "abstain"` restores math@1.0.0's behaviour.
    r = verifiers.verify("math", completion, "5")
    assert r.status is Status.OK and r.reward == 0.0
    assert "no final answer" in r.reason
    r = verifiers.verify("math", completion, "5", {"unanswered": "abstain"})
    assert r.status is Status.ABSTAIN and r.reward is None


@pytest.mark.parametrize("completion,why", [
    ("\\boxed{9^9^9^9}", "exponent tower"),
    ("\\boxed{10^{10^{10}}}", "too large"),
    ("\\boxed{(10^{9})!}", "too large"),
    ("\\boxed{" + "(" * 60 + "1" + ")" * 60 + "}", "nested too deeply"),
    ("\\boxed{" + "1+" * 600 + "1}", "too long"),
    ("\\boxed{\\prod_{n=1}^{100000} (1 + 1/n^2)}", "more than 100 terms"),
])
def test_unsafe_answers_are_refused_fast_and_earn_nothing(completion, why):
    r = verifiers.verify("math", completion, "1")
    assert r.status is Status.OK and r.reward == 0.0, r.reason
    assert "answer refused" in r.reason and why in r.reason


def test_an_unsafe_reference_abstains():
    # the reference is the caller's data, not the completion's fault: no verdict on it
    r = verifiers.verify("math", "\\boxed{1}", "9^9^9^9")
    assert r.status is Status.ABSTAIN and "reference refused" in r.reason


@pytest.mark.parametrize("completion", [
    "\\boxed{" * 100_000,  # unclosed boxes: one bounded scan, not one per box
    "<answer>" * 100_000,  # unclosed tags
    "answer: \n" * 100_000,  # empty "answer:" phrases
    "1" * 1_000_000 + "a",  # a digit run the number regex must not backtrack over
    "\\boxed{x^{100} - 3x + 1 > 0}",  # solving this inequality would take SymPy minutes
    "\\boxed{y^{100} + x = 6}",  # and so would solving this for y
])
def test_adversarial_completions_are_cheap(completion):
    t0 = time.monotonic()
    r = verifiers.verify("math", completion, "(1, 2)")
    assert r.status in (Status.OK, Status.ABSTAIN) and r.reward in (0.0, None)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("reference,what", [
    (None, "NoneType"), ("", "empty"), ("   ", "empty"), ("$$", "empty"), (["1"], "list"),
    (3, "int"), ({"gold": "1"}, "keys"), ({"answer": 5}, "int"),
])
def test_invalid_reference_raises(reference, what):
    with pytest.raises(InvalidReferenceError, match=what):
        verifiers.verify("math", "\\boxed{1}", reference)


def test_params_change_the_policy():
    # percentages
    assert verifiers.verify("math", "\\boxed{50\\%}", "0.5", {"percent_policy": "strip"}).reward == 0.0
    assert verifiers.verify("math", "\\boxed{50\\%}", "50", {"percent_policy": "fraction"}).reward == 0.0
    assert verifiers.verify("math", "\\boxed{50\\%}", "0.5", {"percent_policy": "fraction"}).reward == 1.0
    # order of bare lists
    assert verifiers.verify("math", "\\boxed{3, -2}", "-2, 3", {"ordered_lists": True}).reward == 0.0
    assert verifiers.verify("math", "\\boxed{-2, 3}", "-2, 3", {"ordered_lists": True}).reward == 1.0
    # tolerance for decimals: 2.5012 vs 2.5 is 4.8e-4 relative; never for an integer reference
    assert verifiers.verify("math", "\\boxed{2.5012}", "2.5").reward == 0.0
    assert verifiers.verify("math", "\\boxed{2.5012}", "2.5", {"rel_tol": 1e-3}).reward == 1.0
    assert verifiers.verify("math", "\\boxed{1.0005}", "1", {"rel_tol": 1e-3}).reward == 0.0
    # rounding of exact values
    assert verifiers.verify("math", "\\boxed{3.14}", "\\pi").reward == 0.0
    assert verifiers.verify("math", "\\boxed{3.14}", "\\pi", {"rounding_sig_digits": 3}).reward == 1.0


def test_bad_params_are_rejected():
    with pytest.raises(InvalidParamsError, match="percent_policy"):
        verifiers.verify("math", "\\boxed{1}", "1", {"percent_policy": "sometimes"})
    with pytest.raises(InvalidParamsError, match="rel_tol"):
        verifiers.verify("math", "\\boxed{1}", "1", {"rel_tol": -1})


def test_registration():
    cls = verifiers.registry.get("math")
    assert issubclass(cls, MathVerifier) and cls.version == MathVerifier.version == "3.0.0"
    assert cls.isolated is True and 0 < cls.timeout_s <= 10
