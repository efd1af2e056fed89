"""math@3.0.0 against a policy that hedges or negates to collect the reward (red team of
issue 18): a completion that offers several answers, names the right one only to reject
it, or hides a second value where the normaliser drops it, is wrong. Our own cases, one
table per rule."""
import pytest

import verifiers
from verifiers import Status

from ._grade import ACCEPT, REJECT, check

QUESTION = "Which is the probability?\nA: 1/4\nB: 1/3\nC: 1/2\nD: 2/3"


# --- "the answer is not 5": a negated value is not the answer
NEGATIONS = [
    ("So the answer is not 9.", "9", REJECT),
    ("We checked every case: the answer is not $12$", "12", REJECT),
    ("The answer is 8, not 9.", "9", REJECT),  # the value rejected, in the same sentence
    ("The answer is 8, not 9.", "8", ACCEPT),
    ("the answer is $8$ and not $9$", "8", ACCEPT),
    ("The total isn't 9.", "9", REJECT),  # fallback: a negated number is no answer
    ("The count cannot be 9.", "9", REJECT),
    ("So the count is 11 rather than 9", "9", REJECT),
    ("9 is wrong; the answer is 8", "8", ACCEPT),
    ("So the answer is 12 (not 13).", "12", ACCEPT),
    ("So the answer is 12 (not 13).", "13", REJECT),
    ("So x is 5, but not 6.", "5", ACCEPT),  # fallback: the number before the negation
    ("So x is 5, but not 6.", "6", REJECT),
    ("Hence the answer is 12, not counting rotations.", "12", ACCEPT),
]


@pytest.mark.parametrize("completion,reference,accept", NEGATIONS)
def test_a_negated_value_is_not_the_answer(completion, reference, accept):
    check(completion, reference, accept)


# --- several candidates offered in prose, where no explicit statement is made
PROSE_HEDGES = [
    ("After simplifying, the value is 6 or possibly 7", "7", REJECT),
    ("After simplifying, the value is 6 or possibly 7", "6", REJECT),
    ("It could be 6. Or 7.", "7", REJECT),
    ("I am unsure; the candidates are 4, 5, 6, 7", "7", REJECT),
    ("The value is either 6 or 7.", "7", REJECT),
    ("the value is $6$ or $7$.", "7", REJECT),
    ("So he has 3 apples and 4 more than Sam, 7 in total.", "7", ACCEPT),  # not a hedge
    ("When n is 3, 5 remain.", "5", ACCEPT),  # two numbers and a comma are no list
    ("It costs 5 dollars or less.", "5", REJECT),  # a bound, not a value
    ("Therefore, the total cost is 42 dollars.", "42", ACCEPT),
    ("Adding 30 and 12 gives 42.", "42", ACCEPT),
]


@pytest.mark.parametrize("completion,reference,accept", PROSE_HEDGES)
def test_several_candidates_in_the_final_sentence_are_no_answer(completion, reference, accept):
    check(completion, reference, accept)


# --- a second value hidden in a box's text, which the normaliser would drop as a unit
TEXT_HEDGES = [
    ("\\boxed{6 \\text{ (or possibly 7)}}", "6", REJECT),
    ("\\boxed{6 \\text{ or maybe } 7}", "7", REJECT),
    ("\\boxed{6\\text{, not 7}}", "7", REJECT),
    ("\\boxed{6 \\text{ (unless it is 7)}}", "6", REJECT),
    ("\\boxed{6 \\textit{ or 7}}", "6", REJECT),  # any text command
    ("\\boxed{6 \\hbox{ (or 7)}}", "6", REJECT),
    ("\\boxed{6 \\text{?}}", "6", REJECT),
    ("\\boxed{6 \\text{ at most}}", "6", REJECT),
    ("\\boxed{6 \\text{ cm}}", "6", ACCEPT),  # a unit is still a unit
    ("\\boxed{6 \\text{ apples}}", "6", ACCEPT),
    ("\\boxed{\\text{6}}", "6", ACCEPT),
]


@pytest.mark.parametrize("completion,reference,accept", TEXT_HEDGES)
def test_a_value_hidden_in_text_is_part_of_the_answer(completion, reference, accept):
    check(completion, reference, accept)


