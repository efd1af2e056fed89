"""When two parsed answers are equal: the policy, as pure functions.

`equal(pred, ref, policy)` keeps the two sides apart: the tolerance rule depends on which
side is the reference.

- Numbers: decimals are the exact rationals they write (`0.125` = 1/8, `1000000005.0` =
  1000000005); exact forms (integers, fractions, roots, π…) must agree exactly (rationals
  by exact arithmetic, the rest to 1e-20 relative at 30 digits).
- Tolerance (`rel_tol`, default 1e-9): only between decimals (a side written with a decimal
  point against another decimal, or a fraction whose expansion terminates) when the
  reference is not an integer: `0.30000000001` = 0.3, but `1.0000001` ≠ 1 and
  `1000000005.0` ≠ 1000000006 (an integer reference is matched exactly). A decimal against
  an exact value whose expansion does not terminate (1/3, √2, π/2) is a rounded answer:
  the next rule, never the tolerance (`1.5707963267948966` ≠ π/2 by default).
- Rounded decimals (`rounding_sig_digits`, default None = strict): `0.333` ≠ 1/3 and
  `3.14` ≠ π. With N set, a decimal with d ≥ 1 places and at least N significant digits
  equals an exact value whose expansion does not terminate (1/3, √2, 20/3) when that value
  rounds to it at d places (`6.67` = 20/3, `41.494` = 17 + 10√6 at N = 3; a truncation
  is not a rounding: `0.666` ≠ 2/3, unless `accept_truncation`).
  Never between two decimals, nor when the exact value terminates (`0.5` ≠ `27/50`).
  The verdict's reason names the rule (and, when strict, that the parameter would accept).
- Percent (`percent_policy`): "either" reads `50%` as 50 or as 0.5, "strip" as 50,
  "fraction" as 0.5. Degrees: `120^\\circ` equals 120 and 2π/3.
- Expressions with symbols: equal when they agree numerically at several sample points
  (identity testing; points where either side is undefined or where both are complex
  are skipped), else when `simplify(a − b)` is 0 for small trees.
- `x = 3`, `f(x) = 2x+1`, `k = n+1`: a name on the left is dropped and the values are
  compared. Two general equations are equal when one is a non-zero multiple of the other.
  A system of assignments (`y = 6, x = 7`) is matched by name against another system,
  order-free against a bare list, and against a tuple: in alphabetical order for the
  coordinates x, y, z (`(7, 6)`), else in the order written or alphabetical.
- Lists (bare commas) are order-free unless `ordered_lists`; tuples `( )` and `[a, b, c]`
  are ordered; sets `\\{ \\}` are order-free and never equal a tuple. A 2-tuple `(a, b)`
  also reads as an open interval, `[a, b]` as a closed one. Intervals, unions and finite
  sets of numbers compare as sets of reals (`[0,2] ∪ [2,3]` = `[0,3]`, `{1,1,3}` = `{1,3}`);
  unions with symbolic ends compare part by part, order-free.
- Free-variable names: when each side has exactly one variable the other lacks, they
  are identified (`f(z) = z` equals `f(x) = x`, `3t + 1` equals `3k + 1`).
- Text compares case-insensitively with spaces, braces and `\\text` dropped
  (`\\text{No solution}` = `no solution`); a one-letter answer compares as text too
  (`\\textbf{(B)}` = `B`).
- Not shown equal means 0: an answer we cannot read is not rewarded.
"""
from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass, replace
from typing import Literal

import sympy

from . import guards
from .normalize import forms_2_0, text_key
from .parse import Expr, Interval, Node, Relation, Seq, SetUnion, Text

PercentPolicy = Literal["either", "strip", "fraction"]

# Sample values for identity testing: generic (no small rational relations between them),
# below guards.SYMBOL_BOUND, mixing (0, 1), (1, 3) and larger values so that floor/ceiling
# and branch differences show.
SAMPLE_VALUES = ("0.5772156649", "1.2020569032", "2.7182818285", "0.3183098862", "1.6180339887",
                 "7.3890560989", "0.9159655942", "4.6692016091", "1.4142135624", "11.0917288")
N_SAMPLES = 5
EXACT_REL_TOL = 1e-20
PREC_DIGITS = 30
SIMPLIFY_MAX_OPS = 60
MAX_EXACT_EXPONENT = 10_000


