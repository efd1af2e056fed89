"""math@3.0.0's general rules for real completions (issue 18), one table per rule, our
own cases: what a final-answer statement is, which one wins, what a multiple choice is,
stated values, and the false positives the older versions had."""
import time
from fractions import Fraction

import pytest

import verifiers
from verifiers import Status

from ._grade import ACCEPT, REJECT, check


def grade_with_prompt(completion: str, reference: str, prompt: str):
    return verifiers.verify("math", completion, reference, prompt=prompt)


# --- a final-answer statement is read, and nothing inside LaTeX is taken for a number
STATEMENTS = [
    ("We simplify $\\frac{8}{6}$ to $\\frac{4}{3}$.\n\n# Answer\n\n\\frac{4}{3}", "\\frac43", ACCEPT),
    ("The side is $2x=16\\sqrt{3}$.\n\n# Answer\n\n16\\sqrt{3}", "16 \\sqrt{3}", ACCEPT),
    ("## Final Answer\nThe final answer is $\\frac{7}{2}$. I hope it is correct.", "3.5", ACCEPT),
    ("Adding, 40 + 32 = 72 clips.\n#### 72", "72", ACCEPT),
    ("Step 3: So he pays 12 dollars.\nStep 4: The answer is: 12", "12", ACCEPT),
    ("**Final Answer**\n\n$\\sqrt{19}$", "\\sqrt{19}", ACCEPT),
    ("Final Answer: the smallest such $n$ is $41$.", "41", ACCEPT),
    ("Thus $z = 5 + 45i$.\n\n# Answer\n\n5 + 45i", "5 + 45i", ACCEPT),
    ("We check it: our answer is correct.\n\n# Answer\n\n7", "7", ACCEPT),  # "answer is correct" is no answer
    ("So the answer is $x = 2$ or $x = 3$.", "2, 3", ACCEPT),  # a sentence of several blocks
    ("Thus the answer is $\\boxed{2}$ and $\\boxed{3}$.", "2, 3", ACCEPT),
    ("the roots, so the answer is \\(2\\), \\(3\\)", "2, 3", ACCEPT),
    ("The answer is $5$, since $2+3=5$.", "5", ACCEPT),  # a reason after the block is not more answer
    ("<think>it is 5</think>\n\n**Final Answer**\n\\boxed{5}", "5", ACCEPT),
    ("Final Answer: The final answer is $5$. I hope it is correct.", "5", ACCEPT),
    # R1 format: a phrase ends at a tag, so the answer tag after the thinking wins
    ("<think>the answer is 3? no, 2 + 2</think><answer>4</answer>", "4", ACCEPT),
    ("<think>2 + 2</think><answer>The answer is 4</answer>", "4", ACCEPT),
    ("<think>the answer is 4</think><answer>3</answer>", "4", REJECT),
    # without a statement: the final sentence's number in prose, never digits from LaTeX
    ("Each box holds 6, so the total is 18 apples.", "18", ACCEPT),
    ("The sum telescopes to $\\frac{4}{3}$", "\\frac{4}{3}", ACCEPT),
    ("and the terms satisfy $$a_1 + a_2 + \\cdots + a_{10}", "10", REJECT),  # cut off inside LaTeX
    ("the first bound gives \\frac{4}{3}", "3", REJECT),  # digits inside a command
    ("We proceed in cases.\n(2) Now consider the case", "2", REJECT),  # an item label
]


@pytest.mark.parametrize("completion,reference,accept", STATEMENTS)
def test_final_answer_statements(completion, reference, accept):
    check(completion, reference, accept)


# --- the last explicit statement wins; two different committed answers are wrong
LAST_WINS = [
    ("So it is $\\boxed{195}$.\n\n# Answer\n\n95", "95", REJECT),  # the box and the heading disagree
    ("So it is $\\boxed{195}$.\n\n# Answer\n\n95", "195", REJECT),
    ("Final Answer: 12\nWait, I made an error. Final Answer: 14", "14", REJECT),
    ("The answer is 63\nThe answer is $(9)(7)$\n\n# Answer\n\n63", "63", ACCEPT),  # same value twice
    ("First guess: the answer is 4. Rechecking, the answer is 5.", "5", ACCEPT),  # plain phrases: the last
    ("$\\boxed{3}$ is a naive count.\n\n# Answer\n\n3", "3", ACCEPT),
    ("<answer>4</answer> Final answer: 5", "4", REJECT),  # two different committed answers
]


