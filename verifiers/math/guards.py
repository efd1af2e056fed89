"""Cheap checks that refuse input SymPy could spend minutes or gigabytes on.

Two layers, both far cheaper than the work they prevent:

- `check_text` on the answer string before parsing: length, bracket depth (the parser
  recurses), an unbraced exponent tower (`9^9^9^9`: ambiguous and explosive), huge
  digit runs, binomials/factorials of big literals (SymPy evaluates `\\binom` on parse).
- `check_expr` on the parsed, unevaluated SymPy tree: node count, and an upper bound on
  the size of every number the tree denotes (`10^{10^{10}}`, `9^{9^{9^9}}`, `(10^9)!`).

A refusal raises `UnsafeInput`; the verifier turns it into ABSTAIN with the reason. The
pool's wall-clock and memory limits stay the backstop for whatever slips through.
"""
from __future__ import annotations

import math
import re

import sympy

MAX_ANSWER_CHARS = 1000
MAX_BRACKET_DEPTH = 40
MAX_DIGITS = 200  # one literal; longer is not an answer a model means
MAX_NODES = 2000
# Upper bound on log10 |value| for any sub-expression: a number of a million digits is
# still cheap for mpmath (it keeps the exponent apart), beyond that we do not try.
MAX_LOG10 = 1e6
# Symbols are sampled with values below this (see equivalence.SAMPLE_VALUES).
SYMBOL_BOUND = 12.0

_TOWER = re.compile(r"\^\s*[\w.]+\s*\^|\^\s*\{[^{}]*\}\s*\^")
_DIGITS = re.compile(r"\d{%d,}" % (MAX_DIGITS + 1))
_BIG_LITERAL = re.compile(r"\d{6,}")


class UnsafeInput(ValueError):
    """The answer is too large or too deep to evaluate safely; the message says why."""


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


def check_expr(e: sympy.Basic) -> None:
    """Raise UnsafeInput when the parsed expression is too big to evaluate safely."""
    nodes = 0
    for _ in sympy.preorder_traversal(e):
        nodes += 1
        if nodes > MAX_NODES:
            raise UnsafeInput(f"expression too large ({MAX_NODES}+ nodes)")
    if _log10_bound(e) > MAX_LOG10:
        raise UnsafeInput("number too large to evaluate safely (more than a million digits)")