@dataclass(frozen=True)
class Policy:
    """The knobs of the equivalence policy (mirrors the verifier's Params)."""

    rel_tol: float = 1e-9
    percent_policy: PercentPolicy = "either"
    ordered_lists: bool = False
    rounding_sig_digits: int | None = None
    accept_truncation: bool = False
    # math@3.0.0's rules (off: the 2.x policy, kept for replaying history).
    brackets_matter: bool = False  # a bare list `5, 7` is not the point `(5, 7)` nor the interval `[5, 7]`
    equation_value: bool = False  # `\log_2 8 = 3` states the value 3; `AB = 4, CD = 5` is `4, 5`
    no_absolute_floor: bool = False  # tiny distinct values (`e^{-100}`, `e^{-101}`) differ
    words_as_text: bool = False  # `No` (read as N·o) against `\text{No}` compares as words
    rename_bound_only: bool = False  # rename a variable only where a function name binds it
    # math@1.0.0 (off): `rel_tol` applies wherever a side is written as a decimal (1.0000001 = 1).
    tolerance_only_between_decimals: bool = True


# Which rules decided a comparison, for the verdict's reason (collected by `answers_equal`).
_NOTES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("math_equivalence_notes", default=None)
MAX_NOTES = 3


def _note(text: str) -> None:
    notes = _NOTES.get()
    if notes is not None and text not in notes and len(notes) < MAX_NOTES:
        notes.append(text)


# ---------------------------------------------------------------- numbers

def _exact(e: sympy.Basic) -> sympy.Rational | None:
    """The exact rational value of a tree of integers, + × and integer powers, else None."""
    if e.is_Rational:
        return e
    if isinstance(e, sympy.Add):
        parts = [_exact(a) for a in e.args]
        return None if any(p is None for p in parts) else sympy.Add(*parts)
    if isinstance(e, sympy.Mul):
        parts = [_exact(a) for a in e.args]
        return None if any(p is None for p in parts) else sympy.Mul(*parts)
    if isinstance(e, sympy.Pow):
        base, exp = _exact(e.args[0]), _exact(e.args[1])
        if base is None or exp is None or not exp.is_Integer or abs(int(exp)) > MAX_EXACT_EXPONENT:
            return None
        if base == 0 and exp < 0:
            return None
        return sympy.Pow(base, exp)
    if isinstance(e, sympy.UnevaluatedExpr):
        return _exact(e.args[0])
    return None


def _numeric(e: sympy.Basic, subs: dict | None = None) -> sympy.Basic | None:
    """`e` as a finite or infinite SymPy number at 30 digits, or None."""
    try:
        v = e.evalf(PREC_DIGITS, subs=subs) if subs else e.evalf(PREC_DIGITS)
    except Exception:
        return None
    if v.is_infinite and v in (sympy.oo, -sympy.oo):
        return v
    if not v.is_number or v.has(sympy.nan, sympy.zoo) or v.free_symbols:
        return None
    re_, im_ = v.as_real_imag()
    if not (re_.is_Number and im_.is_Number) or not (re_.is_finite and im_.is_finite):
        return None
    return v


# Set by `answers_equal` for math@3.0.0: no absolute floor between two non-zero values.
_NO_FLOOR: contextvars.ContextVar[bool] = contextvars.ContextVar("math_no_absolute_floor", default=False)


def _close(u: sympy.Basic, v: sympy.Basic, rel_tol: float) -> bool:
    if u.is_infinite or v.is_infinite:
        return u == v
    diff = abs((u - v).evalf(PREC_DIGITS))
    scale = max(abs(u.evalf(PREC_DIGITS)), abs(v.evalf(PREC_DIGITS)))
    if bool(diff <= rel_tol * scale):
        return True
    if _NO_FLOOR.get() and u != 0 and v != 0:
        return False  # 1e-30 and 2e-30 are different numbers; the floor only absorbs rounding around 0
    return bool(diff <= 1e-25)


def _is_real(u: sympy.Basic) -> bool:
    if u.is_infinite:
        return True
    im = sympy.im(u)
    return bool(abs(im) <= 1e-25 * max(1, abs(sympy.re(u))))


def _terminates(e: sympy.Basic) -> bool:
    """Whether `e` is a rational whose decimal expansion ends (denominator 2^a·5^b)."""
    q = _exact(e)
    if q is None:
        return False
    d = int(q.q)
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def _rounds_to(decimal: sympy.Basic, places: int, exact: sympy.Basic, truncation: bool) -> bool:
    """Whether the exact value rounds to `decimal` at `places` places (half an ulp either
    way), or, with `truncation`, truncates to it."""
    u, v = _numeric(decimal), _numeric(exact)
    if u is None or v is None or not _is_real(v) or u.is_infinite or v.is_infinite:
        return False
    u, v = sympy.re(u), sympy.re(v)
    ulp = sympy.Float(10, PREC_DIGITS) ** -places
    slack = 1 + sympy.Float("1e-9")
    if abs(u - v) <= ulp / 2 * slack:
        return True
    # truncated: same sign, |u| <= |v| < |u| + ulp
    return truncation and bool(u * v > 0 and abs(u) <= abs(v) and abs(v) - abs(u) < ulp)


