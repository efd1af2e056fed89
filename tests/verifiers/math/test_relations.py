"""Inequalities and relations: one operator has many spellings, and a relation in one
variable equals its solution set written as an interval."""
import pytest

from ._grade import ACCEPT, REJECT, check

TABLE = [
    # spellings of the same operator
    ("The solution set is $\\boxed{x \\geq 5}$.", "x >= 5", ACCEPT),
    ("\\boxed{x \\ge 5}", "x \\geqslant 5", ACCEPT),
    ("\\boxed{x \\lt 3}", "x < 3", ACCEPT),
    ("\\boxed{x \\gt -2}", "x > -2", ACCEPT),
    ("\\boxed{x \\leq 4}", "x <= 4", ACCEPT),
    ("\\boxed{x \\le 4}", "x ≤ 4", ACCEPT),
    ("\\boxed{x \\neq 3}", "x != 3", ACCEPT),
    ("\\boxed{x \\ne 3}", "x \\neq 3", ACCEPT),
    # the same relation turned round
    ("\\boxed{5 < x}", "x > 5", ACCEPT),
    ("\\boxed{-1 \\geq y}", "y \\leq -1", ACCEPT),
    # strict vs non-strict, direction, boundary: near misses
    ("\\boxed{x > 5}", "x \\geq 5", REJECT),
    ("\\boxed{x \\geq 5}", "x > 5", REJECT),
    ("\\boxed{x < 5}", "x > 5", REJECT),
    ("\\boxed{x \\geq 6}", "x \\geq 5", REJECT),
    ("\\boxed{x \\leq -3}", "x \\geq -3", REJECT),
    # chains and their intervals
    ("\\boxed{1 < x \\le 3}", "(1, 3]", ACCEPT),
    ("\\boxed{1 < x \\leq 3}", "1 < x \\le 3", ACCEPT),
    ("\\boxed{1 \\le x \\le 3}", "(1, 3]", REJECT),
    ("\\boxed{-2 \\le x \\le 7}", "x \\in [-2,7]", ACCEPT),
    ("\\boxed{x \\in [-2, 7]}", "[-2,7]", ACCEPT),
    ("\\boxed{-2 < x < 7}", "x \\in [-2,7]", REJECT),
    ("\\boxed{3 > x > 1}", "(1, 3)", ACCEPT),
    # rays and their intervals
    ("\\boxed{x \\geq 5}", "[5, \\infty)", ACCEPT),
    ("\\boxed{x > 5}", "[5, \\infty)", REJECT),
    ("\\boxed{(-\\infty, 2)}", "x < 2", ACCEPT),
    ("\\boxed{x \\neq 3}", "(-\\infty, 3) \\cup (3, \\infty)", ACCEPT),
    ("\\boxed{x < -1 \\text{ or } x \\geq 4}", "(-\\infty,-1) \\cup [4, \\infty)", ACCEPT),
    ("\\boxed{x \\le -1 \\text{ or } x \\geq 4}", "(-\\infty,-1) \\cup [4, \\infty)", REJECT),
    # a relation is not its boundary value
    ("\\boxed{x > 5}", "5", REJECT),
    ("\\boxed{5}", "x \\geq 5", REJECT),
    # a quadratic inequality solved by the grader
    ("\\boxed{x^2 < 4}", "(-2, 2)", ACCEPT),
    ("\\boxed{(x-1)(x-3) \\le 0}", "[1, 3]", ACCEPT),
]


@pytest.mark.parametrize("completion,reference,accept", TABLE)
def test_relations(completion, reference, accept):
    check(completion, reference, accept)
