"""Intervals, unions and sets: unions compare as sets of reals, sets are order-free,
tuples are ordered, and the empty set and the real line have several spellings."""
import pytest

from ._grade import ACCEPT, REJECT, check

TABLE = [
    ("\\boxed{(2,12) \\cup (12,102)}", "(2,12)\\cup(12,102)", ACCEPT),
    ("\\boxed{(12,102) \\cup (2,12)}", "(2,12)\\cup(12,102)", ACCEPT),  # parts in any order
    ("\\boxed{(2,102)}", "(2,12)\\cup(12,102)", REJECT),  # 12 is excluded
    ("\\boxed{(2,12]\\cup(12,102)}", "(2,102)", ACCEPT),  # the same set of reals
    ("\\boxed{[0,2] \\cup [2,3]}", "[0,3]", ACCEPT),
    ("\\boxed{[0,2) \\cup (2,3]}", "[0,3]", REJECT),
    ("\\boxed{\\{-1\\} \\cup [0,7)}", "\\{-1\\}\\cup[0,7)", ACCEPT),
    ("\\boxed{[0,7) \\cup \\{-1\\}}", "\\{-1\\}\\cup[0,7)", ACCEPT),
    ("\\boxed{[-1,7)}", "\\{-1\\}\\cup[0,7)", REJECT),
    ("\\boxed{[0, 7)}", "\\{-1\\}\\cup[0,7)", REJECT),  # a part missing
    ("\\boxed{x \\in (-6, 10)}", "(-6, 10)", ACCEPT),
    ("\\boxed{(-6, 10)}", "x \\in (-6,10)", ACCEPT),
    ("\\boxed{[-6, 10)}", "(-6, 10)", REJECT),
    ("\\boxed{(-\\infty, 3) \\cup (5, \\infty)}", "(5,\\infty)\\cup(-\\infty,3)", ACCEPT),
    ("\\boxed{(-\\infty, 3] \\cup (5, \\infty)}", "(5,\\infty)\\cup(-\\infty,3)", REJECT),
    # sets: order-free, duplicates collapse
    ("\\boxed{\\{1,3\\}}", "\\{3,1\\}", ACCEPT),
    ("\\boxed{\\{1, 1, 3\\}}", "\\{1,3\\}", ACCEPT),
    ("\\boxed{\\{1, 2, 3\\}}", "\\{1,3\\}", REJECT),
    ("\\boxed{\\{1\\}}", "\\{1,3\\}", REJECT),
    ("The roots are $\\boxed{3, 1}$.", "\\{1, 3\\}", ACCEPT),  # a bare list is order-free
    # tuples: ordered
    ("\\boxed{(3,1)}", "(1,3)", REJECT),
    ("\\boxed{(1,3)}", "(1,3)", ACCEPT),
    ("\\boxed{(1, 3, 2)}", "(1, 2, 3)", REJECT),
    ("\\boxed{\\{1, 3\\}}", "(1, 3)", REJECT),  # a set is not an ordered pair (nor an interval)
    # empty set and the reals
    ("\\boxed{\\emptyset}", "\\varnothing", ACCEPT),
    ("\\boxed{\\{\\}}", "\\emptyset", ACCEPT),
    ("There is no solution, so the answer is $\\boxed{\\emptyset}$.", "\\text{no solution}", ACCEPT),
    ("\\boxed{\\text{No solution}}", "\\emptyset", ACCEPT),
    ("\\boxed{\\{0\\}}", "\\emptyset", REJECT),
    ("\\boxed{\\mathbb{R}}", "(-\\infty, \\infty)", ACCEPT),
    ("\\boxed{(-\\infty,\\infty)}", "\\mathbb{R}", ACCEPT),
    ("The inequality holds for all real numbers.\n\n\\boxed{\\text{all real numbers}}", "\\mathbb{R}", ACCEPT),
    ("\\boxed{x \\in \\mathbb{R}}", "(-\\infty,\\infty)", ACCEPT),
    ("\\boxed{\\mathbb{R}}", "(0, \\infty)", REJECT),
    ("\\boxed{(-\\infty, \\infty)}", "(-\\infty, 0) \\cup (0, \\infty)", REJECT),
    # intervals with exact ends
    ("\\boxed{\\left[\\frac{1}{2}, \\sqrt{2}\\right)}", "[0.5, \\sqrt2)", ACCEPT),
    ("\\boxed{[\\frac{1}{3}, 2)}", "[0.333, 2)", REJECT),  # a rounded end (strict precision)
    # set differences: as sets of reals, never by their parts
    ("\\boxed{(0,2) \\setminus \\{1\\}}", "(0, 1) \\cup (1, 2)", ACCEPT),
    ("\\boxed{\\mathbb{R} \\setminus \\{0\\}}", "(-\\infty, 0) \\cup (0, \\infty)", ACCEPT),
    ("\\boxed{\\mathbb{R} \\backslash \\{0\\}}", "(-\\infty, 0) \\cup (0, \\infty)", ACCEPT),
    ("\\boxed{(0,2) \\setminus \\{1\\}}", "(0, 2)", REJECT),
    ("\\boxed{\\mathbb{R} \\setminus \\{0\\}}", "\\mathbb{R}", REJECT),
    ("\\boxed{[0,3] \\setminus (1,2) \\setminus \\{3\\}}", "[0,1] \\cup [2,3)", ACCEPT),
]


@pytest.mark.parametrize("completion,reference,accept", TABLE)
def test_intervals_and_sets(completion, reference, accept):
    check(completion, reference, accept)