@pytest.mark.parametrize("completion,reference,accept", LAST_WINS)
def test_last_statement_wins_and_two_answers_are_wrong(completion, reference, accept):
    r = check(completion, reference, accept)
    if completion.startswith("Final Answer: 12"):
        assert "two different final answers" in r.reason


# --- multiple choice: the options come from the question (the prompt)
QUESTION = "Which is the probability?\nA: 1/4\nB: 1/3\nC: 1/2\nD: 2/3"
AMC = ("What is the area?\n$\\textbf{(A)}\\ \\frac{120}{37}\\qquad\\textbf{(B)}\\ \\frac{140}{39}\\qquad"
       "\\textbf{(C)}\\ 4\\qquad\\textbf{(D)}\\ \\frac{140}{37}$")
CHOICES = [
    (QUESTION, "Step 5: So S = 2/3.\nSolution: Choice_D", "D", ACCEPT),
    (QUESTION, "Therefore, the correct answer choice is D: 2/3.", "D", ACCEPT),
    (QUESTION, "So the answer is $\\boxed{D}$.", "D", ACCEPT),
    (QUESTION, "the probability is 2/3.\n\n# Answer\n\n\\frac{2}{3}", "D", ACCEPT),  # the option's text
    (QUESTION, "Solution: Choice B - 1/3", "D", REJECT),
    (QUESTION, "Solution: Choice_B", "\\text{(D)}", REJECT),
    (QUESTION, "It is A or D.\n\nFinal Answer: A, D", "D", REJECT),  # two letters: no single choice
    (QUESTION, "So the answer is $\\boxed{D}$.\n\n# Answer\n\nB", "D", REJECT),  # two different letters
    (AMC, "so the answer is $\\boxed{\\text{(D) } \\frac{140}{37}}$", "\\text{(D)}", ACCEPT),
    (AMC, "The area is $\\frac{140}{37}$, choice $\\boxed{D}$.\n\n# Answer\n\n\\frac{140}{37}", "\\frac{140}{37}", ACCEPT),
    (AMC, "# Answer\n\n\\frac{140}{39}", "\\frac{140}{37}", REJECT),
    ("Which is largest? Type the letter of the correct option.\nA. $3$\nB. $\\sqrt{10}$",
     "# Answer\n\n\\sqrt{10}", "B", REJECT),  # the question asks for the letter
]


@pytest.mark.parametrize("question,completion,reference,accept", CHOICES)
def test_multiple_choice_against_the_prompts_options(question, completion, reference, accept):
    r = grade_with_prompt(completion, reference, question)
    assert r.status is Status.OK and r.reward == (1.0 if accept else 0.0), r.reason


def test_a_letter_without_options_in_the_prompt_is_only_text():
    assert grade_with_prompt("\\boxed{C}", "C", "Which vertex is on the circle?").reward == 1.0
    assert grade_with_prompt("\\boxed{B}", "C", "Which vertex is on the circle?").reward == 0.0


