"""Equations and assignments: a name on the left is dropped, an equation equals its
rearrangements and non-zero multiples, and a system's values are matched by name."""
import pytest

from ._grade import ACCEPT, REJECT, check

TABLE = [
    ("\\boxed{x = 3}", "3", ACCEPT),
    ("\\boxed{3}", "x = 3", ACCEPT),
    ("\\boxed{k = 12}", "12", ACCEPT),
    ("\\boxed{x = -3}", "3", REJECT),
    ("\\boxed{y = 2x + 1}", "2x + 1 = y", ACCEPT),
    ("\\boxed{2x + 1 = y}", "y = 2x+1", ACCEPT),
    ("\\boxed{2y = 4x + 2}", "y = 2x + 1", ACCEPT),  # scaled
    ("\\boxed{2x - y + 1 = 0}", "y = 2x + 1", ACCEPT),  # rearranged
    ("\\boxed{y = 2x - 1}", "y = 2x + 1", REJECT),
    ("\\boxed{y = x + 1}", "y = 2x + 1", REJECT),
    ("\\boxed{2x + 1}", "y = 2x + 1", ACCEPT),  # the right side, named by the question
    ("\\boxed{f(x) = x^2 - 4}", "(x-2)(x+2)", ACCEPT),
    ("\\boxed{f(x) = x^2 + 4}", "(x-2)(x+2)", REJECT),
    ("\\boxed{(x-1)^2 + (y+2)^2 = 9}", "x^2 - 2x + y^2 + 4y - 4 = 0", ACCEPT),
    ("\\boxed{(x-1)^2 + (y+2)^2 = 9}", "x^2 - 2x + y^2 + 4y + 4 = 0", REJECT),
    # systems
    ("\\boxed{x = 7, y = 6}", "(7, 6)", ACCEPT),
    ("\\boxed{y = 6, x = 7}", "(7, 6)", ACCEPT),  # matched by name, not position
    ("\\boxed{x=6, y=7}", "(7, 6)", REJECT),
    ("\\boxed{(7, 6)}", "x = 7, y = 6", ACCEPT),
    ("\\boxed{(6, 7)}", "x = 7, y = 6", REJECT),
    ("\\boxed{x = 7 \\text{ and } y = 6}", "y = 6, x = 7", ACCEPT),
    ("\\boxed{a = 1, b = -2, c = 3}", "(1, -2, 3)", ACCEPT),
    ("\\boxed{a = 1, b = 3, c = -2}", "(1, -2, 3)", REJECT),
    ("\\boxed{(x, y) = (7, 6)}", "(7, 6)", ACCEPT),
    # solutions of an equation
    ("\\boxed{x = 2 \\text{ or } x = -3}", "-3, 2", ACCEPT),
    ("\\boxed{x = 2, x = -3}", "\\{2, -3\\}", ACCEPT),
    ("\\boxed{x = 2}", "-3, 2", REJECT),  # one root of two
    ("\\boxed{x^2 + x - 6 = 0}", "-3, 2", REJECT),  # the equation is not its solution
    # an inverse function's name is a name; coordinates name different lines
    ("Final Answer: The final answer is $\\boxed{\\frac{x+5}{2}}$.", "f^{-1}(x) = \\frac{x+5}{2}", ACCEPT),
    ("Final Answer: The final answer is $\\boxed{\\frac{x-5}{2}}$.", "f^{-1}(x) = \\frac{x+5}{2}", REJECT),
    ("The vertical asymptote is $\\boxed{y = 5}$.", "x = 5", REJECT),
    ("The vertical asymptote is $\\boxed{x = 5}$.", "x = 5", ACCEPT),
    # a final block with several assignments is one answer, not its last number
    ("The roots are \\( x = 1 \\text{ or } x = 2 \\).", "1, 2", ACCEPT),
    ("The roots are \\( x = 1 \\text{ or } x = 3 \\).", "1, 2", REJECT),
]


@pytest.mark.parametrize("completion,reference,accept", TABLE)
def test_equations(completion, reference, accept):
    check(completion, reference, accept)