def _significant_digits(src: str) -> int:
    digits = "".join(c for c in src if c.isdigit()).lstrip("0")
    return len(digits)


def _candidates(x: Expr, pol: Policy) -> list[tuple[sympy.Basic, int | None, str]]:
    """The values `x` may stand for under the policy, each with its decimal places and how
    it was read ("" for as written)."""
    out = [(x.value, x.decimals, "")]
    if x.percent:
        frac = (sympy.Mul(x.value, sympy.Rational(1, 100)), None if x.decimals is None else x.decimals + 2,
                f"{x.src} read as a fraction")
        out = {"either": [out[0], frac], "strip": [out[0]], "fraction": [frac]}[pol.percent_policy]
    if x.degrees:
        out = out + [(sympy.Mul(v, sympy.pi / 180), None, f"{x.src} read in degrees") for v, _, _ in out]
    return out


def _is_integer(e: sympy.Basic) -> bool:
    q = _exact(e)
    return q is not None and q.is_Integer


def _values_equal(a: sympy.Basic, b: sympy.Basic, tol: float, inexact: bool, pol: Policy) -> str | None:
    """How `a` equals `b` ("exact", "tolerance"), or None."""
    if a.free_symbols or b.free_symbols:
        return "exact" if _symbolic_equal(a, b, inexact, pol) else None
    qa, qb = _exact(a), _exact(b)
    if qa is not None and qb is not None:
        if qa == qb:
            return "exact"
        if tol <= EXACT_REL_TOL or not pol.tolerance_only_between_decimals:
            return None  # (math@1.0.0: two exact rationals never compare with a tolerance)
    u, v = _numeric(a), _numeric(b)
    if u is None or v is None:
        return "exact" if _structural_equal(a, b) else None
    if _close(u, v, EXACT_REL_TOL):
        return "exact"
    return "tolerance" if tol > EXACT_REL_TOL and _close(u, v, tol) else None


def _rounding_match(x: Expr, xv: sympy.Basic, xd: int | None, y: Expr, yv: sympy.Basic, min_sig: int,
                    truncation: bool = False) -> bool:
    """`x` is a rounded decimal of the exact, non-terminating `y` (see module docstring)."""
    if xd is None or xd < 1 or y.inexact or _significant_digits(x.src) < min_sig:
        return False
    if xv.free_symbols or yv.free_symbols or _terminates(yv):
        return False
    return _rounds_to(xv, xd, yv, truncation)


def scalar_equal(pred: Expr, ref: Expr, pol: Policy) -> bool:
    """Two numbers/expressions under the policy (percent, degrees, tolerance, rounding);
    `ref` is the reference's side (the tolerance rule depends on it)."""
    inexact = pred.inexact or ref.inexact
    hint = None
    for av, ad, a_read in _candidates(pred, pol):
        for bv, bd, b_read in _candidates(ref, pol):
            read = "; ".join(r for r in (a_read, b_read) if r)
            between_decimals = not any(not side.inexact and not _terminates(val)
                                       for side, val in ((pred, av), (ref, bv)))
            if pol.tolerance_only_between_decimals:
                tol = pol.rel_tol if inexact and between_decimals and not _is_integer(bv) else EXACT_REL_TOL
            else:
                tol = pol.rel_tol if inexact else EXACT_REL_TOL
            try:
                how = _values_equal(av, bv, tol, inexact, pol)
                if how is not None:
                    if how == "tolerance":
                        _note(f"equal within rel_tol = {pol.rel_tol:g}")
                    if read:
                        _note(read)
                    return True
                n = pol.rounding_sig_digits
                for x, xv, xd, y, yv in ((pred, av, ad, ref, bv), (ref, bv, bd, pred, av)):
                    if n is not None and _rounding_match(x, xv, xd, y, yv, n, pol.accept_truncation):
                        _note(f"{x.src} accepted as the exact value rounded at ≥ {n} significant digits"
                              " (rounding_sig_digits)")
                        if read:
                            _note(read)
                        return True
                    if n is None and hint is None and _rounding_match(x, xv, xd, y, yv, 1):
                        hint = (f"{x.src} is a rounded decimal of an exact value: not accepted by default "
                                "(params.rounding_sig_digits accepts rounded answers)")
            except (TypeError, ValueError, ArithmeticError, AttributeError, NotImplementedError):
                continue
    if hint:
        _note(hint)
    return False


# ---------------------------------------------------------------- symbolic

def _sample_points(symbols: list[sympy.Symbol]) -> list[dict]:
    n = len(SAMPLE_VALUES)
    return [{s: sympy.Float(SAMPLE_VALUES[(3 * j + 7 * k) % n], PREC_DIGITS) for j, s in enumerate(symbols)}
            for k in range(N_SAMPLES)]


