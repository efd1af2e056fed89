"""An answer string → a small tree of values that `equivalence` compares.

The top level (lists, tuples, sets, intervals, unions, relations, matrices) is split
here, with brackets matched by depth, so that our policy decides what `(1, 2)` or
`1, 2` means; each leaf expression goes to latex2sympy2_extended, which builds an
*unevaluated* SymPy tree (nothing is simplified or computed on parse).

    Node = Expr | Text | Seq | Interval | SetUnion | Relation

`parse_answer` raises `guards.UnsafeInput` for input too risky to evaluate; any other
failure to read a leaf makes it a `Text`, compared as normalised words.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Union

import sympy
from latex2sympy2_extended import latex2sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig

from . import guards
from .extract import matching_brace
from .normalize import FONT_COMMAND, clean, forms_2_0, strip_conditions, strip_units, text_key, text_to_math

_CONVERSION = ConversionConfig(interpret_as_mixed_fractions=True, interpret_simple_eq_as_assignment=False,
                               interpret_contains_as_eq=True, lowercase_symbols=True)
MAX_PM = 3  # `\pm` signs expanded per element (2^3 variants)
MAX_ITEMS = 64  # elements in one list/set/tuple


@dataclass(frozen=True)
class Expr:
    """A number or symbolic expression.

    `decimals`: digits after the point when written as a plain decimal (`3.14` → 2),
    else None; `inexact`: a decimal literal occurs (tolerances apply); `percent` /
    `degrees`: written with `%` / `^\\circ` (equivalence decides what that means).
    """

    value: sympy.Basic
    src: str
    decimals: int | None = None
    inexact: bool = False
    percent: bool = False
    degrees: bool = False


@dataclass(frozen=True)
class Text:
    """An answer in words (or LaTeX we cannot read); compared by `text_key`."""

    key: str
    src: str


@dataclass(frozen=True)
class Seq:
    """Several values. `kind`: "list" (bare commas: order-free by policy), "tuple"
    (parentheses: ordered), "ordered" (square brackets, 3+ items), "set" (braces),
    "pm" (the variants of a `\\pm`). `brackets` keeps the delimiters (or a matrix vector's "row" / "col"), so a 2-item
    tuple can still be read as an interval."""

    items: tuple["Node", ...]
    kind: str
    brackets: str = ""


@dataclass(frozen=True)
class Interval:
    """A real interval; an infinite end is `oo` / `-oo` (and open)."""

    lo: Expr
    hi: Expr
    lo_open: bool
    hi_open: bool


@dataclass(frozen=True)
class SetUnion:
    """A union of intervals and finite sets (`\\cup`, or a condition like `x < 1 or x = 3`),
    less the sets in `removed` (`(0, 2) \\setminus \\{1\\}`, `\\mathbb{R} \\backslash \\{0\\}`)."""

    parts: tuple["Node", ...]
    removed: tuple["Node", ...] = ()


@dataclass(frozen=True)
class Relation:
    """`lhs op rhs` that is not read as a set: equations (`y = 2x + 1`), or relations
    between several variables. `op` is one of = < > <= >= !=."""

    op: str
    lhs: "Node"
    rhs: "Node"


Node = Union[Expr, Text, Seq, Interval, SetUnion, Relation]

_OPENERS = "([{"
_CLOSERS = ")]}"
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL = re.compile(r"-?(\d*)\.(\d+)")
_MIXED = re.compile(r"(-?)(\d+)\s+(\d+)\s*/\s*(\d+)")
_WORDY = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")
_FUNC_WORDS = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "exp", "arcsin", "arccos", "arctan",
               "sinh", "cosh", "tanh", "sqrt", "frac", "pi", "infty", "min", "max", "gcd", "lcm",
               "det", "mod", "pmod", "binom", "lceil", "rceil", "lfloor", "rfloor", "circ", "cdot",
               "times", "div", "text", "ldots", "alpha", "beta", "gamma", "delta", "theta", "lambda",
               "sigma", "omega", "mho", "ell", "cup", "cap", "leq", "geq", "neq", "approx"}
_TRIG = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![a-zA-Z])")
_REL_RE = re.compile(r"\\leq|\\geq|\\neq|<=|>=|!=|=|<|>|\\in(?![a-zA-Z])")
_REL_OPS = {"\\leq": "<=", "<=": "<=", "\\geq": ">=", ">=": ">=", "\\neq": "!=", "!=": "!=",
            "=": "=", "<": "<", ">": ">", "\\in": "in"}
_SEPARATORS = re.compile(r"\\text\{\s*,?\s*(?:and|or)\s*\}|(?<![A-Za-z\\])(?:and|or)(?![A-Za-z])|;")


# ---------------------------------------------------------------- bracket helpers

def _scan(s: str):
    """Yield (index, char, depth before char), treating `\\{ \\}` as brackets too."""
    depth = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] in "{}":
            c2 = s[i + 1]
            if c2 == "{":
                yield i, "\\{", depth
                depth += 1
            else:
                depth -= 1
                yield i, "\\}", depth
            i += 2
            continue
        if c in _OPENERS:
            yield i, c, depth
            depth += 1
        elif c in _CLOSERS:
            depth -= 1
            yield i, c, depth
        else:
            yield i, c, depth
        i += 1


def split_top(s: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside any brackets; `\\begin…\\end` blocks are kept whole."""
    if "\\begin" in s:
        return [s]
    parts, start = [], 0
    for i, c, depth in _scan(s):
        if depth == 0 and c == sep:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _enclosed(s: str) -> tuple[str, str, str] | None:
    """(open, inner, close) when one bracket pair encloses all of `s`, else None."""
    if not s:
        return None
    if s.startswith("\\{"):
        open_len = 2
    elif s[0] in _OPENERS:
        open_len = 1
    else:
        return None
    for i, c, depth in _scan(s):
        if c in (")", "]", "}", "\\}") and depth == 0:
            if i + len(c) == len(s):
                return s[:open_len], s[open_len:i], c
            return None
    return None


# Font commands that only style math (`\\mathbf{8}` is the number 8); `\\mathrm` is left to the
# unit and operator rules (`\\mathrm{cm}`), `\\text` and its friends to the word rules.
_MATH_FONT = re.compile(r"\\(?:mathbf|boldsymbol|bm|mathit|mathsf|mathnormal|pmb)\s*\{")
_ATOM = re.compile(r"[\w.]+")


def unwrap_math_fonts(s: str) -> str:
    """Drop a font command around math (math@2.1.0): `\\mathbf{8}` → `8`, `\\text{12}` → `12`,
    `\\boldsymbol{x+1}` → `(x+1)`. Unwrapped: any font around content with a digit and no
    letters, and a math font (`\\mathbf`, `\\boldsymbol`, ...) around content without a word
    of 3+ letters. Content with a comma is unwrapped only when the wrapper is the whole
    answer (`\\mathbf{1, 2}` → `1, 2`; inside more text its reading would change).
    Each wrapper is looked at once (linear in its depth); a string the guards would refuse
    as too long is returned as it is."""
    if len(s) > guards.MAX_ANSWER_CHARS:
        return s
    out: list[str] = []
    pos = 0
    for m in FONT_COMMAND.finditer(s):
        if m.start() < pos:
            continue  # inside a wrapper already handled
        close = matching_brace(s, m.end() - 1)
        if close is None:
            break
        raw = unwrap_math_fonts(s[m.end():close])
        inner = raw.strip()
        out.append(s[pos:m.start()])
        pos = close + 1
        whole = not s[:m.start()].strip() and not s[close + 1:].strip()
        listed = len(split_top(inner)) > 1
        words = _WORDY.search(inner) if _MATH_FONT.match(s, m.start()) else re.search(r"[A-Za-z]", inner)
        if words or not re.search(r"[0-9A-Za-z]", inner) or (listed and not whole):
            out.append(f"{m.group(0)}{raw}}}")  # kept: words, units, a list inside more
        elif listed or _ATOM.fullmatch(inner) or _enclosed(inner):
            out.append(inner)
        else:
            out.append(f"({inner})")  # it grouped: `2\\mathbf{x+1}` is 2(x+1)
    out.append(s[pos:])
    return "".join(out)


def _top_positions(s: str, token_re: re.Pattern) -> list[re.Match]:
    """Matches of `token_re` at bracket depth 0."""
    depth_at = {}
    for i, _, depth in _scan(s):
        depth_at[i] = depth
    return [m for m in token_re.finditer(s) if depth_at.get(m.start(), 1) == 0]


# ---------------------------------------------------------------- leaves

# `2.3148 \times 10^{-3}`, `1.2e5`: a decimal in scientific notation.
_SCI = re.compile(r"-?\d*\.(\d+)(?:\\times|\\cdot|\*|x)10\^\{?([-+]?\d+)\}?|-?\d*\.(\d+)[eE]([-+]?\d+)")


def _plain_decimals(src: str) -> int | None:
    """Decimal places as written (`2.50` → 2, `2.3148 \\times 10^{-3}` → 7), or None."""
    compact = src.replace(" ", "")
    m = _DECIMAL.fullmatch(compact)
    if m:
        return len(m.group(2))
    m = _SCI.fullmatch(compact) if forms_2_0() else None
    if m:
        digits, exp = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        places = len(digits) - int(exp)
        return places if places >= 1 else None
    return None


def _to_sympy(src: str) -> sympy.Basic:
    """latex2sympy on one leaf, guarded; raises on anything it cannot read."""
    guards.check_text(src)
    value = latex2sympy(text_to_math(src), normalization_config=None, conversion_config=_CONVERSION)
    if isinstance(value, (list, tuple)):
        raise ValueError("not a single expression")
    guards.check_expr(value)
    # `i` is the imaginary unit in an answer (`1+2i`); latex2sympy keeps it a symbol.
    i_sym = sympy.Symbol("i")
    if value.has(i_sym):
        value = value.xreplace({i_sym: sympy.I})
    return exact_decimals(value) if forms_2_0() else value


def exact_decimals(value: sympy.Basic) -> sympy.Basic:
    """Decimal literals as the exact rationals they write (`0.1` → 1/10, `1000000005.0` →
    1000000005): a decimal is compared as the number on the page, and tolerances are the
    policy's business (`Expr.inexact` remembers that a decimal was written)."""
    floats = value.atoms(sympy.Float)
    if not floats:
        return value
    return value.xreplace({f: sympy.Rational(str(f)) for f in floats if f.is_finite})


def parse_leaf(src: str) -> Node:
    """One value without top-level commas: a number/expression, or text."""
    s = strip_units(src.strip())
    percent = degrees = False
    if s.endswith("%"):
        percent, s = True, s[:-1].rstrip()
    if s.endswith("^{\\circ}") and not (forms_2_0() and _TRIG.search(s)):  # `\sin 60^\circ` is a value, not an angle
        degrees, s = True, s[: -len("^{\\circ}")].rstrip()
        s = strip_units(s)
    s = s.replace("^{\\circ}", "\\cdot\\frac{\\pi}{180}")  # degrees inside an expression
    mixed = _MIXED.fullmatch(s)
    if mixed:  # `1 1/2` is one and a half, not 1·1/2
        s = f"{mixed[1]}({mixed[2]}+\\frac{{{mixed[3]}}}{{{mixed[4]}}})"
    if not s:
        return Text(text_key(src), src)
    if s.startswith("\\text{") and s.endswith("}") and s.count("\\text{") == 1:
        return _text(s, src) if forms_2_0() else Text(text_key(s), src)
    words = [w for w in _WORDY.findall(text_to_math(s)) if w.lower() not in _FUNC_WORDS]
    if words:
        return _text(s, src) if forms_2_0() else Text(text_key(s), src)
    try:
        value = _to_sympy(s)
    except guards.UnsafeInput:
        raise
    except RecursionError:
        raise guards.UnsafeInput("answer nested too deeply for the parser") from None
    except Exception:
        return Text(text_key(s), src)
    return Expr(value, src, decimals=_plain_decimals(s), inexact=bool(re.search(r"\d\.\d|(?<!\d)\.\d", s)),
                percent=percent, degrees=degrees)


# Answers in words that name a set: compared as that set.
EMPTY_SET_WORDS = frozenset({"nosolution", "nosolutions", "norealsolution", "norealsolutions", "none",
                             "emptyset", "theemptyset", "thereisnosolution", "therearenosolutions", "noroots",
                             "norealroots"})
REAL_LINE_WORDS = frozenset({"allrealnumbers", "allreals", "allrealx", "allrealvaluesofx", "anyrealnumber",
                             "realnumbers", "allrealnumbersx", "xisanyrealnumber", "everyrealnumber"})


def _text(s: str, src: str) -> Node:
    """A text answer; `no solution` is the empty set and `all real numbers` the real line."""
    key = text_key(s)
    if key in EMPTY_SET_WORDS:
        return Seq((), "set")
    if key in REAL_LINE_WORDS:
        return Interval(Expr(-sympy.oo, "-oo"), Expr(sympy.oo, "oo"), True, True)
    return Text(key, src)


# ---------------------------------------------------------------- structure

def _relation_to_set(node_src: str) -> Node | None:
    """An inequality / `\\neq` / chain in one variable → its solution set, else None."""
    try:
        guards.check_text(node_src)
        rel = latex2sympy(text_to_math(node_src), normalization_config=None, conversion_config=_CONVERSION)
        guards.check_expr(rel)
    except guards.UnsafeInput:
        raise
    except Exception:
        return None
    if not isinstance(rel, (sympy.core.relational.Relational, sympy.And, sympy.Or)) or isinstance(rel, sympy.Eq):
        return None
    syms = rel.free_symbols
    if len(syms) != 1:
        return None
    (x,) = syms
    if not guards.cheap_to_solve(rel, x):
        return None
    real = sympy.Symbol(x.name, real=True)
    try:
        solution = rel.xreplace({x: real}).as_set()
    except Exception:
        return None
    return from_sympy_set(solution)


def from_sympy_set(st: sympy.Set) -> Node | None:
    """A SymPy Interval/FiniteSet/Union → our nodes (None for anything else)."""
    if isinstance(st, sympy.Interval):
        return Interval(Expr(st.start, str(st.start)), Expr(st.end, str(st.end)),
                        bool(st.left_open), bool(st.right_open))
    if st == sympy.S.Reals:
        return Interval(Expr(-sympy.oo, "-oo"), Expr(sympy.oo, "oo"), True, True)
    if isinstance(st, sympy.FiniteSet):
        return Seq(tuple(Expr(v, str(v)) for v in st.args), "set")
    if st == sympy.S.EmptySet:
        return Seq((), "set")
    if isinstance(st, sympy.Union):
        parts = [from_sympy_set(a) for a in st.args]
        if any(p is None for p in parts):
            return None
        return SetUnion(tuple(parts))
    return None


def _expand_pm(s: str) -> list[str]:
    """`3 \\pm 2` → [`3 + 2`, `3 - 2`] (each `\\pm`/`\\mp` a sign choice, at most MAX_PM)."""
    n = len(re.findall(r"\\(?:pm|mp)(?![a-zA-Z])", s))
    if n == 0 or n > MAX_PM:
        return [s]
    pieces = re.split(r"\\(?:pm|mp)(?![a-zA-Z])", s)
    kinds = re.findall(r"\\(pm|mp)(?![a-zA-Z])", s)
    out = []
    for signs in itertools.product((0, 1), repeat=n):
        acc = pieces[0]
        for k, (sign, kind) in enumerate(zip(signs, kinds)):
            plus = (sign == 0) == (kind == "pm")
            acc += ("+" if plus else "-") + pieces[k + 1]
        out.append(acc)
    return out


def _parse_matrix(s: str) -> Node | None:
    m = re.fullmatch(r"\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}", s, re.S)
    if not m:
        return None
    rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip()]
    grid = [[parse_element(c.strip()) for c in r.split("&")] for r in rows]
    if len(grid) == 1 or all(len(r) == 1 for r in grid):
        # A vector: no interval reading. Its orientation is kept, so a row vector is not its
        # transpose; a tuple `(1, 2)` (no orientation) matches either.
        shape = "row" if len(grid) == 1 and len(grid[0]) > 1 else "col" if len(grid) > 1 else ""
        shape = shape if forms_2_0() else ""
        return Seq(tuple(x for r in grid for x in r), "tuple", shape)
    return Seq(tuple(Seq(tuple(r), "tuple", "()") for r in grid), "tuple", "[]")


