"""Extraction of the final answer from a completion, and unwrapping of the reference."""
import pytest

from verifiers.math.extract import extract_answer, last_boxed, unwrap_reference

EXTRACTION = [
    # (completion, expected text, rule)
    ("so the total is $\\boxed{12}$.", "12", "boxed"),
    ("first \\boxed{3}, then corrected: \\boxed{4}", "4", "boxed"),  # the last box wins
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}", "boxed"),  # nested braces
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}", "boxed"),  # escaped braces are not grouping
    ("The answer is \\fbox{7}", "7", "boxed"),
    ("thus \\boxed 5 is it", "5", "boxed"),
    ("... so we get \\boxed{\\frac{1}{2}", "\\frac{1}{2}", "boxed"),  # cut before the box closed
    ("<think>maybe 3</think><answer>17</answer>", "17", "answer_tag"),
    ("<answer>x = 2</answer>", "x = 2", "answer_tag"),
    ("<answer>After checking, the answer is 9.</answer>", "9", "phrase"),
    ("Adding up we get 10.\nThe final answer is $\\frac{7}{2}$. I hope it is correct.", "\\frac{7}{2}", "phrase"),
    ("**Final Answer:** 42", "42", "phrase"),
    ("Therefore the answer is 3.5.", "3.5", "phrase"),
    ("-5, 2, 9", "-5, 2, 9", "bare"),
    ("$x = 3$", "x = 3", "bare"),
    ("(-\\infty, 4]", "(-\\infty, 4]", "bare"),
    ("There are 3 apples and 4 pears, so 7 in total", "7", "last_number"),
    ("We need 1,250 bricks in the end\nwhich is plenty", "1,250", "last_number"),
    ("step 1: 2+2=4\nstep 2: halve it to get 2.5 roughly\ndone", "2.5", "last_number"),
]


@pytest.mark.parametrize("completion,text,method", EXTRACTION)
def test_extraction_table(completion, text, method):
    found = extract_answer(completion)
    assert found is not None
    assert (found.text, found.method) == (text, method)


@pytest.mark.parametrize("completion", ["", "   ", "I could not solve this problem, sorry about that.",
                                        "<answer></answer> no digits here at all, really none"])
def test_nothing_found(completion):
    assert extract_answer(completion) is None


def test_last_boxed_skips_unclosed_earlier_box():
    assert last_boxed("\\boxed{1} then \\boxed{2") == "2"
    assert last_boxed("\\boxed{1} then \\boxed{2\nmore lines follow here") == "1"
    assert last_boxed("no box") is None


@pytest.mark.parametrize("reference,expected", [
    ("$\\frac{1}{2}$", "\\frac{1}{2}"),
    ("\\boxed{5}", "5"),
    ("$\\boxed{(1, 2)}$", "(1, 2)"),
    ("\\[ x^2 \\]", "x^2"),
    ("  42 ", "42"),
    ("$8.40", "$8.40"),  # a lone dollar is currency; `clean` drops it later
])
def test_unwrap_reference(reference, expected):
    assert unwrap_reference(reference) == expected