# --- every answer tag is a commitment, not only the last one
ANSWER_TAGS = [
    ("<answer>6</answer>\n<answer>7</answer>", "7", REJECT),
    ("<answer>6</answer>\n<answer>7</answer>", "6", REJECT),
    ("<answer><answer>6</answer>7</answer>", "7", REJECT),
    ("<answer>7</answer> and again <answer>7</answer>", "7", ACCEPT),  # the same answer twice
    ("<think>maybe 6</think><answer>7</answer>", "7", ACCEPT),
]


@pytest.mark.parametrize("completion,reference,accept", ANSWER_TAGS)
def test_every_answer_tag_commits(completion, reference, accept):
    check(completion, reference, accept)


# --- a chain of equalities states its value only when every constant in it agrees
CHAINS = [
    ("\\boxed{x = 6 = 7}", "7", REJECT),
    ("\\boxed{|AB| = 1 = 2}", "2", REJECT),
    ("\\boxed{x = 2 + 5 = 7}", "7", ACCEPT),
    ("\\boxed{a = b = 7}", "7", ACCEPT),
    ("\\boxed{x = \\frac{14}{2} = 7}", "7", ACCEPT),
    ("\\boxed{3 = x = 7}", "7", REJECT),
]


@pytest.mark.parametrize("completion,reference,accept", CHAINS)
def test_a_false_chain_of_equalities_states_nothing(completion, reference, accept):
    check(completion, reference, accept)


# --- multiple choice: a lower-case letter names the option; hedges over options do not
CHOICE_FORMS = [
    ("So the answer is $\\boxed{d}$.", "D", ACCEPT),
    ("Final Answer: (d)", "D", ACCEPT),
    ("Final Answer: (b)", "D", REJECT),
    ("So the answer is $\\boxed{A \\text{ or } D}$.", "D", REJECT),
    ("Final Answer: D (or perhaps A)", "D", REJECT),
    ("\\boxed{A}\\boxed{B}\\boxed{C}\\boxed{D}", "D", REJECT),
]


@pytest.mark.parametrize("completion,reference,accept", CHOICE_FORMS)
def test_choice_letters(completion, reference, accept):
    r = verifiers.verify("math", completion, reference, prompt=QUESTION)
    assert r.status is Status.OK and r.reward == (1.0 if accept else 0.0), r.reason


# --- look-alike characters: fullwidth digits are digits, a hyphen is a minus
LOOKALIKES = [
    ("\\boxed{４２}", "42", ACCEPT),
    ("The answer is －４２.", "-42", ACCEPT),
    ("\\boxed{４３}", "42", REJECT),
    ("\\boxed{\u20103}", "-3", ACCEPT),  # hyphen look-alikes of the minus sign
    ("\\boxed{\ufe633}", "-3", ACCEPT),
    ("\\boxed{4\u200b2}", "42", ACCEPT),  # a zero-width space is nothing
    ("\\boxed{4\u200b2}", "8", REJECT),
]


@pytest.mark.parametrize("completion,reference,accept", LOOKALIKES)
def test_lookalike_characters(completion, reference, accept):
    check(completion, reference, accept)


