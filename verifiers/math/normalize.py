"""String clean-up of an answer before it is parsed: pure functions, no SymPy.

`clean` removes LaTeX that carries no mathematical meaning (spacing, `\\left`, font
commands, `$`), unifies synonyms (`\\dfrac` → `\\frac`, `≤` → `\\leq`, `\\leqslant` → `\\leq`)
and repairs what model outputs and datasets commonly break (`\\sqrt3`, `\\frac12`, a
`\\f` that a JSON round trip turned into a form feed). It keeps the structure: commas,
brackets, relations, `%` and `^{\\circ}` are decided later by `parse`.

`strip_units` and `strip_conditions` drop trailing words that qualify a value
("5 cm", "12th day", "… for some integer t"): a policy, documented on each.
"""
from __future__ import annotations

import contextlib
import contextvars
import re

# math@1.0.0 read fewer answer forms than 2.0.0 (verifier.MathRules.forms_2_0): `²`, thin
# spaces, `\sqrt{3+2\sqrt2}`, the units m g s h (here); `\setminus`, `\left[\begin{array}`,
# matrix orientation, `\tan 60^\circ`, decimals as exact rationals, answers in words that
# name a set (parse.py); sets of reals, systems of assignments (equivalence.py).
_FORMS_2_0: contextvars.ContextVar[bool] = contextvars.ContextVar("math_forms_2_0", default=True)


def forms_2_0() -> bool:
    """Whether the answer forms math@2.0.0 added are read (see `reading_forms_2_0`)."""
    return _FORMS_2_0.get()


@contextlib.contextmanager
def reading_forms_2_0(on: bool):
    """Within the block, read (on) or not (off: math@1.0.0) the forms 2.0.0 added."""
    token = _FORMS_2_0.set(on)
    try:
        yield
    finally:
        _FORMS_2_0.reset(token)

# Control characters a non-raw Python/JSON string makes of LaTeX commands:
# "\frac" -> form feed + "rac", "\boxed" -> backspace + "oxed", "\vec" -> VT + "ec".
_CONTROL_REPAIRS = {"\x0c": "\\f", "\x08": "\\b", "\x07": "\\a", "\x0b": "\\v"}
# "\t", "\n", "\r" are also real whitespace: only repaired in front of a command's tail.
_TAB_COMMANDS = re.compile(r"\t(?=(?:ext|imes|heta|frac|an|au|o\b|riangle|ilde|extbf)\w*)")
_NEWLINE_COMMANDS = re.compile(r"\n(?=(?:eq|e\b|u\b|abla|ot|mid|eg|leq|geq|ewline)\w*)")
_RETURN_COMMANDS = re.compile(r"\r(?=(?:ight|angle|floor|ceil|ho\b|brace|brack)\w*)")

