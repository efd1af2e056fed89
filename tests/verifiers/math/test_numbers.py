"""Numbers as people write them: separators, decimal commas, units, currency,
percentages, mixed numbers and scientific notation."""
import pytest

from ._grade import ACCEPT, REJECT, check, grade

TABLE = [
    # thousands separators
    ("\\boxed{11,\\! 111,\\! 100}", "11111100", ACCEPT),
    ("\\boxed{32{,}349}", "32349", ACCEPT),
    ("\\boxed{1,000.99}", "1000.99", ACCEPT),
    ("\\boxed{1\\,000\\,000}", "10^6", ACCEPT),
    ("The total is $\\boxed{1,234,567}$ dollars.", "1234567", ACCEPT),
    ("\\boxed{1,234,568}", "1234567", REJECT),
    ("\\boxed{12,345}", "1234.5", REJECT),
    # decimal commas: a comma between digits, not followed by exactly three digits, is a
    # decimal point when the other side is one decimal number
    ("\\boxed{1,22}", "1.22", ACCEPT),
    ("Der Preis beträgt \\boxed{2,74 \\$}.", "2.74", ACCEPT),
    ("\\boxed{3,5}", "3.5", ACCEPT),
    ("\\boxed{3,6}", "3.5", REJECT),
    ("\\boxed{1,2}", "12", REJECT),  # two numbers, not twelve
    ("\\boxed{1,2}", "1, 2", ACCEPT),  # and a list against a list
    ("\\boxed{1,5}", "\\{1, 5\\}", ACCEPT),
    ("\\boxed{1.5}", "1,5", ACCEPT),  # a decimal comma in the reference
    ("\\boxed{2,5}", "2.5, 3", REJECT),  # the other side is a list: commas separate
    # units and currency are not compared
    ("The area is $\\boxed{24 \\text{ cm}^2}$.", "24", ACCEPT),
    ("\\boxed{7 \\text{ m}^2}", "7", ACCEPT),
    ("The room is \\boxed{12 m²}.", "12", ACCEPT),
    ("\\boxed{5\\text{cm}}", "5", ACCEPT),
    ("\\boxed{\\$18.90}", "18.9", ACCEPT),
    ("She pays $\\boxed{\\$ 12}$ in total.", "12", ACCEPT),
    ("\\boxed{12 \\text{ dollars}}", "\\$12", ACCEPT),
    ("\\boxed{45^\\circ}", "45", ACCEPT),
    ("\\boxed{45^{\\circ}}", "\\frac{\\pi}{4}", ACCEPT),
    ("\\boxed{45°}", "45^\\circ", ACCEPT),
    ("\\boxed{6 \\text{ cm}}", "5", REJECT),
    ("\\boxed{\\$13}", "12", REJECT),
    # percentages (default policy "either")
    ("\\boxed{50\\%}", "0.5", ACCEPT),
    ("\\boxed{50\\%}", "50", ACCEPT),
    ("\\boxed{0.5}", "50\\%", ACCEPT),
    ("\\boxed{12.5\\%}", "\\frac{1}{8}", ACCEPT),
    ("\\boxed{5\\%}", "0.5", REJECT),
    ("\\boxed{50}", "0.5", REJECT),  # no % anywhere: fifty is not a half
    # mixed numbers and fractions
    ("\\boxed{2\\frac{1}{2}}", "2.5", ACCEPT),
    ("\\boxed{2 1/2}", "\\frac{5}{2}", ACCEPT),
    ("\\boxed{-1\\frac{3}{4}}", "-\\frac{7}{4}", ACCEPT),
    ("\\boxed{2\\frac{1}{2}}", "1", REJECT),  # not 2 × 1/2
    ("\\boxed{\\frac{14}{4}}", "\\frac{7}{2}", ACCEPT),
    # scientific notation
    ("\\boxed{1.2 \\times 10^{3}}", "1200", ACCEPT),
    ("\\boxed{1.2e3}", "1200", ACCEPT),
    ("\\boxed{6.02 \\times 10^{23}}", "6.02e23", ACCEPT),
    ("\\boxed{3.0 \\cdot 10^{-4}}", "0.0003", ACCEPT),
    ("\\boxed{6.02 \\times 10^{22}}", "6.02e23", REJECT),
    # signs, zeros, AIME's three digits
    ("\\boxed{+7}", "7", ACCEPT),
    ("\\boxed{0.50}", "0.5", ACCEPT),
    ("\\boxed{042}", "42", ACCEPT),
    ("\\boxed{-0}", "0", ACCEPT),
    ("\\boxed{-7}", "7", REJECT),
    # an integer reference is matched exactly, however the answer is printed
    ("\\boxed{1000000005.0}", "1000000006", REJECT),
    ("\\boxed{1.0000000e9}", "1000000001", REJECT),
    ("\\boxed{1000000006.0}", "1000000006", ACCEPT),
    ("\\boxed{3.00}", "3", ACCEPT),
    # a decimal comma inside a sentence (not English: no function words to spot)
    ("Insgesamt kostet es 2,74 $", "2.74", ACCEPT),
    ("Insgesamt kostet es 2,47 $", "2.74", REJECT),
    # a font around math is the math (math@2.1.0), on either side; words stay words
    ("The answer is $\\boxed{\\mathbf{8}}$.", "8", ACCEPT),
    ("\\boxed{\\textbf{12.5}}", "\\frac{25}{2}", ACCEPT),
    ("\\boxed{\\text{12}}", "12", ACCEPT),
    ("\\boxed{8}", "\\mathbf{8}", ACCEPT),
    ("\\boxed{\\boldsymbol{x+1}}", "x + 1", ACCEPT),
    ("\\boxed{2\\mathbf{x+1}}", "2x + 2", ACCEPT),  # the wrapper groups: 2(x+1), not 2x+1
    ("\\boxed{\\mathbf{(3, 4)}}", "(3,4)", ACCEPT),
    ("\\boxed{\\mathbf{(4, 3)}}", "(3,4)", REJECT),
    ("\\boxed{\\mathbf{1, 2}}", "2, 1", ACCEPT),
    ("\\boxed{\\mathbf{9}}", "8", REJECT),
    ("\\boxed{\\boldsymbol{2x}}", "2x + 1", REJECT),
    ("\\boxed{\\mathbf{5}\\text{ cm}}", "5", ACCEPT),
]


@pytest.mark.parametrize("completion,reference,accept", TABLE)
def test_numbers(completion, reference, accept):
    check(completion, reference, accept)


@pytest.mark.parametrize("completion,reference,params,accept", [
    ("\\boxed{50\\%}", "0.5", {"percent_policy": "strip"}, REJECT),
    ("\\boxed{50\\%}", "50", {"percent_policy": "strip"}, ACCEPT),
    ("\\boxed{50\\%}", "50", {"percent_policy": "fraction"}, REJECT),
    ("\\boxed{50\\%}", "0.5", {"percent_policy": "fraction"}, ACCEPT),
    ("\\boxed{1,5}", "1.5", {"decimal_comma": "never"}, REJECT),
    ("\\boxed{1,5}", "1, 5", {"decimal_comma": "always"}, REJECT),
    ("\\boxed{1,5}", "1.5", {"decimal_comma": "always"}, ACCEPT),
])
def test_number_policies(completion, reference, params, accept):
    check(completion, reference, accept, params)


def test_the_decimal_comma_rule_is_named_in_the_reason():
    r = grade("\\boxed{1,22}", "1.22")
    assert r.reward == 1.0 and "decimal comma" in r.reason
