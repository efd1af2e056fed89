"""Output comparators for standard-input/output tests: pure functions, no I/O.

    compare(actual, expected, "tokens") -> Comparison(ok, detail)

- "tokens" (default): split both on whitespace; the token lists must have the same
  length and agree token by token. What a numeric token pair must satisfy depends on
  the *expected* token:
  - an integer (`[+-]?digits`): the candidate's token must have exactly that value.
    Values are compared as decimals, not floats, so `1000000006.0` and `1.000000006e9`
    equal 1000000006 (same value, other spelling), while `1000000005.0` and
    `1.0000000e9` do not: a relative 1e-6 would let any answer within 1000 of 1e9 pass,
    which is wrong for every "answer modulo 1e9+7" problem. No digit limit applies.
  - a decimal with a fraction or exponent (`1.5`, `2e-3`): equal within an absolute
    *or* relative tolerance, |got - want| <= float_tol or <= float_tol * |want|
    (`float_tol`, default 1e-6: the usual "absolute or relative error 1e-6" of contests).
  "inf"/"nan" are text, not numbers.
- "lines": line by line, trailing whitespace of each line and trailing empty lines
  ignored; leading whitespace and inner spacing count.
- "exact": byte-for-byte (after decoding), nothing ignored.
`case_sensitive=False` compares text case-insensitively (CodeContests accepts "yes"
for "YES"). Truncated output (`truncated=True`) never passes, whatever it contains.
`exact_integers=False` is code@1.0.0's rule, kept for the version registered under that
name: an integer expected token is matched by a float-formatted token within float_tol.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_SHOW = 40


@dataclass(frozen=True)
class Comparison:
    ok: bool
    detail: str = ""


def _show(s: str) -> str:
    return repr(s if len(s) <= _SHOW else s[:_SHOW] + "…")


def tokens_equal(a: str, b: str, float_tol: float = 1e-6, case_sensitive: bool = True,
                 exact_integers: bool = True) -> bool:
    """Whether the candidate's token `a` matches the expected token `b` under the
    "tokens" rule (see the module docstring)."""
    if a == b:
        return True
    if _NUMBER.fullmatch(a) and _NUMBER.fullmatch(b):
        # Decimal: exact, and no 4300-digit limit (int() of a long token raises)
        if _INTEGER.fullmatch(b) and (exact_integers or _INTEGER.fullmatch(a)):
            return Decimal(a) == Decimal(b)
        x, y = float(a), float(b)
        diff = abs(x - y)
        return diff <= float_tol or diff <= float_tol * abs(y)
    return not case_sensitive and a.casefold() == b.casefold()


def compare_tokens(actual: str, expected: str, *, float_tol: float = 1e-6, case_sensitive: bool = True,
                   exact_integers: bool = True) -> Comparison:
    got, want = actual.split(), expected.split()
    for i, (g, w) in enumerate(zip(got, want)):
        if not tokens_equal(g, w, float_tol, case_sensitive, exact_integers):
            return Comparison(False, f"token {i + 1}: expected {_show(w)}, got {_show(g)}")
    if len(got) != len(want):
        what = "ends early" if len(got) < len(want) else "has extra output"
        return Comparison(False, f"output {what}: expected {len(want)} tokens, got {len(got)}")
    return Comparison(True)


def _lines(text: str) -> list[str]:
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def compare_lines(actual: str, expected: str, *, float_tol: float = 1e-6, case_sensitive: bool = True,
                  exact_integers: bool = True) -> Comparison:
    got, want = _lines(actual), _lines(expected)
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w and (case_sensitive or g.casefold() != w.casefold()):
            return Comparison(False, f"line {i + 1}: expected {_show(w)}, got {_show(g)}")
    if len(got) != len(want):
        what = "ends early" if len(got) < len(want) else "has extra output"
        return Comparison(False, f"output {what}: expected {len(want)} lines, got {len(got)}")
    return Comparison(True)


def compare_exact(actual: str, expected: str, *, float_tol: float = 1e-6, case_sensitive: bool = True,
                  exact_integers: bool = True) -> Comparison:
    if actual == expected or (not case_sensitive and actual.casefold() == expected.casefold()):
        return Comparison(True)
    n = next((i for i, (a, b) in enumerate(zip(actual, expected)) if a != b), min(len(actual), len(expected)))
    return Comparison(False, f"differs at character {n + 1}: expected {_show(expected[n:])}, got {_show(actual[n:])}")


COMPARATORS: dict[str, Callable[..., Comparison]] = {
    "tokens": compare_tokens,
    "lines": compare_lines,
    "exact": compare_exact,
}


def compare(actual: str, expected: str, comparator: str = "tokens", *, float_tol: float = 1e-6,
            case_sensitive: bool = True, truncated: bool = False, exact_integers: bool = True) -> Comparison:
    """Whether `actual` output matches `expected` under the named comparator."""
    if truncated:
        return Comparison(False, "output was truncated at the size limit")
    try:
        fn = COMPARATORS[comparator]
    except KeyError:
        raise ValueError(f"unknown comparator {comparator!r}; known: {', '.join(COMPARATORS)}") from None
    return fn(actual, expected, float_tol=float_tol, case_sensitive=case_sensitive, exact_integers=exact_integers)