_UNICODE = [
    ("−", "-"), ("–", "-"), ("—", "-"), ("≤", r"\leq "), ("⩽", r"\leq "), ("≥", r"\geq "),
    ("⩾", r"\geq "), ("≠", r"\neq "), ("＞", ">"), ("＜", "<"), ("＝", "="), ("×", r"\times "),
    ("·", r"\cdot "), ("⋅", r"\cdot "), ("π", r"\pi "), ("∞", r"\infty "), ("∪", r"\cup "),
    ("∩", r"\cap "), ("√", r"\sqrt"), ("°", r"^{\circ}"), ("∈", r"\in "), ("±", r"\pm "),
    ("∓", r"\mp "), ("，", ","), ("：", ":"), ("（", "("), ("）", ")"), ("∅", r"\emptyset "),
    ("≈", r"\approx "), ("∀", r"\forall "), ("θ", r"\theta "), ("α", r"\alpha "),
    ("β", r"\beta "), ("\u00a0", " "),
]
_UNICODE_2_0 = [("²", "^2"), ("³", "^3"), ("\u202f", " "), ("\u2009", " ")]
_SYNONYMS = [
    (re.compile(r"\\(?:d|t|c)frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\(?:d|t)binom(?![a-zA-Z])"), r"\\binom"),
    (re.compile(r"\\(?:leqslant|leqq|le)(?![a-zA-Z])"), r"\\leq "),
    (re.compile(r"\\(?:geqslant|geqq|ge)(?![a-zA-Z])"), r"\\geq "),
    (re.compile(r"\\(?:ne|not=)(?![a-zA-Z])"), r"\\neq "),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<"),
    (re.compile(r"\\gt(?![a-zA-Z])"), ">"),
    (re.compile(r"\\(?:lbrace)(?![a-zA-Z])"), r"\\{"),
    (re.compile(r"\\(?:rbrace)(?![a-zA-Z])"), r"\\}"),
    (re.compile(r"\\(?:lbrack)(?![a-zA-Z])"), "["),
    (re.compile(r"\\(?:rbrack)(?![a-zA-Z])"), "]"),
    (re.compile(r"\\langle(?![a-zA-Z])"), "("),
    (re.compile(r"\\rangle(?![a-zA-Z])"), ")"),
    (re.compile(r"\\(?:varnothing|emptyset)(?![a-zA-Z])"), r"\\{\\}"),
    (re.compile(r"\\mathbb\s*\{?R\}?|\\R(?![a-zA-Z])"), r"(-\\infty, \\infty)"),
    (re.compile(r"\\(?:dots|ldots|cdots)(?![a-zA-Z])"), r"\\ldots "),
    (re.compile(r"\\(?:degree|textdegree)(?![a-zA-Z])"), r"^{\\circ}"),
    (re.compile(r"\^\s*\{?\s*\\circ\s*\}?"), r"^{\\circ}"),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\(?:mid|vert)(?![a-zA-Z])"), "|"),
    (re.compile(r"\\colon(?![a-zA-Z])"), ":"),
    (re.compile(r"\\(?:cupdot|sqcup)(?![a-zA-Z])"), r"\\cupdot "),  # not a union we accept
    (re.compile(r"<sup>(.*?)</sup>"), r"^{\1}"),
    (re.compile(r"<sub>(.*?)</sub>"), r"_{\1}"),
]
# Sizing and spacing commands: no meaning.
_SIZING = re.compile(r"\\(?:left|right|middle|bigg|Bigg|big|Big)[lr]?(?![a-zA-Z])\s*\.?")
# Digit groups joined by a thin space or a braced comma: `1\,000`, `11,\!111`, `1{,}000`.
_THOUSANDS_THIN = re.compile(r"(?<=\d)(?:,\\!|\\,|\\!|\{,\})\s*(?=\d{3}(?!\d))")
_SPACES = re.compile(r"\\(?:quad|qquad|enspace|thinspace|medspace|thickspace|displaystyle|textstyle"
                     r"|limits|nolimits)(?![a-zA-Z])|\\hspace\*?\{[^{}]*\}|(?<!\\)\\[,;:! ]|~")
FONT_COMMAND = re.compile(r"\\(?:textbf|textit|textrm|textnormal|textsf|texttt|mathrm|mathbf|mathit|mathsf"
                   r"|mathtt|mathcal|mathbb|boldsymbol|bm|mbox|hbox|operatorname|text)\s*\{")
_SCI = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([+-]?\d+)(?![\w.])")
_BARE_FUNCS = re.compile(r"(?<![\\a-zA-Z])(arcsin|arccos|arctan|sinh|cosh|tanh|sin|cos|tan|cot|sec|csc"
                         r"|ln|log|exp)(?![a-zA-Z])")
_DOUBLE_BACKSLASH_CMD = re.compile(r"\\\\(?=[a-zA-Z])")
_SUB_BRACE = re.compile(r"_\{(\w)\}")
_WS = re.compile(r"\s+")
_REPEATING = re.compile(r"(\d*)\.(\d*)\\(?:overline|bar|dot)\{(\d+)\}")
_DOUBLE_ESCAPED = re.compile(r"(?<!\\)\\\\(?:begin|frac|sqrt|dfrac|text|left)(?![a-zA-Z])")
_STRAY_DOT = re.compile(r"(?<=[^\d\s.])\s*\.\s*(?=[\]\)])")
_DANGLING = re.compile(r"(?:\^|_)\s*$")


def _repeating_to_frac(m: re.Match) -> str:
    """`0.1\\overline{6}` → `\\frac{15}{90}`: a repeating decimal as its exact fraction."""
    whole, fixed, rep = m.group(1) or "0", m.group(2), m.group(3)
    num = int(whole + fixed + rep) - int(whole + fixed)
    den = int("9" * len(rep) + "0" * len(fixed))
    return f"\\frac{{{num}}}{{{den}}}"


def repair_escapes(s: str) -> str:
    """Undo control characters that stand for a lost backslash (`\\x0c` + "rac" → `\\frac`)."""
    for bad, good in _CONTROL_REPAIRS.items():
        s = s.replace(bad, good)
    s = _TAB_COMMANDS.sub(r"\\t", s)
    s = _RETURN_COMMANDS.sub(r"\\r", s)
    return _NEWLINE_COMMANDS.sub(r"\\n", s)