def _symbolic_equal(a: sympy.Basic, b: sympy.Basic, inexact: bool, pol: Policy) -> bool:
    symbols = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    tol = pol.rel_tol if inexact else 1e-15
    agree = 0
    for subs in _sample_points(symbols):
        u, v = _numeric(a, subs), _numeric(b, subs)
        if u is None or v is None:
            continue
        if _close(u, v, tol):
            agree += 1
        elif _is_real(u) and _is_real(v):
            return False
        # both sides defined but complex and different: a branch choice, not evidence
    if agree >= 2:
        return True
    return _structural_equal(a, b)


def _structural_equal(a: sympy.Basic, b: sympy.Basic) -> bool:
    if a == b:
        return True
    try:
        d = sympy.Add(a, sympy.Mul(-1, b))
        if sympy.count_ops(d) > SIMPLIFY_MAX_OPS:
            return False
        return sympy.simplify(d) == 0
    except Exception:
        return False


def _proportional(d1: sympy.Basic, d2: sympy.Basic) -> bool:
    """Whether d1 = c·d2 for a constant c ≠ 0 (two equations `d = 0` say the same)."""
    symbols = sorted(d1.free_symbols | d2.free_symbols, key=lambda s: s.name)
    ratios = []
    for subs in _sample_points(symbols):
        u, v = _numeric(d1, subs), _numeric(d2, subs)
        if u is None or v is None or u.is_infinite or v.is_infinite:
            continue
        if abs(v) < 1e-20:
            if abs(u) < 1e-20:
                continue
            return False
        ratios.append((u / v).evalf(PREC_DIGITS))
    if len(ratios) < 2 or abs(ratios[0]) < 1e-20:
        return False
    return all(_close(r, ratios[0], 1e-12) for r in ratios[1:])


# ---------------------------------------------------------------- structure

_WORD_SRC = re.compile(r"[A-Za-z][A-Za-z' ]*")


def _text_of(n: Node, pol: Policy | None = None) -> str | None:
    """The words of a Text, or of a leaf written like one (`A` vs `\\textbf{A}`; with
    `words_as_text`, `No` vs `\\text{No}`)."""
    if isinstance(n, Text):
        return n.key
    if isinstance(n, Expr) and isinstance(n.value, sympy.Symbol):
        return text_key(n.src)  # a letter answer: `A`, `\\mathrm{E}`
    if pol is not None and pol.words_as_text and isinstance(n, Expr) and _WORD_SRC.fullmatch(n.src.strip()):
        return text_key(n.src)
    return None


def _is_name(n: Node) -> bool:
    """A left-hand side that only names the answer: `x`, `S_n`, `f(x)`, `(k, l)`."""
    if isinstance(n, Expr):
        v = n.value
        if isinstance(v, sympy.Symbol):
            return True
        if isinstance(v, sympy.Pow) and v.exp == -1 and isinstance(v.base, sympy.core.function.AppliedUndef) \
                and forms_2_0():
            v = v.base  # `f^{-1}(x)`, an inverse function's name (SymPy reads it as 1/f(x))
        if isinstance(v, sympy.core.function.AppliedUndef):  # f(x), not sin(x)
            return all(isinstance(a, (sympy.Symbol, sympy.Number)) for a in v.args)
        return False
    if isinstance(n, Seq) and n.kind == "tuple":
        return all(_is_name(i) for i in n.items)
    return False


def _coordinate_name(n: Node) -> str | None:
    """`y` for the assignment `y = …` to a coordinate name x, y or z; else None."""
    while isinstance(n, Seq) and len(n.items) == 1:
        n = n.items[0]
    if isinstance(n, Relation) and n.op == "=" and isinstance(n.lhs, Expr) and \
            isinstance(n.lhs.value, sympy.Symbol) and str(n.lhs.value) in COORDINATE_NAMES:
        return str(n.lhs.value)
    return None


def _unwrap(n: Node) -> Node:
    while isinstance(n, Seq) and len(n.items) == 1 and n.kind in ("list", "pm", "set", "tuple"):
        n = n.items[0]
    if isinstance(n, Relation) and n.op == "=" and _is_name(n.lhs):
        return _unwrap(n.rhs)
    return n


def _as_interval(n: Node) -> Interval | None:
    if isinstance(n, Interval):
        return n
    if isinstance(n, Seq) and len(n.items) == 2 and n.brackets in ("()", "[]") and \
            all(isinstance(i, Expr) for i in n.items):
        lo, hi = n.items
        return Interval(lo, hi, n.brackets == "()", n.brackets == "()")
    return None


def _intervals_equal(a: Interval, b: Interval, pol: Policy) -> bool:
    return (a.lo_open == b.lo_open and a.hi_open == b.hi_open
            and scalar_equal(a.lo, b.lo, pol) and scalar_equal(a.hi, b.hi, pol))