def _parse_cases(s: str) -> Node | None:
    m = re.fullmatch(r"\\begin\{cases\}(.*)\\end\{cases\}", s, re.S)
    if not m:
        return None
    rows = [r.split("&")[0].strip() for r in re.split(r"\\\\", m.group(1)) if r.strip()]
    return Seq(tuple(parse_element(r) for r in rows), "list")


_SETMINUS_RE = re.compile(r"\\(?:setminus|backslash)(?![a-zA-Z])")


def _union_members(n: Node) -> tuple[Node, ...]:
    return n.parts if isinstance(n, SetUnion) and not n.removed else (n,)


def parse_element(s: str) -> Node:
    """One comma-free (at top level) element: set, tuple, interval, union, relation or leaf."""
    s = s.strip()
    if not s:
        return Text("", "")
    guards.check_text(s)
    if s.startswith("\\begin"):
        node = _parse_matrix(s) or _parse_cases(s)
        if node is not None:
            return node
    # A set difference binds loosest: `A \\cup B \\setminus C` is (A ∪ B) less C.
    minus = _top_positions(s, _SETMINUS_RE) if forms_2_0() else None
    if minus:
        m = minus[-1]  # left-associative: `A \\setminus B \\setminus C` is (A less B) less C
        base, removed = parse_element(s[:m.start()]), parse_element(s[m.end():])
        parts = base.parts if isinstance(base, SetUnion) and not base.removed else (base,)
        return SetUnion(parts, _union_members(removed))
    # A union of intervals / sets.
    cups = _top_positions(s, re.compile(r"\\cup(?![a-zA-Z])"))
    if cups:
        bounds = [0] + [m.start() for m in cups] + [len(s)]
        chunks = [s[bounds[0]:bounds[1]]] + [s[m.end():bounds[k + 2]] for k, m in enumerate(cups)]
        return SetUnion(tuple(parse_element(c) for c in chunks))
    # Relations at the top level.
    rels = _top_positions(s, _REL_RE)
    if rels:
        return _parse_relation(s, rels)
    enc = _enclosed(s)
    if enc is not None:
        open_, inner, close = enc
        if open_ in ("[", "(") and inner.strip().startswith("\\begin") and forms_2_0():
            # `\left[\begin{array}{cc} … \end{array}\right]`: the brackets belong to the matrix
            return parse_element(inner)
        if open_ == "\\{" and not inner.strip():
            return Seq((), "set")
        if open_ == "\\{":
            builder = _top_positions(inner, re.compile(r"\|"))
            if builder:
                cond = inner[builder[0].end():]
                node = _relation_to_set(cond.strip())
                if node is not None:
                    return node
            return Seq(_parse_items(inner), "set")
        items = split_top(inner)
        if len(items) > 1:
            if open_ == "{":
                return Seq(_parse_items(inner), "set")
            kind = "tuple" if open_ == "(" else "ordered"
            raw = _parse_items(inner, flatten_pm=False)
            if any(isinstance(i, Seq) and i.kind == "pm" for i in raw):
                # `(\pm 1, 2)` stands for the tuples (1, 2) and (-1, 2).
                choices = [i.items if isinstance(i, Seq) and i.kind == "pm" else (i,) for i in raw]
                return Seq(tuple(Seq(c, kind, open_ + close) for c in itertools.product(*choices)), "pm")
            if len(raw) == 2 and (open_ + close) in ("(]", "[)") and all(isinstance(i, Expr) for i in raw):
                return Interval(raw[0], raw[1], open_ == "(", close == ")")
            # `(a, b)` and `[a, b]` stay sequences; equivalence may read them as intervals.
            return Seq(raw, kind, open_ + close)
        if open_ in ("{", "(") and not _REL_RE.search(inner):
            # `(A)`, `{5}`: the brackets only group.
            return parse_element(inner)
    pm = _expand_pm(s)
    if len(pm) > 1:
        return Seq(tuple(parse_element(v) for v in pm), "pm")
    return parse_leaf(s)