def _unwrap_font(s: str) -> str:
    """`\\text{…}`, `\\mathrm{…}` and friends → `\\text{…}`, one spelling for the later rules."""
    out = []
    pos = 0
    for m in FONT_COMMAND.finditer(s):
        if m.start() < pos:
            continue
        out.append(s[pos:m.start()])
        out.append("\\text{")
        pos = m.end()
    out.append(s[pos:])
    return "".join(out)


def _brace_args(s: str, cmd: str, nargs: int) -> str:
    """Give `cmd`'s first `nargs` arguments braces: `\\frac12` → `\\frac{1}{2}`, `\\sqrt3` → `\\sqrt{3}`."""
    out = []
    i = 0
    n = len(s)
    while True:
        j = s.find(cmd, i)
        if j < 0 or (j + len(cmd) < n and s[j + len(cmd)].isalpha()):
            if j < 0:
                out.append(s[i:])
                break
            out.append(s[i:j + len(cmd)])
            i = j + len(cmd)
            continue
        out.append(s[i:j + len(cmd)])
        k = j + len(cmd)
        if cmd == "\\sqrt" and k < n and s[k] == "[":
            close = s.find("]", k)
            if close < 0:
                out.append(s[k:])
                break
            out.append(s[k:close + 1])
            k = close + 1
        for _ in range(nargs):
            while k < n and s[k] == " ":
                k += 1
            if k >= n:
                break
            if s[k] == "{":
                depth = 0
                start = k
                while k < n:
                    depth += s[k] == "{"
                    depth -= s[k] == "}"
                    k += 1
                    if depth == 0:
                        break
                # `\sqrt{3+2\sqrt2}`: the argument may hold the same command unbraced
                nested = depth == 0 and forms_2_0()
                out.append("{" + _brace_args(s[start + 1:k - 1], cmd, nargs) + "}" if nested else s[start:k])
            elif s[k] == "\\":
                m = re.match(r"\\[a-zA-Z]+", s[k:])
                tok = m.group(0) if m else s[k:k + 2]
                out.append("{" + tok + "}")
                k += len(tok)
            else:
                out.append("{" + s[k] + "}")
                k += 1
        i = k
    return "".join(out)


def _brace_paren_exponents(s: str) -> str:
    """`2^(n+1)` → `2^{(n+1)}`: plain-text exponents in parentheses mean the whole group."""
    out = []
    i = 0
    while True:
        j = s.find("^", i)
        if j < 0:
            out.append(s[i:])
            return "".join(out)
        k = j + 1
        while k < len(s) and s[k] == " ":
            k += 1
        out.append(s[i:j + 1])
        if k < len(s) and s[k] == "(":
            depth = 0
            for end in range(k, len(s)):
                depth += {"(": 1, ")": -1}.get(s[end], 0)
                if depth == 0:
                    break
            if depth == 0:
                out.append("{(" + _brace_paren_exponents(s[k + 1:end]) + ")}")
                i = end + 1
                continue
        i = j + 1


def clean(s: str) -> str:
    """The answer with meaningless LaTeX removed and synonyms unified (see module docstring)."""
    s = repair_escapes(s)
    if _DOUBLE_ESCAPED.search(s):  # the whole answer was escaped twice: `\\frac`, `\\begin`
        s = s.replace("\\\\", "\\")
    if not re.search(r"\\begin\{(?:[pbvB]?matrix|cases|array)", s):
        s = _DOUBLE_BACKSLASH_CMD.sub(r"\\", s)
    for bad, good in _UNICODE + _UNICODE_2_0 if forms_2_0() else _UNICODE:
        s = s.replace(bad, good)
    s = s.replace("\\$", "").replace("$", "")  # math delimiters and currency alike
    s = _SIZING.sub("", s)
    s = _THOUSANDS_THIN.sub("", s)
    s = _SPACES.sub(" ", s)
    for rx, rep in _SYNONYMS:
        s = rx.sub(rep, s)
    s = _unwrap_font(s)
    s = _SCI.sub(r"\1\\times 10^{\2}", s)
    s = _REPEATING.sub(_repeating_to_frac, s)
    s = _SUB_BRACE.sub(r"_\1", s)
    s = _brace_paren_exponents(s)
    s = _brace_args(s, "\\frac", 2)
    s = _brace_args(s, "\\sqrt", 1)
    s = _WS.sub(" ", s).strip()
    s = _STRAY_DOT.sub("", s)  # `(a, \sqrt{2}.]`: a full stop is not part of the interval
    s = _DANGLING.sub("", s).rstrip("\\").rstrip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    return s


def text_to_math(s: str) -> str:
    """Remove `\\text{…}` wrappers (keeping the words) and add the backslash to bare
    function names (`sin(x)` → `\\sin(x)`), for the parser."""
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    return _BARE_FUNCS.sub(r"\\\1", s)