def _match_unordered(xs: tuple[Node, ...], ys: tuple[Node, ...], pol: Policy) -> bool:
    if len(xs) != len(ys):
        return False
    used = [False] * len(ys)
    for x in xs:
        for j, y in enumerate(ys):
            if not used[j] and equal(x, y, pol):
                used[j] = True
                break
        else:
            return False
    return True


COORDINATE_NAMES = frozenset({"x", "y", "z"})


def _assignments(n: Node) -> dict[str, Node] | None:
    """`y = 6, x = 7` → {"x": 7, "y": 6}: a list whose items each give a value to a
    different variable; None for anything else (`x = 2, x = -3` lists two values of x)."""
    if not isinstance(n, Seq) or n.kind not in ("list", "tuple") or len(n.items) < 2:
        return None
    out: dict[str, Node] = {}
    for item in n.items:
        if not (isinstance(item, Relation) and item.op == "=" and isinstance(item.lhs, Expr)
                and isinstance(item.lhs.value, sympy.Symbol)):
            return None
        name = item.lhs.value.name
        if name in out:
            return None
        out[name] = item.rhs
    return out


def _system_equal(a: Seq, b: Seq, pol: Policy) -> bool | None:
    """Systems of assignments: by name against another system, in alphabetical order of the
    names against a tuple of values; None when neither side is a system."""
    sa, sb = _assignments(a), _assignments(b)
    if sa is None and sb is None:
        return None
    if sa is not None and sb is not None:
        return sa.keys() == sb.keys() and all(equal(sa[k], sb[k], pol) for k in sa)
    system, values, pred_is_system = (sa, b, True) if sa is not None else (sb, a, False)
    if len(values.items) != len(system) or _assignments(values) is not None:
        return False
    written = list(system.values())
    if values.kind in ("list", "set") and not pol.ordered_lists:
        xs, ys = (written, values.items) if pred_is_system else (values.items, written)
        return _match_unordered(tuple(xs), tuple(ys), pol)
    # Against a tuple: coordinates (x, y, z) in alphabetical order, as written order cannot
    # be told from `y = 6, x = 7`; other names in the order written, else alphabetical.
    orders = [[system[k] for k in sorted(system)]]
    if not set(system) <= COORDINATE_NAMES:
        orders.insert(0, written)
    for ordered in orders:
        pairs = zip(ordered, values.items) if pred_is_system else zip(values.items, ordered)
        if all(equal(x, y, pol) for x, y in pairs):
            return True
    return False


def _seq_equal(a: Seq, b: Seq, pol: Policy) -> bool:
    ordered_kinds = ("tuple", "ordered")
    system = _system_equal(a, b, pol) if forms_2_0() else None
    if system is not None:
        return system
    if {a.kind, b.kind} == {"set", "tuple"} and forms_2_0():
        return False  # a set is not an ordered pair or tuple
    if a.kind in ordered_kinds and b.kind in ordered_kinds:
        if len(a.items) == 2 and {a.brackets, b.brackets} == {"()", "[]"}:
            return False  # (a, b) vs [a, b]: intervals with different ends
        if {a.brackets, b.brackets} == {"row", "col"}:
            return False  # a row vector is not the column vector it transposes
        return len(a.items) == len(b.items) and all(equal(x, y, pol) for x, y in zip(a.items, b.items))
    if pol.brackets_matter and {a.kind, b.kind} & {"list"} and {a.kind, b.kind} & set(ordered_kinds) \
            and (a.brackets in ("()", "[]") or b.brackets in ("()", "[]")):
        return False  # `5, 7` is two values, `(5, 7)` a point or an interval
    if "set" not in (a.kind, b.kind) and (pol.ordered_lists or a.kind in ordered_kinds or b.kind in ordered_kinds):
        # a bare list against a tuple: `x = 2, y = 3` vs `(2, 3)` is positional
        return len(a.items) == len(b.items) and all(equal(x, y, pol) for x, y in zip(a.items, b.items))
    return _match_unordered(a.items, b.items, pol)


def _union_parts(n: Node) -> tuple[Node, ...]:
    if isinstance(n, SetUnion) and not n.removed:
        out: list[Node] = []
        for p in n.parts:
            out.extend(_union_parts(p))
        return tuple(out)
    return (n,)


