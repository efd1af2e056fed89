"""Symbolic equivalence: roots, π, trigonometric and log forms, polynomials, complex
numbers; simplification is bounded (the pool's time limit is the backstop)."""
import pytest

from ._grade import ACCEPT, REJECT, check

TABLE = [
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", ACCEPT),
    ("\\boxed{2\\sqrt{3}}", "\\sqrt{8}", REJECT),
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}", ACCEPT),
    ("\\boxed{\\frac{\\sqrt{6}}{3}}", "\\sqrt{\\frac{2}{3}}", ACCEPT),
    ("\\boxed{\\sqrt{3+2\\sqrt{2}}}", "1+\\sqrt{2}", ACCEPT),
    ("\\boxed{\\sqrt{3-2\\sqrt{2}}}", "1+\\sqrt{2}", REJECT),
    ("\\boxed{\\sqrt[3]{27}}", "3", ACCEPT),
    ("\\boxed{\\frac{5\\pi}{6}}", "150^\\circ", ACCEPT),
    ("\\boxed{\\frac{\\pi}{4}}", "\\arctan 1", ACCEPT),
    ("\\boxed{\\frac{\\pi}{3}}", "\\arctan 1", REJECT),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\sin 60^\\circ", ACCEPT),
    ("\\boxed{\\frac{1}{2}}", "\\cos \\frac{\\pi}{3}", ACCEPT),
    ("\\boxed{2\\sin x \\cos x}", "\\sin 2x", ACCEPT),
    ("\\boxed{\\cos^2 x - \\sin^2 x}", "\\cos 2x", ACCEPT),
    ("\\boxed{\\sin x}", "\\cos x", REJECT),
    ("\\boxed{\\log_2 8}", "3", ACCEPT),
    ("\\boxed{\\ln(e^2)}", "2", ACCEPT),
    ("\\boxed{\\frac{\\ln 8}{\\ln 2}}", "3", ACCEPT),
    ("\\boxed{\\log_3 8}", "3", REJECT),
    ("\\boxed{(x+1)^2}", "x^2 + 2x + 1", ACCEPT),
    ("\\boxed{(x-1)(x+3)}", "x^2 + 2x - 3", ACCEPT),
    ("\\boxed{(x+1)(x+3)}", "x^2 + 2x - 3", REJECT),
    ("\\boxed{\\frac{x^2-1}{x-1}}", "x+1", ACCEPT),
    ("\\boxed{3 + 4i}", "4i + 3", ACCEPT),
    ("\\boxed{3 - 4i}", "3 + 4i", REJECT),
    ("\\boxed{e^{i\\pi}}", "-1", ACCEPT),
    ("\\boxed{\\binom{5}{2}}", "10", ACCEPT),
    ("\\boxed{5!}", "120", ACCEPT),
    ("\\boxed{\\frac{a+b}{2}}", "\\frac{a}{2} + \\frac{b}{2}", ACCEPT),
    ("\\boxed{2^{10}}", "1024", ACCEPT),
    ("\\boxed{2^{100}+1}", "1267650600228229401496703205376", REJECT),
    # a final math block with no plain number in it is the answer
    ("Carrying out the computation carefully gives \\( \\tfrac14\\pi \\).", "\\frac{\\pi}{4}", ACCEPT),
    ("Carrying out the computation carefully gives \\( \\tfrac13\\pi \\).", "\\frac{\\pi}{4}", REJECT),
]


@pytest.mark.parametrize("completion,reference,accept", TABLE)
def test_symbolic(completion, reference, accept):
    check(completion, reference, accept)