# --- boxes offered as alternatives to each other are several answers, not the last one
BOX_ALTERNATIVES = [
    ("So the area is \\boxed{6} (or \\boxed{7}).", "7", REJECT),
    ("\\boxed{6} / \\boxed{7}", "7", REJECT),
    ("\\boxed{6}; alternatively \\boxed{7}", "7", REJECT),
    ("\\boxed{6}, perhaps \\boxed{7}", "6", REJECT),
    ("\\boxed{6} \\text{ or } 7", "6", REJECT),  # a value, not a box, offered right after the box
    ("\\boxed{6}\\text{ (or 7)}", "6", REJECT),
    ("The answer is $\\boxed{6}$ or $7$.", "6", REJECT),
    ("The answer is $\\boxed{6}$ or possibly 7.", "6", REJECT),
    ("The answer is $\\boxed{6}$ or, equivalently, $\\frac{12}{2}$.", "6", ACCEPT),
    ("The answer is 6. Or 7.", "6", REJECT),
    ("\\boxed{6}\n\nor maybe 7", "6", REJECT),
    ("\\boxed{6}, although 7 is also plausible", "6", REJECT),  # the rest of the box's sentence
    ("\\boxed{6} (7 is also plausible)", "6", REJECT),
    ("\\boxed{6}\\footnote{or 7}", "6", REJECT),
    ("\\boxed{6}, \\text{or}\\ 7", "6", REJECT),
    ("# Answer\n\n6\n\n7", "6", REJECT),  # a number alone on the last line after the answer
    ("\\boxed{6}\n\n7", "6", REJECT),
    ("\\boxed{6}. Also, the triangle has 3 sides.", "6", ACCEPT),  # another sentence
    ("\\boxed{6}, which is also 2 times 3.", "6", ACCEPT),  # a remark, not an alternative
    ("# Answer\n\n6", "6", ACCEPT),
    ("\\boxed{7} (that is, \\boxed{7})", "7", ACCEPT),  # the same answer twice
    ("We first found \\boxed{6}, which was an arithmetic slip.\n\nRedoing it, the area is \\boxed{7}.", "7", ACCEPT),
]


@pytest.mark.parametrize("completion,reference,accept", BOX_ALTERNATIVES)
def test_boxes_offered_as_alternatives(completion, reference, accept):
    check(completion, reference, accept)


# --- after the final answer, "it could also be 5" commits to that value too
AFTER_HEDGES = [
    ("\\boxed{6}\n\nBut it could also be 7.", "6", REJECT),
    ("The answer is 6.\n\nAlternatively, it might be $7$.", "6", REJECT),
    ("\\boxed{6}\n\nIt could also be $\\frac{12}{2}$, the same value.", "6", ACCEPT),
    ("\\boxed{6}\n\nThe count may be 0 when the set is empty, but here it is not.", "6", ACCEPT),  # "may be": prose
    ("\\boxed{6}\n\nNote that x might be 0 at the boundary.", "6", ACCEPT),  # about x, not the answer
]


@pytest.mark.parametrize("completion,reference,accept", AFTER_HEDGES)
def test_a_value_offered_after_the_final_answer(completion, reference, accept):
    check(completion, reference, accept)


def test_a_choice_offered_after_the_final_answer():
    r = verifiers.verify("math", "Answer: D\n\nActually, I am not sure, it might be A.", "D", prompt=QUESTION)
    assert r.status is Status.OK and r.reward == 0.0, r.reason


# --- a letter with another option's text names two options
LETTER_AND_TEXT = [
    ("So the answer is $\\boxed{(D)\\ 1/4}$.", "D", REJECT),  # D by letter, A by text
    ("The correct answer choice is D: 1/4.", "D", REJECT),
    ("The correct answer choice is D: 2/3.", "D", ACCEPT),
    ("\\boxed{(D) \\text{two thirds}}", "D", ACCEPT),  # text that is no other option
]


@pytest.mark.parametrize("completion,reference,accept", LETTER_AND_TEXT)
def test_a_letter_with_another_options_text(completion, reference, accept):
    r = verifiers.verify("math", completion, reference, prompt=QUESTION)
    assert r.status is Status.OK and r.reward == (1.0 if accept else 0.0), r.reason


# --- a statement inside a code block is code, not the answer
CODE_BLOCKS = [
    ("```python\nprint('the answer is', 2 + 5)\n```\nIt prints 7.\n\n\\boxed{7}", "7", ACCEPT),
    ("\\boxed{7}\n```python\nprint('the answer is 6')\n```", "7", ACCEPT),
    ("\\boxed{6}\n```\nFinal Answer: 7\n```", "7", REJECT),
]


@pytest.mark.parametrize("completion,reference,accept", CODE_BLOCKS)
def test_statements_inside_code_blocks(completion, reference, accept):
    check(completion, reference, accept)