def _parse_relation(s: str, rels: list[re.Match]) -> Node:
    ops = [_REL_OPS[m.group(0)] for m in rels]
    if ops[0] == "in" and len(ops) == 1:
        return parse_element(s[rels[0].end():])
    if all(op == "=" for op in ops):
        lhs_src = s[:rels[0].start()].strip()
        rhs_src = s[rels[-1].end():].strip()
        # `a = b = c`: the first name and the last value (`= 5` alone: the value).
        if not lhs_src:
            return parse_element(rhs_src)
        return Relation("=", parse_element(lhs_src), parse_element(rhs_src))
    as_set = _relation_to_set(s)
    if as_set is not None:
        return as_set
    if len(ops) == 1:
        return Relation(ops[0], parse_element(s[:rels[0].start()]), parse_element(s[rels[0].end():]))
    return Text(text_key(s), s)


def _parse_items(inner: str, flatten_pm: bool = True) -> tuple[Node, ...]:
    """The comma-separated elements of `inner`; a `\\pm` element becomes its variants."""
    items = [p for p in split_top(inner) if p]
    if len(items) > MAX_ITEMS:
        raise guards.UnsafeInput(f"more than {MAX_ITEMS} elements in one list")
    out: list[Node] = []
    for p in items:
        node = parse_element(p)
        pm = isinstance(node, Seq) and node.kind == "pm"
        out.extend(node.items if pm and flatten_pm else [node])
    return tuple(out)


