"""Output comparators: tables whose arithmetic is written out. Pure, no sandbox."""
from __future__ import annotations

import pytest

from verifiers.code.compare import compare, tokens_equal


@pytest.mark.parametrize("a, b, equal", [
    ("3", "3", True),
    ("3", "4", False),
    ("1000000006", "1000000005", False),   # integers exact: rel 1e-6 would allow |diff| <= 1000
    ("007", "7", True),                    # as integers, 007 == 7
    ("0.5", "0.5000001", True),            # |diff| = 1e-7 <= 1e-6 (absolute)
    ("0.5", "0.500002", False),            # |diff| = 2e-6 > 1e-6, and > 1e-6 * 0.500002
    ("1e9", "1000000500.0", True),         # |diff| = 500 <= 1e-6 * 1.0000005e9 = 1000.0005 (relative)
    ("1e9", "1000002000.0", False),        # |diff| = 2000 > 1000.002
    ("1", "1.0000001", True),              # one side has a fraction: tolerance applies, |diff| = 1e-7
    ("-0.0", "0", True),                   # |diff| = 0
    ("nan", "nan", True),                  # identical text
    ("inf", "1e400", False),               # inf is text, not a number
    ("YES", "yes", False),                 # case-sensitive by default
    ("abc", "abd", False),
])
def test_token_pairs(a, b, equal):
    assert tokens_equal(a, b) is equal


@pytest.mark.parametrize("got, want, equal", [
    # An integer expected token is matched by the exact value only (issue 11): a relative
    # 1e-6 would let a float-formatted wrong answer within 1000 of 1e9 pass.
    ("1000000005.0", "1000000006", False),   # 1000000005 != 1000000006
    ("1.0000000e9", "1000000006", False),    # 1000000000 != 1000000006
    ("1.000000006e9", "1000000006", True),   # exactly 1000000006
    ("1000000006.0", "1000000006", True),    # the same value, written as a decimal
    ("5.0", "5", True),
    ("5e0", "5", True),
    ("5.0000001", "5", False),               # within 1e-6, but not the integer's value
    ("4.9999999", "5", False),
    ("-0.0", "0", True),
    ("1e400", "1", False),
    ("1" * 5000, "1", False),                # over int()'s 4300-digit limit: no ValueError
    ("1" * 5000, "1" * 5000 + "0", False),
    # Exponents beyond the decimal module's range raised InvalidOperation (an ERROR, not a wrong answer).
    ("1e9999999999999999999", "5", False),
    ("-.5e-99999999999999999999", "0", False),
    ("0e99999999999999999999", "0", True),
    ("-0.0e-99999999999999999999", "0", True),
    ("1" * 5000 + ".0", "1" * 5000, True),
    # A float expected token keeps the tolerance, whatever the candidate's format.
    ("1000000006", "1000000005.0", True),    # |diff| = 1 <= 1e-6 * 1e9
    ("1000002000", "1000000000.0", False),   # |diff| = 2000 > 1e-6 * 1e9 = 1000
    ("0.5000001", "0.5", True),              # |diff| = 1e-7 <= 1e-6
])
def test_integer_expected_tokens_are_matched_exactly(got, want, equal):
    assert tokens_equal(got, want) is equal
    assert compare(f"{got}\n", f"{want}\n").ok is equal


def test_case_insensitive_tokens():
    assert tokens_equal("YES", "yes", case_sensitive=False)
    assert not tokens_equal("YES", "no", case_sensitive=False)


@pytest.mark.parametrize("actual, expected, comparator, ok, detail", [
    # tokens: whitespace-insensitive, numbers with tolerance, lengths must match
    ("1 2\n3\n", "1\n2 3", "tokens", True, ""),
    ("  1   2 3  \n\n", "1 2 3\n", "tokens", True, ""),
    ("1 2", "1 2 3", "tokens", False, "ends early: expected 3 tokens, got 2"),
    ("1 2 3 4", "1 2 3", "tokens", False, "extra output: expected 3 tokens, got 4"),
    ("1 5 3", "1 2 3", "tokens", False, "token 2: expected '2', got '5'"),
    ("", "0", "tokens", False, "ends early"),
    ("", "", "tokens", True, ""),
    ("3.14159265", "3.1415927", "tokens", True, ""),   # |diff| = 5e-8
    # prefix truncation: only the first line printed never passes
    ("2\n", "2\n2\n", "tokens", False, "ends early"),
    ("2\n", "2\n2\n", "lines", False, "ends early: expected 2 lines, got 1"),
    # lines: trailing whitespace and trailing blank lines ignored, the rest counts
    ("a b  \nc\n\n\n", "a b\nc", "lines", True, ""),
    ("a  b\nc", "a b\nc", "lines", False, "line 1"),
    (" a\n", "a\n", "lines", False, "line 1"),
    ("a\r\nb\r\n", "a\nb\n", "lines", True, ""),
    # exact: nothing ignored
    ("3\n", "3\n", "exact", True, ""),
    ("3", "3\n", "exact", False, "character 2"),
    ("3 \n", "3\n", "exact", False, "character 2"),
])
def test_comparator_table(actual, expected, comparator, ok, detail):
    c = compare(actual, expected, comparator)
    assert c.ok is ok
    assert detail in c.detail


def test_truncated_output_never_passes():
    assert compare("1 2 3", "1 2 3").ok
    assert not compare("1 2 3", "1 2 3", truncated=True).ok
    assert "truncated" in compare("1 2 3", "1 2 3", truncated=True).detail


def test_tolerance_parameter_and_unknown_comparator():
    assert compare("0.50001", "0.5", float_tol=1e-4).ok          # |diff| = 1e-5 <= 1e-4
    assert not compare("0.50001", "0.5", float_tol=1e-6).ok      # 1e-5 > 1e-6 and > 5e-7
    assert compare("YES\nno", "yes\nNO", "lines", case_sensitive=False).ok
    with pytest.raises(ValueError, match="unknown comparator"):
        compare("a", "a", "fuzzy")