# --- the rules above stay linear in the completion (100 KB - 1 MB)
@pytest.mark.parametrize("completion", [
    "<answer>7</answer>" * 20_000,
    "<answer>" + "x" * 400_000 + "</answer>" * 20,
    "1 or " * 100_000 + "7",
    "$1$ or " * 60_000 + "$7$",
    "the answer is not 7. " * 20_000,
    "\\boxed{7}\nit could also be 6. " * 20_000,
    "```\n" * 100_000 + "\\boxed{7}",
    "\\boxed{7} (or " * 40_000 + "\\boxed{7}",
])
def test_hedge_rules_stay_linear(completion):
    import time
    t0 = time.perf_counter()
    r = verifiers.verify("math", completion, "5", prompt=QUESTION)
    assert r.status is Status.OK and r.reward == 0.0, r.reason
    assert time.perf_counter() - t0 < 2.0


# --- statements inside a closed <think> are drafts once the completion answers after it
THINKING = [
    ("<think>**Final Answer**\n\\boxed{4}\nHmm, no, it is 3.</think>\n<answer>3</answer>", "3", ACCEPT),
    ("<think>Final Answer: 4\nNo wait.</think>\nFinal Answer: 3", "3", ACCEPT),
    ("<think>Final Answer: 3</think>\nFinal Answer: 4", "3", REJECT),
    ("<think>\\boxed{3}</think>\nFinal Answer: 3 or 4", "3", REJECT),  # the hedge is after the thinking
    ("Final Answer: 4\nFinal Answer: 3", "3", REJECT),  # without a think block: two answers
]


@pytest.mark.parametrize("completion,reference,accept", THINKING)
def test_statements_inside_the_thinking_are_drafts(completion, reference, accept):
    check(completion, reference, accept)


# --- a letter named only to be questioned or negated is no choice
DOUBTED_CHOICES = [
    ("So the answer is $\\boxed{(D)?}$", "D", REJECT),
    ("Final Answer: \\text{Option D is wrong}", "D", REJECT),
    ("So the answer is $\\boxed{\\text{not A}}$", "D", REJECT),
    ("So the answer is $\\boxed{D}$.", "D", ACCEPT),
    ("Solution: Choice D (it is not exact, but no other option is closer)", "D", ACCEPT),  # a note, not a doubt
    ("So the correct solution is Choice_D: False, True.", "D", ACCEPT),
]
NEGATIVE_OPTIONS = "Which statement holds?\nA: 2 is odd\nB: 3 is even\nC: 4 is not prime\nD: 5 is not prime"


@pytest.mark.parametrize("completion,reference,accept", DOUBTED_CHOICES)
def test_a_doubted_letter_is_no_choice(completion, reference, accept):
    r = verifiers.verify("math", completion, reference, prompt=QUESTION)
    assert r.status is Status.OK and r.reward == (1.0 if accept else 0.0), r.reason


def test_an_options_own_negation_is_its_text():
    r = verifiers.verify("math", "Final Answer: (C) 4 is not prime", "C", prompt=NEGATIVE_OPTIONS)
    assert r.status is Status.OK and r.reward == 1.0, r.reason


# --- an expression copied from the question is the question, not its value
RESTATED = [
    ("What is $17 + 25$?", "So we need $17 + 25$.", "42", REJECT),
    ("What is $17 + 25$?", "\\boxed{17+25}", "42", REJECT),
    ("Compute $\\frac{84}{2}$.", "# Answer\n\n\\frac{84}{2}", "42", REJECT),
    ("What is $17 + 25$?", "\\boxed{42}", "42", ACCEPT),
    ("Which is larger, 42 or 40?", "\\boxed{42}", "42", ACCEPT),  # a plain value may be in the question
    ("Simplify $\\sqrt{2} \\cdot 1$ to $\\sqrt{2}$.", "\\boxed{\\sqrt{2}}", "\\sqrt{2}", ACCEPT),  # written as the reference
]


@pytest.mark.parametrize("question,completion,reference,accept", RESTATED)
def test_an_expression_restated_from_the_question(question, completion, reference, accept):
    r = verifiers.verify("math", completion, reference, prompt=question)
    assert r.status is Status.OK and r.reward == (1.0 if accept else 0.0), r.reason