def _real_set(n: Node, pair_is_interval: bool) -> sympy.Set | None:
    """An interval, a union or a finite set whose ends and elements are real numbers, as a
    SymPy set; None for anything else (symbolic ends, percent or degree ends, tuples unless
    `pair_is_interval`)."""
    def number(e: Node) -> sympy.Basic | None:
        if not isinstance(e, Expr) or e.percent or e.degrees or e.value.free_symbols:
            return None
        v = e.value
        return v if v in (sympy.oo, -sympy.oo) or v.is_real else None

    if isinstance(n, Seq) and n.kind == "set":
        items = [number(i) for i in n.items]
        return None if any(i is None for i in items) else sympy.FiniteSet(*items)
    if isinstance(n, SetUnion):
        parts = [_real_set(p, True) for p in n.parts]
        removed = [_real_set(p, True) for p in n.removed]
        if any(p is None for p in parts + removed):
            return None
        return sympy.Complement(sympy.Union(*parts), sympy.Union(*removed)) if removed else sympy.Union(*parts)
    iv = n if isinstance(n, Interval) else (_as_interval(n) if pair_is_interval else None)
    if iv is None:
        return None
    lo, hi = number(iv.lo), number(iv.hi)
    if lo is None or hi is None:
        return None
    return sympy.Interval(lo, hi, iv.lo_open, iv.hi_open)


def _same_real_set(a: Node, b: Node) -> bool:
    """Whether two answers denote the same set of reals (`[0,2] ∪ [2,3]` = `[0,3]`)."""
    setlike = (Interval, SetUnion)
    pair = isinstance(a, setlike) or isinstance(b, setlike)
    try:
        sa, sb = _real_set(a, pair), _real_set(b, pair)
        if sa is None or sb is None:
            return False
        return sa == sb or sa.symmetric_difference(sb) is sympy.S.EmptySet
    except Exception:  # SymPy cannot decide the ends' order: not shown equal
        return False


def _solved_equal(rel: Relation, other: Expr, pol: Policy, rel_is_pred: bool) -> bool:
    """`xy = 6` against `6/x`: solve the equation for the one variable the other side
    lacks; equal when that gives exactly one solution and it equals the other side."""
    if rel.op != "=" or not isinstance(rel.lhs, Expr) or not isinstance(rel.rhs, Expr):
        return False
    d = sympy.Add(rel.lhs.value, sympy.Mul(-1, rel.rhs.value))
    missing = d.free_symbols - other.value.free_symbols
    if len(missing) != 1 or not guards.cheap_to_solve(d, next(iter(missing))):
        return False
    try:
        solutions = sympy.solve(d, next(iter(missing)))
    except Exception:
        return False
    if len(solutions) != 1:
        return False
    solved = Expr(solutions[0], str(solutions[0]), inexact=rel.lhs.inexact or rel.rhs.inexact)
    return scalar_equal(solved, other, pol) if rel_is_pred else scalar_equal(other, solved, pol)


def _relations_equal(a: Relation, b: Relation, pol: Policy) -> bool:
    if a.op == "=" and b.op == "=":
        if _is_name(a.lhs) and _is_name(b.lhs):
            return equal(a.rhs, b.rhs, pol)
        if all(isinstance(n, Expr) for n in (a.lhs, a.rhs, b.lhs, b.rhs)):
            d1 = sympy.Add(a.lhs.value, sympy.Mul(-1, a.rhs.value))
            d2 = sympy.Add(b.lhs.value, sympy.Mul(-1, b.rhs.value))
            return _proportional(d1, d2)
        return equal(a.lhs, b.lhs, pol) and equal(a.rhs, b.rhs, pol)
    flipped = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "!=": "!=", "=": "="}
    if a.op == b.op and equal(a.lhs, b.lhs, pol) and equal(a.rhs, b.rhs, pol):
        return True
    return flipped[a.op] == b.op and equal(a.lhs, b.rhs, pol) and equal(a.rhs, b.lhs, pol)


def equal(a: Node, b: Node, pol: Policy) -> bool:
    """Whether two parsed answers are equal under `pol` (rules in the module docstring)."""
    if forms_2_0() and _coordinate_name(a) and _coordinate_name(b) and _coordinate_name(a) != _coordinate_name(b):
        return False  # `y = 5` is not the line `x = 5` (other names may be renamed: `k = 3` = `n = 3`)
    a, b = _unwrap(a), _unwrap(b)
    if isinstance(a, Text) or isinstance(b, Text):
        ka, kb = _text_of(a, pol), _text_of(b, pol)
        return ka is not None and ka == kb and bool(ka)
    if isinstance(a, Expr) and isinstance(b, Expr):
        return scalar_equal(a, b, pol)
    if isinstance(a, Relation) and isinstance(b, Relation):
        return _relations_equal(a, b, pol)
    if isinstance(a, Relation) or isinstance(b, Relation):
        rel, other = (a, b) if isinstance(a, Relation) else (b, a)
        return isinstance(other, Expr) and _solved_equal(rel, other, pol, rel_is_pred=rel is a)
    ia, ib = _as_interval(a), _as_interval(b)
    if isinstance(a, Interval) or isinstance(b, Interval):
        if ia is not None and ib is not None and _intervals_equal(ia, ib, pol):
            return True
        return forms_2_0() and _same_real_set(a, b)
    if any(isinstance(n, SetUnion) and n.removed for n in (a, b)):
        return _same_real_set(a, b)  # a difference: only as sets of reals
    if isinstance(a, SetUnion) or isinstance(b, SetUnion):
        return _match_unordered(_union_parts(a), _union_parts(b), pol) or (forms_2_0() and _same_real_set(a, b))
    if isinstance(a, Seq) and isinstance(b, Seq):
        if _seq_equal(a, b, pol):
            return True
        if a.kind == b.kind == "set" and forms_2_0():
            return _same_real_set(a, b)  # `{1, 1, 3}` = `{1, 3}`
        if pol.brackets_matter and "list" in (a.kind, b.kind):
            return False
        return ia is not None and ib is not None and _intervals_equal(ia, ib, pol)
    return False


