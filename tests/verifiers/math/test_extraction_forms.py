"""Finding the final answer in long solutions as models write them, and in references
that are whole worked solutions."""
import pytest

from ._grade import ACCEPT, REJECT, check, grade

SOLUTION = (
    "Let $n$ be the number of students. From the first condition, $n \\equiv 2 \\pmod 4$, so "
    "$n \\in \\{2, 6, 10, \\dots\\}$. We first try $\\boxed{6}$ but $6$ fails the second condition.\n\n"
    "Checking $n = 10$: $10 = 3 \\cdot 3 + 1$, which works. Hence the smallest such number is\n"
)
TABLE = [
    (SOLUTION + "$$\\boxed{10}$$", "10", ACCEPT),
    (SOLUTION + "$$\\boxed{10}$$", "6", REJECT),  # the earlier box was an intermediate step
    (SOLUTION + "\\fbox{10}.", "10", ACCEPT),
    # several boxes written together at the end form the answer list
    ("The roots are $\\boxed{1}$ and $\\boxed{2}$.", "1, 2", ACCEPT),
    ("So $x = \\boxed{1}, \\boxed{2}$", "1,2", ACCEPT),
    ("\\boxed{1}\\boxed{2}", "1, 2", ACCEPT),
    ("The roots are $\\boxed{1}$ and $\\boxed{2}$.", "2", REJECT),
    # answer sentences
    ("... which gives 34.\n\nFinal Answer: The largest $n$ is 34.", "34", ACCEPT),
    ("... which gives 34.\n\nFinal Answer: The largest $n$ is 35.", "34", REJECT),
    ("Adding, we get 17.\nFinal Answer: The final answer is $17$. I hope it is correct.", "17", ACCEPT),
    ("Therefore, the answer is $\\frac{3}{4}$.", "0.75", ACCEPT),
    ("**Answer:** $x = -2$", "-2", ACCEPT),
    ("<think>Try 5: 5*5 = 25. Too big... 4.</think>\n<answer>4</answer>", "4", ACCEPT),
    ("<think>Try 5 then 4.</think>\n<answer>4</answer>", "5", REJECT),
    ("Natalia sold 48/2 = 24 clips in May.\nAltogether she sold 48 + 24 = 72 clips.\n#### 72", "72", ACCEPT),
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "24", REJECT),
    # display math, delimiters with newlines inside
    ("Putting it together:\n\\[\n  x = \\frac{1}{2}\n\\]", "0.5", ACCEPT),
    ("Putting it together:\n$$\n\\frac{1}{2}\n$$", "\\frac12", ACCEPT),
    ("so the value is \\(\n 3\\sqrt{2}\n\\).", "\\sqrt{18}", ACCEPT),
    ("The answer is $\n12\n$.", "12", ACCEPT),
    # truncated, or no answer at all
    ("Let me think about the first case. If $x = 3$ then", "5", REJECT),
    ("I am not able to solve this problem.", "5", REJECT),
    # one line of words around math: the last math block answers, not the whole line
    ("Since $1 - x \\ge 0$, \\( x \\le 1 \\).", "(-\\infty, 1]", ACCEPT),
    ("Since $1 - x \\ge 0$, \\( x \\le 2 \\).", "(-\\infty, 1]", REJECT),
    # the same answer boxed twice is one answer (math@2.1.0); two different ones are a list
    ("Hence $\\boxed{12}$.\n\n**Final answer:** $\\boxed{12}$", "12", ACCEPT),
    ("\\boxed{12} \\boxed{12}", "12", ACCEPT),
    ("\\boxed{12} \\boxed{13}", "12", REJECT),  # hedging between two answers
    ("$\\boxed{12}$ or $\\boxed{13}$", "13", REJECT),
    ("\\boxed{3}\\boxed{3}", "3, 3", ACCEPT),  # a double root listed twice
]


@pytest.mark.parametrize("completion,reference,accept", TABLE)
def test_extraction(completion, reference, accept):
    check(completion, reference, accept)


REFERENCE_SOLUTION = (
    "We count the arrangements. There are $\\binom{8}{3} = 56$ ways to choose the positions of "
    "the red balls, and " + "for each of them we check the condition on adjacent balls. " * 40
    + "Subtracting the $20$ bad arrangements, the answer is $\\boxed{36}$."
)


def test_a_reference_that_is_a_worked_solution_is_graded_by_its_final_answer():
    assert len(REFERENCE_SOLUTION) > 2000
    assert grade("\\boxed{36}", REFERENCE_SOLUTION).reward == 1.0
    assert grade("\\boxed{56}", REFERENCE_SOLUTION).reward == 0.0
    assert grade("\\boxed{36}", {"answer": REFERENCE_SOLUTION}).reward == 1.0


def test_a_reference_solution_without_a_box_uses_its_answer_sentence():
    ref = "Each of the 4 friends pays 3 dollars.\nSo they pay 12 dollars.\n#### 12"
    assert grade("The answer is 12.", ref).reward == 1.0
    assert grade("The answer is 3.", ref).reward == 0.0