def parse_answer(raw: str) -> Node:
    """Parse a whole answer (already extracted from the completion)."""
    guards.check_text(raw)
    s = clean(raw)
    if "\\approx" in s:  # keep the exact form: `\frac{\sqrt3}{3} \approx 0.577`
        head = s.split("\\approx")[0].strip()
        s = head or s.split("\\approx")[-1].strip()
    s = strip_conditions(s)
    if not s:
        return Text("", raw)
    if _THOUSANDS.fullmatch(s):
        return parse_leaf(s.replace(",", ""))
    s = _SEPARATORS.sub(",", s)
    s = re.sub(r",\s*,", ",", s).strip(" ,")
    items = _parse_items(s)
    if len(items) == 1:
        return items[0]
    if any(isinstance(i, (Interval, SetUnion)) for i in items):
        # `x < -1 or x > 2`, `a \leq -2 or a = 1` (split on "or"): a union of solution sets.
        parts = [Seq((i.rhs,), "set") if isinstance(i, Relation) and i.op == "=" and isinstance(i.rhs, Expr)
                 and isinstance(i.lhs, Expr) and isinstance(i.lhs.value, sympy.Symbol) else i for i in items]
        if all(isinstance(i, (Interval, SetUnion)) or (isinstance(i, Seq) and i.kind == "set") for i in parts):
            return SetUnion(tuple(parts))
    return Seq(items, "list")