# --- equivalence: stated values, labels, brackets, tiny values, renaming, clocks
EQUIVALENCE = [
    ("\\boxed{\\log_2 8 = 3}", "3", ACCEPT),  # the value after `=`
    ("\\boxed{|PQ| = 7}", "7", ACCEPT),
    ("the answer is $10 \\cdot 6 = 60$", "60", ACCEPT),  # a computation and its result
    ("\\boxed{4 \\cdot 6 = 25}", "25", REJECT),  # a false computation states nothing
    ("\\boxed{3 = 3}", "3", REJECT),
    ("\\boxed{2x = 5}", "5", REJECT),  # an equation in x, not a value of a named quantity
    ("\\boxed{x + 1 = 4}", "4", REJECT),
    ("\\boxed{p_F = \\frac{5}{24}}", "\\frac{5}{24}", ACCEPT),
    ("\\boxed{S:T = 7:32}", "7:32", ACCEPT),
    ("\\boxed{4, 5}", "AB = 4, CD = 5", ACCEPT),  # labelled reference values, in order
    ("\\boxed{5, 4}", "AB = 4, CD = 5", REJECT),
    ("\\boxed{\\text{No}}", "No", ACCEPT),
    ("\\boxed{0, \\pi}", "[0, \\pi]", REJECT),  # two values are not an interval
    ("\\boxed{5, 7}", "(5, 7)", REJECT),  # nor a point
    ("\\boxed{[0, \\pi]}", "[0,\\pi]", ACCEPT),
    ("\\boxed{e^{-100}}", "e^{-101}", REJECT),  # tiny, distinct
    ("\\boxed{10^{-30}}", "2 \\cdot 10^{-30}", REJECT),
    ("\\boxed{\\sin \\pi}", "0", ACCEPT),
    ("\\boxed{f(y) = y^2 + 1}", "f(x) = x^2 + 1", ACCEPT),  # a bound variable renamed
    ("\\boxed{y^2 + 1}", "x^2 + 1", REJECT),  # a free one is not
    ("\\boxed{1:00}", "12:00", REJECT),  # clock times, not ratios (1:00 is not 12:00)
    ("\\boxed{4:51 \\text{ p.m.}}", "4:51", ACCEPT),  # a 12-hour dial without a.m./p.m.
    ("\\boxed{08:34 \\text{P.M.}}", "20:34", ACCEPT),
    ("\\boxed{20:34:00}", "20:34", ACCEPT),
    ("\\boxed{8:34 \\text{ a.m.}}", "20:34", REJECT),
    ("\\boxed{(3t, 5 - t)}", "(3k, 5 - k) \\text{ for some integer } k", ACCEPT),  # a declared parameter
    ("\\boxed{\\frac{31.95}{2}}", "\\frac{639}{40}", REJECT),  # a decimal inside a fraction: unfinished
]


@pytest.mark.parametrize("completion,reference,accept", EQUIVALENCE)
def test_equivalence_rules(completion, reference, accept):
    check(completion, reference, accept)


def test_older_versions_keep_their_verdicts_on_these_rules():
    # 2.1.0 read `1:00` as the ratio 1/0 (= 12/0) and took the pair for an interval
    assert verifiers.verify("math", "\\boxed{1:00}", "12:00", version="2.1.0").reward == 1.0
    assert verifiers.verify("math", "\\boxed{0, \\pi}", "[0,\\pi]", version="2.1.0").reward == 1.0


# --- the completion's own content never ends as TIMEOUT or ABSTAIN
def test_box_gaps_that_backtracked_exponentially_are_a_quick_wrong_answer():
    # issue 17, finding 11: 2.x's box-gap pattern backtracked on `\   \   …` (a TIMEOUT escaped
    # the penalty); 3.0.0 reads it in linear time and scores it
    completion = "\\boxed{7}" + "\\   " * 20 + "X\\boxed{7}"  # 99 chars; 2.1.0 needs minutes
    t0 = time.perf_counter()
    r = verifiers.verify("math", completion, "3")
    assert time.perf_counter() - t0 < 0.5
    assert r.status is Status.OK and r.reward == 0.0, r.reason


def test_an_answer_too_large_to_evaluate_is_wrong_not_skipped():
    r = verifiers.verify("math", "\\boxed{9^{9^{9^9}}}", "1", {"unanswered": "abstain"})
    assert r.status is Status.OK and r.reward == 0.0 and "refused" in r.reason


def test_a_deep_continued_fraction_is_read():
    # issue 17, finding 14: 2.x bounded 1/x by 3|x| per level and refused it as "number too large"
    depth = 12
    cf, value = "2", Fraction(2)
    for _ in range(depth):
        cf, value = "\\frac{1}{2 + " + cf + "}", 1 / (2 + value)
    reference = f"\\frac{{{value.numerator}}}{{{value.denominator}}}"
    assert "too large" in verifiers.verify("math", f"\\boxed{{{cf}}}", reference, version="2.1.0").reason
    r = verifiers.verify("math", f"\\boxed{{{cf}}}", reference)
    assert r.status is Status.OK and r.reward == 1.0, r.reason
    assert verifiers.verify("math", f"\\boxed{{{cf}}}", "\\frac{1}{3}").reward == 0.0