def text_key(s: str) -> str:
    """A comparison key for text answers: lower case, font commands, braces and spaces
    dropped, outer brackets and end punctuation stripped; operators and other commands
    kept (`x > 3` and `x < 3` stay different)."""
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s).lower()
    s = re.sub(r"[{}$\s]+", "", s)
    return s.strip(".,;:!?()[]")


# A condition after the value: "… for some integer t", "…, where c > 0", "… (n ≥ 1)".
_CONDITION = re.compile(r"(?:,\s*)?(?:\\text\{\s*(?:for|where|if|when|with)\b"
                        r"|\b(?:for\s+(?:all|any|some|every|each)|where)\b|\\forall\b).*$", re.I)


def strip_conditions(s: str) -> str:
    """Drop a trailing qualifying clause ("… for some integer t", "…, where c > 0").

    Policy: the value before the clause is what is compared; the clause is not checked.
    The text is kept when nothing would remain.
    """
    m = _CONDITION.search(s)
    if m and m.start() > 0:
        head = s[:m.start()].rstrip(" ,;")
        if head:
            return head
    return s


# Units and counted nouns after a number: any word of 3+ letters, or these short units.
_SHORT_UNITS = ("cm", "mm", "km", "kg", "mg", "ml", "ft", "yd", "mi", "lb", "oz", "hr", "hrs", "min",
                "mph", "kmh", "rs", "sq", "cc", "am", "pm", "th", "st", "nd", "rd", "m", "g", "s", "h")
_SHORT_UNITS_1_0 = _SHORT_UNITS[:-4]  # math@1.0.0: not m, g, s, h


def _unit_word(short: tuple[str, ...]) -> str:
    return rf"(?:[A-Za-z]{{3,}}|(?:{'|'.join(short)})\b)[A-Za-z.']*"


_UNIT_WORD = _unit_word(_SHORT_UNITS)
_POWER = r"(?:\s*(?:\^\{?\d\}?|[²³]))?"
# `… \text{ cm}^2` after any value (`24\pi \text{ cm}^2`); a bare word only after a number,
# a brace or a bracket, with a space (`10 square units`, not the product `2x`).
_TEXT_UNIT_TAIL = re.compile(rf"\s*\\text\{{[^{{}}]*\}}{_POWER}\s*$")
_WORD_UNIT_TAIL = re.compile(rf"(?<=[\d}}%)])\s+{_UNIT_WORD}(?:\s+[A-Za-z.']+){{0,3}}{_POWER}\s*$")
_WORD_UNIT_TAIL_1_0 = re.compile(rf"(?<=[\d}}%)])\s+{_unit_word(_SHORT_UNITS_1_0)}(?:\s+[A-Za-z.']+){{0,3}}{_POWER}\s*$")
_ORDINAL = re.compile(r"(?<=\d)\s*(?:\^\{?\\text\{(?:st|nd|rd|th)\}\}?|\^\{?(?:st|nd|rd|th)\}?|(?:st|nd|rd|th)\b)")


def strip_units(s: str) -> str:
    """Drop units and counted nouns after a value: `5 \\text{ cm}^2`, `10 square units`,
    `12^{\\text{th}}`, `15th Day` → the value.

    Policy: the unit is not compared (`5 cm` equals `5 m`); a unit glued to a number
    without a space (`10cm`) is left for the parser, which reads it as a product.
    The text is kept when nothing would remain.
    """
    s = _ORDINAL.sub("", s)
    for _ in range(2):
        m = _TEXT_UNIT_TAIL.search(s) or (_WORD_UNIT_TAIL if forms_2_0() else _WORD_UNIT_TAIL_1_0).search(s)
        if not m:
            break
        head = s[:m.start()].rstrip()
        if not head or re.search(r"[-+*/=^_,(\[{<>]$|\\(?:cdot|times)$", head):
            break  # nothing, or an unfinished expression, before it: not a unit
        s = head
    return s


# `1,22`, `-3,5`: one comma between digits that is not a thousands separator (not followed by
# exactly three digits), nothing else but units or currency around it.
_DECIMAL_COMMA = re.compile(r"-?\d+,(?:\d{1,2}|\d{4,})")


def decimal_comma_number(s: str) -> str | None:
    """`s` with its decimal comma as a point (`2,74 $` → `2.74`) when `s` is one number
    written with a decimal comma, else None. Whether to read it so is the verifier's
    `decimal_comma` policy; this only recognises the form."""
    t = strip_units(clean(s)).strip()
    return t.replace(",", ".") if _DECIMAL_COMMA.fullmatch(t) else None
