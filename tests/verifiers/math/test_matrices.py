"""Matrices and vectors: every LaTeX spelling, entries compared with the number rules."""
import pytest

from ._grade import ACCEPT, REJECT, check

M = "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"
TABLE = [
    ("\\boxed{\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}}", M, ACCEPT),
    ("$$\\boxed{\\left[\\begin{array}{cc} 1 & 2 \\\\ 3 & 4 \\end{array}\\right]}$$", M, ACCEPT),
    ("\\boxed{\\left(\\begin{array}{rr} 1 & 2 \\\\ 3 & 4 \\end{array}\\right)}", M, ACCEPT),
    ("\\boxed{\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}}", M, REJECT),  # the transpose
    ("\\boxed{\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}}", M, REJECT),
    ("\\boxed{\\begin{pmatrix} 1 & 2 & 0 \\\\ 3 & 4 & 0 \\end{pmatrix}}", M, REJECT),  # shape
    ("\\boxed{\\begin{pmatrix} 1 & 2 \\end{pmatrix}}", M, REJECT),
    # entries by the number rules
    ("\\boxed{\\begin{pmatrix} 0.5 & -1 \\\\ \\frac{2}{4} & \\sqrt{4} \\end{pmatrix}}",
     "\\begin{pmatrix} \\frac12 & -1 \\\\ \\frac12 & 2 \\end{pmatrix}", ACCEPT),
    ("\\boxed{\\begin{pmatrix} 0.33 & 0 \\\\ 0 & 1 \\end{pmatrix}}",
     "\\begin{pmatrix} \\frac13 & 0 \\\\ 0 & 1 \\end{pmatrix}", REJECT),
    ("\\boxed{\\begin{pmatrix} \\cos\\theta & -\\sin\\theta \\\\ \\sin\\theta & \\cos\\theta \\end{pmatrix}}",
     "\\begin{pmatrix} \\cos\\theta & -\\sin\\theta \\\\ \\sin\\theta & \\cos\\theta \\end{pmatrix}", ACCEPT),
    # vectors: a tuple has no orientation and matches a row or a column; a row matrix is
    # not the column vector it transposes
    ("\\boxed{\\begin{pmatrix} 1 \\\\ -2 \\\\ 3 \\end{pmatrix}}", "(1, -2, 3)", ACCEPT),
    ("\\boxed{(1, -2, 3)}", "\\begin{pmatrix} 1 \\\\ -2 \\\\ 3 \\end{pmatrix}", ACCEPT),
    ("\\boxed{\\begin{pmatrix} -2 \\\\ 1 \\\\ 3 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ -2 \\\\ 3 \\end{pmatrix}", REJECT),
    ("\\boxed{\\begin{bmatrix} 1 & -2 & 3 \\end{bmatrix}}", "\\begin{pmatrix} 1 \\\\ -2 \\\\ 3 \\end{pmatrix}", REJECT),
    ("\\boxed{\\begin{bmatrix} 1 & -2 & 3 \\end{bmatrix}}", "(1, -2, 3)", ACCEPT),
    ("\\boxed{\\begin{bmatrix} 1 \\\\ -2 \\\\ 3 \\end{bmatrix}}", "\\begin{pmatrix} 1 \\\\ -2 \\\\ 3 \\end{pmatrix}", ACCEPT),
    ("\\boxed{\\langle 1, -2, 3 \\rangle}", "\\begin{pmatrix} 1 \\\\ -2 \\\\ 3 \\end{pmatrix}", ACCEPT),
    # a determinant written with vmatrix is the matrix, not its value
    ("\\boxed{\\begin{vmatrix} 1 & 2 \\\\ 3 & 4 \\end{vmatrix}}", "-2", REJECT),
]


@pytest.mark.parametrize("completion,reference,accept", TABLE)
def test_matrices(completion, reference, accept):
    check(completion, reference, accept)