def test_an_answer_past_its_evaluation_budget_is_a_wrong_answer():
    # a version row with a tiny budget (the real object, its budget shrunk): the completion
    # made the work slow, so it is scored 0 with the reason, not a TIMEOUT that skips it
    from dataclasses import replace

    from verifiers.math.verifier import VERSIONS, MathParams, MathVerifier

    tiny = type("Tiny", (MathVerifier,), {"rules": replace(VERSIONS["3.0.0"][0], answer_budget_s=0.002)})
    r = tiny().verify("\\boxed{\\sin^2 x + \\cos^2 x + \\frac{x^3 - 1}{x - 1}}", "x^2 + x + 2", MathParams())
    assert r.status is Status.OK and r.reward == 0.0 and "too slow to evaluate" in r.reason
    r = MathVerifier().verify("\\boxed{\\sin^2 x + \\cos^2 x + \\frac{x^3 - 1}{x - 1}}", "x^2 + x + 2", MathParams())
    assert r.reward == 1.0, r.reason


@pytest.mark.parametrize("completion", [
    "answer: \n" * 100_000,  # empty labels whose answer would be the next line's label
    "Final Answer:\n" * 100_000,
    "The answer is: the answer is: " * 50_000,
    "# Answer\n\nanswer: answer: \n" * 30_000,
    "{1 " * 300_000,  # a final "sentence" of numbers in braces
    "$\\frac{1}{2}$ " * 100_000,
    "Solution: Choice_A\n" * 50_000,
])
def test_statement_reading_stays_linear(completion):
    t0 = time.perf_counter()
    r = grade_with_prompt(completion, "(1, 2)", QUESTION)
    assert r.status is Status.OK and r.reward == 0.0, r.reason
    assert time.perf_counter() - t0 < 2.0


# --- the form the question asks for (the prompt): equal in value is not enough
ASKED_FORMS = [
    ("Express your answer as a common fraction.", "\\boxed{\\frac{72}{375}}", "\\frac{24}{125}", REJECT),
    ("Express your answer as a common fraction.", "\\boxed{0.192}", "\\frac{24}{125}", REJECT),
    ("Express your answer as a common fraction.", "\\boxed{\\frac{24}{125}}", "\\frac{24}{125}", ACCEPT),
    ("What is x?", "\\boxed{\\frac{72}{375}}", "\\frac{24}{125}", ACCEPT),  # no form asked
    ("Express your answer in simplest radical form.", "\\boxed{4\\sqrt{117}}", "12\\sqrt{13}", REJECT),
    ("Express your answer in simplest radical form.", "\\boxed{12\\sqrt{13}}", "12\\sqrt{13}", ACCEPT),
    ("Simplify. Express your answer as a single fraction.", "\\boxed{-\\frac{7x}{6}+\\frac{4}{3}}",
     "\\frac{8-7x}{6}", REJECT),
    ("Simplify. Express your answer as a single fraction.", "\\boxed{\\frac{-7x+8}{6}}", "\\frac{8-7x}{6}", ACCEPT),
    ('Enter the equation of this line in the form "$y = mx + b$".', "# Answer\n\n-2x", "y = -2x", REJECT),
    ('Enter the equation of this line in the form "$y = mx + b$".', "# Answer\n\ny = -2x", "y = -2x", ACCEPT),
    ("Enter your answer in the form Ax + By + C = 0, where $A > 0$.", "\\boxed{-2x + y - 1 = 0}", "2x - y + 1 = 0",
     REJECT),
    ("Enter your answer in the form Ax + By + C = 0, where $A > 0$.", "\\boxed{2x - y + 1 = 0}", "2x - y + 1 = 0",
     ACCEPT),
]


@pytest.mark.parametrize("question,completion,reference,accept", ASKED_FORMS)
def test_the_form_the_question_asks_for(question, completion, reference, accept):
    r = grade_with_prompt(completion, reference, question)
    assert r.status is Status.OK and r.reward == (1.0 if accept else 0.0), r.reason
    if not accept and "0.192" not in completion:
        assert "equal in value, but the question asks" in r.reason
