"""Cheap checks that refuse input SymPy could spend minutes or gigabytes on.

Two layers, both far cheaper than the work they prevent:

- `check_text` on the answer string before parsing: length, bracket depth (the parser
  recurses), an unbraced exponent tower (`9^9^9^9`: ambiguous and explosive), huge
  digit runs, binomials/factorials of big literals (SymPy evaluates `\\binom` on parse).
- `check_expr` on the parsed, unevaluated SymPy tree: node count, finite sums/products
  of many terms, and an upper bound on the size of every number the tree denotes
  (`10^{10^{10}}`, `9^{9^{9^9}}`, `(10^9)!`).

A refusal raises `UnsafeInput`; the verifier turns it into ABSTAIN with the reason. The
pool's wall-clock and memory limits stay the backstop for whatever slips through.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import re

import sympy

MAX_ANSWER_CHARS = 1000
MAX_BRACKET_DEPTH = 40
MAX_DIGITS = 200  # one literal; longer is not an answer a model means
MAX_NODES = 2000
MAX_TERMS = 100  # terms of a finite \sum / \prod
SOLVE_MAX_OPS = 40  # larger relations are not solved (into sets, or for a variable)
SOLVE_MAX_DEGREE = 4
# Upper bound on log10 |value| for any sub-expression: a number of a million digits is
# still cheap for mpmath (it keeps the exponent apart), beyond that we do not try.
MAX_LOG10 = 1e6
# Symbols are sampled with values below this (see equivalence.SAMPLE_VALUES).
SYMBOL_BOUND = 12.0

_TOWER = re.compile(r"\^\s*(?:\d+(?:\.\d+)?|[a-zA-Z])\s*\^|\^\s*\{[^{}]*\}\s*\^")
_DIGITS = re.compile(r"\d{%d,}" % (MAX_DIGITS + 1))
_BIG_LITERAL = re.compile(r"\d{6,}")


class UnsafeInput(ValueError):
    """The answer is too large or too deep to evaluate safely; the message says why."""


class TooSlow(BaseException):
    """Evaluation ran past its budget (`time_budget`). A BaseException, so that SymPy's and
    our own `except Exception` fallbacks cannot swallow it."""


@contextlib.contextmanager
def time_budget(seconds: float | None):
    """Raise TooSlow in the block after `seconds` (wall clock), via SIGALRM. Only on a
    process's main thread (a pool worker's call, a script); elsewhere a no-op, and the
    pool's hard limit stays the backstop."""
    import signal
    import threading

    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TooSlow(f"too slow to evaluate (over {seconds:g} s)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_text(s: str) -> None:
    """Raise UnsafeInput when the answer string is too risky to parse."""
    if len(s) > MAX_ANSWER_CHARS:
        raise UnsafeInput(f"answer too long to parse safely ({len(s)} > {MAX_ANSWER_CHARS} chars)")
    depth = worst = 0
    for c in s:
        if c in "([{":
            depth += 1
            worst = max(worst, depth)
        elif c in ")]}":
            depth -= 1
    if worst > MAX_BRACKET_DEPTH:
        raise UnsafeInput(f"answer nested too deeply ({worst} > {MAX_BRACKET_DEPTH} brackets)")
    if _TOWER.search(s):
        raise UnsafeInput("unbraced exponent tower (a^b^c): ambiguous and unsafe to evaluate")
    if _DIGITS.search(s):
        raise UnsafeInput(f"number literal longer than {MAX_DIGITS} digits")
    if ("\\binom" in s or "\\choose" in s) and ("^" in s or "!" in s or _BIG_LITERAL.search(s)):
        raise UnsafeInput("binomial of a large or computed argument (evaluated eagerly by the parser)")


def _at_least_one(e: sympy.Basic) -> bool:
    """Whether `e` is certainly >= 1: positive integers, their products and positive powers."""
    if e.is_Integer:
        return e >= 1
    if isinstance(e, sympy.Mul):
        return all(_at_least_one(a) for a in e.args)
    if isinstance(e, sympy.Pow):
        return _at_least_one(e.args[0]) and e.args[1].is_Number and bool(e.args[1] > 0)
    return False


# math@3.0.0: `1/x` is as large to write as `x` (a 12-level continued fraction is not a
# huge number); 2.x bounded it by |x|·3 per level and refused deep continued fractions.
_RECIPROCAL = contextvars.ContextVar("math_guard_reciprocal_bound", default=False)


@contextlib.contextmanager
def reciprocal_bound(on: bool):
    """Within the block, bound `x^{-k}` (k a number, |k| <= 1e8) by the size of `x^k`."""
    token = _RECIPROCAL.set(on)
    try:
        yield
    finally:
        _RECIPROCAL.reset(token)


def _log10_bound(e: sympy.Basic) -> float:
    """An upper bound on log10(|value| + 2), symbols taken below SYMBOL_BOUND; inf if huge."""
    if e.is_Integer or e.is_Rational:
        p, q = int(e.p), int(e.q)
        return math.log10(max(abs(p), q) + 2)
    if e.is_Float:
        v = abs(float(e))
        return math.log10(v + 2) if math.isfinite(v) else math.inf
    if e.is_Atom:
        return math.log10(SYMBOL_BOUND + 2)
    if isinstance(e, sympy.Pow) or isinstance(e, sympy.exp):
        base, exp = (e.args if isinstance(e, sympy.Pow) else (sympy.E, e.args[0]))
        if exp.is_negative is True and _at_least_one(base) and _log10_bound(exp) <= 8:
            return math.log10(3)  # 1/2^1000: between 0 and 1, cheap at any size
        if _RECIPROCAL.get() and exp.is_Number and exp.is_negative is True and abs(exp) <= 1e8:
            return _log10_bound(base) * max(1.0, float(abs(exp)))
        be = _log10_bound(exp)
        if be > 8:  # exponent above 10^8
            return math.inf if base not in (sympy.S.Zero, sympy.S.One, sympy.S.NegativeOne) else 1.0
        return _log10_bound(base) * 10 ** be
    if isinstance(e, (sympy.factorial, sympy.factorial2, sympy.gamma, sympy.binomial,
                      sympy.RisingFactorial, sympy.FallingFactorial, sympy.subfactorial)):
        bn = max(_log10_bound(a) for a in e.args)
        if bn > 8:
            return math.inf
        n = 10 ** bn
        return n * math.log10(n + 2)
    parts = [_log10_bound(a) for a in e.args]
    if not parts:
        return 1.0
    if isinstance(e, sympy.Mul):
        return sum(parts)
    return max(parts) + math.log10(len(parts) + 1) + 1.0


def _terms(limits: tuple) -> float:
    """Number of terms of a finite Sum/Product range (inf when not a plain numeric range)."""
    if len(limits) != 3:
        return math.inf
    lo, hi = limits[1], limits[2]
    if not (lo.is_Integer and hi.is_Integer):
        return 0.0 if (lo.free_symbols or hi.free_symbols) else math.inf
    return float(int(hi) - int(lo) + 1)


def check_expr(e: sympy.Basic) -> None:
    """Raise UnsafeInput when the parsed expression is too big to evaluate safely."""
    nodes = 0
    for node in sympy.preorder_traversal(e):
        nodes += 1
        if nodes > MAX_NODES:
            raise UnsafeInput(f"expression too large ({MAX_NODES}+ nodes)")
        if isinstance(node, (sympy.Sum, sympy.Product)):
            # A finite range is evaluated term by term; an infinite one goes to SymPy's
            # summation methods (and, if those are slow, to the pool's time limit).
            n = max(_terms(lim) for lim in node.limits)
            if math.isfinite(n) and n > MAX_TERMS:
                raise UnsafeInput(f"sum or product of more than {MAX_TERMS} terms")
    if _log10_bound(e) > MAX_LOG10:
        raise UnsafeInput("number too large to evaluate safely (more than a million digits)")


def cheap_to_solve(e: sympy.Basic, x: sympy.Symbol) -> bool:
    """Whether solving `e` for `x` is cheap: small, and `x` only under powers of degree
    <= SOLVE_MAX_DEGREE (solving `x^{100} - 3x + 1 > 0` takes SymPy minutes)."""
    if sympy.count_ops(e) > SOLVE_MAX_OPS:
        return False
    for node in sympy.preorder_traversal(e):
        if isinstance(node, sympy.Pow) and node.args[0].has(x):
            k = node.args[1]
            if not (k.is_Number and abs(k) <= SOLVE_MAX_DEGREE):
                return False
    return True