# ---------------------------------------------------------------- renaming

def free_symbols(n: Node) -> set[sympy.Symbol]:
    if isinstance(n, Expr):
        return set(n.value.free_symbols)
    if isinstance(n, Interval):
        return free_symbols(n.lo) | free_symbols(n.hi)
    if isinstance(n, (Seq, SetUnion)):
        out: set[sympy.Symbol] = set()
        for i in (n.items if isinstance(n, Seq) else n.parts + n.removed):
            out |= free_symbols(i)
        return out
    if isinstance(n, Relation):
        # `f(x) = …`, `(k, l) = …`: the names on the left are not free parameters.
        return free_symbols(n.rhs) | (set() if _is_name(n.lhs) else free_symbols(n.lhs))
    return set()


def _stands_alone(n: Node, sym: sympy.Symbol) -> bool:
    """Whether `sym` is by itself a value of `n` (then `x = y` vs `x = z` must not rename)."""
    if isinstance(n, Expr):
        return n.value == sym
    if isinstance(n, Interval):
        return _stands_alone(n.lo, sym) or _stands_alone(n.hi, sym)
    if isinstance(n, (Seq, SetUnion)):
        return any(_stands_alone(i, sym) for i in (n.items if isinstance(n, Seq) else n.parts))
    if isinstance(n, Relation):
        if _is_name(n.lhs):
            # In `f(x) = x` the x is bound by the left side: a rename is fine.
            bound = isinstance(n.lhs, Expr) and sym in n.lhs.value.free_symbols
            return not bound and _stands_alone(n.rhs, sym)
        return _stands_alone(n.rhs, sym) or _stands_alone(n.lhs, sym)
    return False


def rename(n: Node, mapping: dict) -> Node:
    """`n` with symbols replaced (`xreplace`, so nothing is evaluated)."""
    if isinstance(n, Expr):
        return replace(n, value=n.value.xreplace(mapping))
    if isinstance(n, Interval):
        return replace(n, lo=rename(n.lo, mapping), hi=rename(n.hi, mapping))
    if isinstance(n, Seq):
        return replace(n, items=tuple(rename(i, mapping) for i in n.items))
    if isinstance(n, SetUnion):
        return SetUnion(tuple(rename(i, mapping) for i in n.parts), tuple(rename(i, mapping) for i in n.removed))
    if isinstance(n, Relation):
        return replace(n, lhs=rename(n.lhs, mapping), rhs=rename(n.rhs, mapping))
    return n


def describe(n: Node) -> str:
    """What a parsed answer is, in a few words (for reasons): "a tuple of 2", "a number"."""
    n = _unwrap(n)
    if isinstance(n, Expr):
        return "an expression" if n.value.free_symbols else "a number"
    if isinstance(n, Text):
        return "text"
    if isinstance(n, Interval):
        return "an interval"
    if isinstance(n, SetUnion):
        return f"a union of {len(_union_parts(n))}"
    if isinstance(n, Relation):
        return "an equation" if n.op == "=" else "a relation"
    if _as_interval(n) is not None:
        return "a pair or interval"
    kind = {"list": "a list", "pm": "a list", "set": "a set", "tuple": "a tuple", "ordered": "a list"}[n.kind]
    return f"{kind} of {len(n.items)}"


def answers_equal(pred: Node, ref: Node, pol: Policy) -> tuple[bool, str]:
    """Top-level comparison: (equal?, a short why naming the rules that decided)."""
    token = _NOTES.set([])
    floor = _NO_FLOOR.set(pol.no_absolute_floor)
    try:
        ok, why = _answers_equal(pred, ref, pol)
        if not ok and pol.equation_value:
            ok, why = _stated_value_equal(pred, ref, pol, (ok, why))
        notes = _NOTES.get()
    finally:
        _NOTES.reset(token)
        _NO_FLOOR.reset(floor)
    return ok, why + (f"; {'; '.join(notes)}" if notes else "")


