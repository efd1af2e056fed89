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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_SPACE = re.compile(r"\s")
_SHOW = 40


@dataclass(frozen=True)
class Comparison:
    ok: bool
    detail: str = ""


def _show(s: str) -> str:
    return repr(s if len(s) <= _SHOW else s[:_SHOW] + "…")


def _decimal(token: str) -> Decimal:
    """The value of a number token, exactly. An exponent beyond the decimal module's range
    (|e| > 10^18: `1e9999999999999999999`) raised InvalidOperation, so that any wrong
    program could print one and make its sample an ERROR (a sample a trainer leaves out)
    instead of a wrong answer: such a value is 0 when its digits are, else NaN (equal to
    nothing: it is no integer a test can expect)."""
    try:
        return Decimal(token)
    except InvalidOperation:
        digits = re.split(r"[eE]", token, maxsplit=1)[0]
        return Decimal(0) if not digits.strip("+-.0") else Decimal("NaN")


def tokens_equal(a: str, b: str, float_tol: float = 1e-6, case_sensitive: bool = True,
                 exact_integers: bool = True) -> bool:
    """Whether the candidate's token `a` matches the expected token `b` under the
    "tokens" rule (see the module docstring)."""
    if a == b:
        return True
    if _NUMBER.fullmatch(a) and _NUMBER.fullmatch(b):
        # Decimal: exact, and no 4300-digit limit (int() of a long token raises)
        if _INTEGER.fullmatch(b) and (exact_integers or _INTEGER.fullmatch(a)):
            return _decimal(a) == Decimal(b)
        x, y = float(a), float(b)
        diff = abs(x - y)
        return diff <= float_tol or diff <= float_tol * abs(y)
    return not case_sensitive and a.casefold() == b.casefold()


_BATCH_CHARS = 1 << 18


def _batches(text: str, cut: Callable[[int], int], split: Callable[[str, bool], list[str]]) -> Iterator[list[str]]:
    """`split(text)` in pieces of about _BATCH_CHARS characters (each piece ends where
    `cut(pos)` says a token or line ends), so that a program's output of millions of
    tokens is never held as one list of them (~50 bytes a token)."""
    start, n = 0, len(text)
    while start < n:
        end = min(n, cut(start + _BATCH_CHARS)) if start + _BATCH_CHARS < n else n
        yield split(text[start:end], end == n)
        start = end


def _token_batches(text: str) -> Iterator[list[str]]:
    # `\s` of a str pattern and str.split() agree on what is whitespace (Py_UNICODE_ISSPACE)
    def cut(pos: int) -> int:
        m = _SPACE.search(text, pos)
        return m.start() if m else len(text)
    return _batches(text, cut, lambda piece, final: piece.split())


def _line_batches(text: str) -> Iterator[list[str]]:
    def cut(pos: int) -> int:
        k = text.find("\n", pos)
        return k + 1 if k >= 0 else len(text)
    def split(piece: str, final: bool) -> list[str]:
        lines = [ln.rstrip() for ln in piece.split("\n")]
        return lines if final else lines[:-1]  # a piece ends with "\n": its last "" starts the next
    return _batches(text, cut, split)


def _walk(a: Iterator[list[str]], b: Iterator[list[str]], same: Callable[[str, str], bool],
          limit: int | None = None) -> tuple[int, str, str] | tuple[int, int]:
    """Walk two batched sequences in step: (i, x, y) at the first 1-based position i where
    `same(x, y)` fails, else (length of a, length of b) (both counted up to `limit`).
    Equal runs are compared as list slices (C speed); `same` only where they differ."""
    abuf: list[str] = []
    bbuf: list[str] = []
    ai = bi = done = 0
    while limit is None or done < limit:
        if ai == len(abuf):
            abuf, ai = next(a, None), 0  # type: ignore[assignment]
        if bi == len(bbuf):
            bbuf, bi = next(b, None), 0  # type: ignore[assignment]
        if abuf is None or bbuf is None:
            n_a = done + (0 if abuf is None else len(abuf) - ai + sum(len(x) for x in a))
            n_b = done + (0 if bbuf is None else len(bbuf) - bi + sum(len(x) for x in b))
            return n_a, n_b
        k = min(len(abuf) - ai, len(bbuf) - bi)
        if limit is not None:
            k = min(k, limit - done)
        if abuf[ai:ai + k] != bbuf[bi:bi + k]:
            for t in range(k):
                if not same(abuf[ai + t], bbuf[bi + t]):
                    return done + t + 1, abuf[ai + t], bbuf[bi + t]
        ai, bi, done = ai + k, bi + k, done + k
    return done, done


def compare_tokens(actual: str, expected: str, *, float_tol: float = 1e-6, case_sensitive: bool = True,
                   exact_integers: bool = True) -> Comparison:
    if actual == expected:
        return Comparison(True)
    found = _walk(_token_batches(actual), _token_batches(expected),
                  lambda g, w: tokens_equal(g, w, float_tol, case_sensitive, exact_integers))
    if len(found) == 3:
        i, g, w = found  # type: ignore[misc]
        return Comparison(False, f"token {i}: expected {_show(w)}, got {_show(g)}")
    n_got, n_want = found  # type: ignore[misc]
    if n_got != n_want:
        what = "ends early" if n_got < n_want else "has extra output"
        return Comparison(False, f"output {what}: expected {n_want} tokens, got {n_got}")
    return Comparison(True)


def _line_count(text: str) -> int:
    """Lines up to the last one that is not empty once its trailing whitespace is dropped."""
    end = len(text.rstrip())
    return text.count("\n", 0, end) + 1 if end else 0


def compare_lines(actual: str, expected: str, *, float_tol: float = 1e-6, case_sensitive: bool = True,
                  exact_integers: bool = True) -> Comparison:
    actual, expected = (t.replace("\r\n", "\n") if "\r\n" in t else t for t in (actual, expected))
    n_got, n_want = _line_count(actual), _line_count(expected)
    found = _walk(_line_batches(actual), _line_batches(expected),
                  lambda g, w: g == w or (not case_sensitive and g.casefold() == w.casefold()),
                  limit=min(n_got, n_want))
    if len(found) == 3:
        i, g, w = found  # type: ignore[misc]
        return Comparison(False, f"line {i}: expected {_show(w)}, got {_show(g)}")
    if n_got != n_want:
        what = "ends early" if n_got < n_want else "has extra output"
        return Comparison(False, f"output {what}: expected {n_want} lines, got {n_got}")
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
