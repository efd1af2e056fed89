"""Precision: a rounded decimal never equals an exact value by default; with
`rounding_sig_digits` it does at that many significant digits, and the reason says which
rule decided. Tolerances apply only where the reference is not an integer."""
import pytest

from ._grade import ACCEPT, REJECT, check, grade

TABLE = [
    # strict default: rounded decimals vs exact values, either way round
    ("\\boxed{0.333}", "\\frac{1}{3}", REJECT),
    ("\\boxed{3.14}", "\\pi", REJECT),
    ("\\boxed{1.414}", "\\sqrt{2}", REJECT),
    ("\\boxed{\\frac{20}{3}}", "6.67", REJECT),
    ("\\boxed{6.67}", "\\frac{20}{3}", REJECT),
    # exact decimals are exact values
    ("\\boxed{0.125}", "\\frac{1}{8}", ACCEPT),
    ("\\boxed{\\frac{3}{8}}", "0.375", ACCEPT),
    ("\\boxed{0.3\\overline{3}}", "\\frac{1}{3}", ACCEPT),  # a repeating decimal is exact
    # many digits are still a rounded decimal of an exact value: strict by default (the
    # tolerance is for decimals against decimals), rounding_sig_digits accepts them
    ("\\boxed{0.3333333333333}", "\\frac{1}{3}", REJECT),
    ("\\boxed{1.41421356237}", "\\sqrt{2}", REJECT),
    ("\\boxed{3.14159265359}", "\\pi", REJECT),
    ("\\boxed{1.5707963267948966}", "\\frac{\\pi}{2}", REJECT),  # float64's pi/2
    ("\\boxed{0.30000000000000004}", "0.3", ACCEPT),  # float noise between decimals
    ("\\boxed{0.3000001}", "0.3", REJECT),
    ("\\boxed{3.14159}", "\\pi", REJECT),
    # near-equal floats are different numbers
    ("\\boxed{1.0000001}", "1", REJECT),
    ("\\boxed{1}", "1.0000001", REJECT),
    ("\\boxed{0.99999}", "1", REJECT),
    ("\\boxed{2.000001}", "2.000002", REJECT),
    # two decimals at different precision are never rounded into each other
    ("\\boxed{2.333}", "2.33", REJECT),
    ("\\boxed{2.33}", "2.333", REJECT),
    ("\\boxed{2.330}", "2.33", ACCEPT),
]


@pytest.mark.parametrize("completion,reference,accept", TABLE)
def test_precision_defaults(completion, reference, accept):
    check(completion, reference, accept)


ROUNDING = {"rounding_sig_digits": 3}


@pytest.mark.parametrize("completion,reference,accept", [
    ("\\boxed{0.333}", "\\frac{1}{3}", ACCEPT),
    ("\\boxed{3.14}", "\\pi", ACCEPT),
    ("\\boxed{3.142}", "\\pi", ACCEPT),
    ("\\boxed{3.1}", "\\pi", REJECT),  # two significant digits: too few
    ("\\boxed{3.15}", "\\pi", REJECT),  # not a rounding of 3.14159…
    ("\\boxed{1.414}", "\\sqrt{2}", ACCEPT),
    ("\\boxed{1.41}", "\\sqrt{2}", ACCEPT),
    ("\\boxed{\\frac{20}{3}}", "6.67", ACCEPT),
    ("\\boxed{6.66}", "\\frac{20}{3}", REJECT),  # truncated: not a rounding
    ("\\boxed{0.142}", "\\frac{1}{7}", REJECT),  # truncated
    ("\\boxed{0.143}", "\\frac{1}{7}", ACCEPT),
    ("\\boxed{0.3333333333}", "\\frac{1}{3}", ACCEPT),
    ("\\boxed{1.5707963267948966}", "\\frac{\\pi}{2}", ACCEPT),
    ("\\boxed{6.68}", "\\frac{20}{3}", REJECT),
    ("\\boxed{0.54}", "\\frac{27}{50}", ACCEPT),  # exact anyway
    ("\\boxed{0.5}", "\\frac{27}{50}", REJECT),  # 27/50 terminates: no rounding to 0.5
    ("\\boxed{2.33}", "2.333", REJECT),  # never between two decimals
    ("\\boxed{1000}", "999.7", REJECT),  # an integer is not a rounded decimal
])
def test_rounding_at_stated_significant_digits(completion, reference, accept):
    check(completion, reference, accept, ROUNDING)


def test_rounding_needs_at_least_the_stated_digits():
    assert grade("\\boxed{3.14}", "\\pi", {"rounding_sig_digits": 4}).reward == 0.0
    assert grade("\\boxed{3.1416}", "\\pi", {"rounding_sig_digits": 4}).reward == 1.0


def test_the_reason_names_the_rule_that_decided():
    strict = grade("\\boxed{0.333}", "\\frac{1}{3}")
    assert strict.reward == 0.0 and "rounding_sig_digits" in strict.reason
    rounded = grade("\\boxed{0.333}", "\\frac{1}{3}", ROUNDING)
    assert rounded.reward == 1.0 and "rounded" in rounded.reason and "3 significant digits" in rounded.reason
    exact = grade("\\boxed{0.125}", "\\frac{1}{8}")
    assert exact.reward == 1.0 and "rounded" not in exact.reason


def test_rel_tol_is_relative_and_never_applies_to_an_integer_reference():
    assert grade("\\boxed{2.0005}", "2.0004", {"rel_tol": 1e-3}).reward == 1.0
    assert grade("\\boxed{1000.4}", "1000", {"rel_tol": 1e-3}).reward == 0.0
    assert grade("\\boxed{1000}", "1000.4", {"rel_tol": 1e-3}).reward == 1.0


@pytest.mark.parametrize("completion,reference,accept", [
    ("\\boxed{6.66}", "\\frac{20}{3}", ACCEPT),             # truncated: accepted only when asked
    ("\\boxed{41.494}", "17 + 10\\sqrt{6}", ACCEPT),       # 41.4948…
    ("\\boxed{0.142}", "\\frac{1}{7}", ACCEPT),
    ("\\boxed{6.67}", "\\frac{20}{3}", ACCEPT),             # a rounding still is
    ("\\boxed{6.65}", "\\frac{20}{3}", REJECT),             # neither
    ("\\boxed{-0.666}", "\\frac{2}{3}", REJECT),            # the sign counts
])
def test_truncation_is_its_own_choice(completion, reference, accept):
    check(completion, reference, accept, {**ROUNDING, "accept_truncation": True})


@pytest.mark.parametrize("completion,reference,params,accept", [
    # scientific notation counts its decimal places after the exponent: 15 here
    ("\\boxed{\\frac{1}{432}}", "2.314814814815 \\times 10^{-3}", ROUNDING, ACCEPT),
    ("\\boxed{\\frac{1}{432}}", "2.314814814815 \\times 10^{-3}", None, REJECT),  # strict default
    ("\\boxed{\\frac{1}{432}}", "2.314814814816 \\times 10^{-3}", ROUNDING, REJECT),
])
def test_scientific_notation_rounding(completion, reference, params, accept):
    check(completion, reference, accept, params)