def _answers_equal(pred: Node, ref: Node, pol: Policy) -> tuple[bool, str]:
    if equal(pred, ref, pol):
        return True, f"equivalent ({describe(ref)})"
    sp, sr = free_symbols(pred), free_symbols(ref)
    only_p, only_r = sp - sr, sr - sp
    if len(only_p) == 1 and len(only_r) == 1 and not (
            _stands_alone(pred, next(iter(only_p))) or _stands_alone(ref, next(iter(only_r)))) and not (
            pol.rename_bound_only and not (_binds(pred, next(iter(only_p))) and _binds(ref, next(iter(only_r))))):
        mapping = {next(iter(only_p)): next(iter(only_r))}
        if equal(rename(pred, mapping), ref, pol):
            return True, f"equivalent after renaming {list(mapping)[0]} to {list(mapping.values())[0]}"
    dp, dr = describe(pred), describe(ref)
    return False, f"not equivalent ({dp} vs {dr})" if dp != dr else f"not equivalent (both {dp})"


# ---------------------------------------------------------------- math@3.0.0: stated values

def _binds(n: Node, sym: sympy.Symbol) -> bool:
    """Whether `n` is `f(sym) = …`: a function name binds `sym` (then renaming it is safe)."""
    return isinstance(n, Relation) and n.op == "=" and _is_name(n.lhs) and isinstance(n.lhs, Expr) \
        and not isinstance(n.lhs.value, sympy.Symbol) and sym in n.lhs.value.free_symbols


def _stated_value(n: Node) -> Node | None:
    """The value an equation states about a named or computed quantity: `\\log_2 8 = 3` → 3,
    `|AB| = 1` → 1, `10 \\cdot 6 = 60` → 60 (a computation must equal its result:
    `0 = 3` and `3 = 3` state nothing; `2x = 5` names no quantity); `AB = 4, CD = 5` → the
    tuple `4, 5`; else None."""
    if isinstance(n, Seq) and n.kind in ("list", "tuple") and len(n.items) >= 2:
        values = [_stated_value(i) for i in n.items]
        if all(isinstance(v, Expr) for v in values):
            return Seq(tuple(values), "tuple", "()")
        return None
    if not (isinstance(n, Relation) and n.op == "=" and isinstance(n.lhs, Expr) and isinstance(n.rhs, Expr)):
        return None
    lhs, rhs = n.lhs.value, n.rhs.value
    if rhs.free_symbols:
        return None
    if not lhs.free_symbols:
        if lhs.is_Atom:
            return None
        return n.rhs if scalar_equal(n.lhs, n.rhs, Policy()) else None
    return n.rhs if _names_a_quantity(lhs) else None


def _names_a_quantity(e: sympy.Basic) -> bool:
    """`p_F`, `f(3)`, `|AB|`, `AB`, `S:T` (S/T): a name for a quantity, whose stated value
    is the answer. Not `2x` or `x + 1`: `2x = 5` states x = 5/2, not 5."""
    if isinstance(e, (sympy.Symbol, sympy.core.function.AppliedUndef)):
        return True
    if isinstance(e, sympy.Abs):
        return _names_a_quantity(e.args[0])
    if isinstance(e, sympy.Pow):
        return e.exp == -1 and isinstance(e.base, sympy.Symbol)
    if isinstance(e, sympy.Mul):
        return all(isinstance(a, sympy.Symbol) or (isinstance(a, sympy.Pow) and a.exp == -1
                                                    and isinstance(a.base, sympy.Symbol)) for a in e.args)
    return False


def _stated_value_equal(pred: Node, ref: Node, pol: Policy, failed: tuple[bool, str]) -> tuple[bool, str]:
    """`LHS = value` on one side against a bare value (or values) on the other."""
    for side, other, name in ((pred, ref, "answer"), (ref, pred, "reference")):
        if isinstance(_unwrap_seq(other), Relation):
            continue
        if isinstance(other, Seq) and any(isinstance(i, Relation) for i in other.items):
            continue
        value = _stated_value(side)
        if value is None:
            continue
        if isinstance(value, Seq) and isinstance(other, Seq) and other.kind == "list":
            other = Seq(other.items, "tuple", "()")  # labelled values are in the order written
        ok, why = _answers_equal(value, other, pol) if side is pred else _answers_equal(other, value, pol)
        if ok:
            return True, f"{why}: the {name} states the value after its `=`"
    return failed


def _unwrap_seq(n: Node) -> Node:
    while isinstance(n, Seq) and len(n.items) == 1:
        n = n.items[0]
    return n

