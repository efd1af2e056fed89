"""Multiple choice (math@3.0.0): options from the question, the letter an answer names.

- `options(question)`: the lettered options a question lists, `{"A": "1/4", …}`, one per
  line (`A: 1/4`, `A. 1/4`, `(A) 1/4`, `A) 1/4`) or inline AMC style
  (`$\\textbf{(A) } 1/4 \\qquad \\textbf{(B) } …$`); letters must run A, B, C… in order, at
  least two. Empty when the question lists none: then a letter is only text.
- `text_after_letter(answer)`: the option text an answer writes after its letter (the
  verifier rejects `(D) 1/4` when 1/4 is another option's text: two options named).
- `letter_of(answer)`: the one letter an answer names, `Choice_C`, `choice (C)`, `(D) a
  non-horizontal line`, `\\text{(B)}`, `B: 2/3`, `Option B`, `B`; None when it names none
  or several (`A and C`).

Pure string work, linear.
"""
from __future__ import annotations

import re

from .normalize import FONT_COMMAND

LETTERS = "ABCDEFGH"
_LINE_OPTION_RE = re.compile(r"^[ \t]*(?:\*\*)?\(?([A-H])(?:\)|:|\.|\))(?:\*\*)?[ \t]+(\S[^\n]*)$", re.M)
_INLINE_OPTION_RE = re.compile(r"\(([A-H])\)")
_CHOICE_WORD_RE = re.compile(r"(?<![A-Za-z])(?:choice|option|answer)[ \t]*(?:\\?_|[ \t])*\(?([A-H])\)?(?![A-Za-z])",
                             re.I)
_LOWER_LETTER_RE = re.compile(r"\(?([a-h])\)?")
_LEAD_LETTER_RE = re.compile(r"^\(?([A-H])\)?(?:$|[ \t]*[:.)\-][ \t]*|[ \t]+)")


def options(question: str | None) -> dict[str, str]:
    """The lettered options of `question` (see module docstring)."""
    if not question:
        return {}
    found = {m.group(1): m.group(2).strip() for m in _LINE_OPTION_RE.finditer(question)}
    if _runs(found):
        return found
    inline = list(_INLINE_OPTION_RE.finditer(question))
    out: dict[str, str] = {}
    for k, m in enumerate(inline):
        end = inline[k + 1].start() if k + 1 < len(inline) else len(question)
        text = question[m.end():end].lstrip("}").replace("\\ ", " ")
        text = re.sub(r"\\q?quad(?![A-Za-z])|\\(?:textbf|mathrm|text)\s*\{\s*$|\$", " ", text)
        out.setdefault(m.group(1), " ".join(text.split()).strip(" ,;."))
    return out if _runs(out) else {}


_LETTER_ONLY_RE = re.compile(r"\b(?:type|enter|write|give|put)\b[^.\n]{0,40}\bletters?\b", re.I)


def letter_required(question: str | None) -> bool:
    """Whether the question asks for the option's letter ("Type the letter of the correct
    option"): then an option's text is not the answer asked for."""
    return bool(question and _LETTER_ONLY_RE.search(question))


def _runs(found: dict[str, str]) -> bool:
    letters = "".join(sorted(found))
    return len(letters) >= 2 and LETTERS.startswith(letters) and all(found.values())


def _plain(s: str) -> str:
    """`s` without font commands, `$` and markdown, braces kept balanced."""
    s = s.replace("$", " ").replace("**", " ")
    for _ in range(3):
        m = FONT_COMMAND.search(s)
        if not m:
            break
        depth, j = 1, m.end()
        while j < len(s) and depth:
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            j += 1
        s = s[:m.start()] + s[m.end():j - 1] + s[j:]
    return " ".join(s.split()).strip()


_DOUBT_RE = re.compile(r"\?[ \t.)}]*$|(?<![A-Za-z])(?i:not|except|but)[ \t]+(?:(?i:option|choice)[ \t_]*)?\(?[A-H]\)?"
                       r"(?![A-Za-z])|(?<![A-Za-z])\(?[A-H]\)?[ \t]+(?i:is|was)[ \t]+(?i:wrong|incorrect|false|not)(?![A-Za-z])")


def doubts(answer: str) -> bool:
    """Whether an answer questions or negates the letter it names (ends in `?`, `Option D
    is wrong`, `not A`): then naming it is no choice of it (unless those words are the
    option's own text, which the caller checks). A note elsewhere ("this is not a complete
    answer") is not a doubt about the letter."""
    return bool(_DOUBT_RE.search(_plain(answer)))


def text_after_letter(answer: str) -> str:
    """What an answer writes after the letter it leads with (`(D) 1/4` → `1/4`, `D: 2/3` →
    `2/3`); "" when it does not lead with a letter or writes nothing after it."""
    s = _plain(answer)
    m = _LEAD_LETTER_RE.match(s)
    if not m or not (s.startswith("(") or re.match(r"^[A-H][ \t]*[:.)\-]", s)):
        return ""
    return s[m.end():].strip()


def letter_of(answer: str) -> str | None:
    """The one option letter `answer` names, or None (see module docstring)."""
    s = _plain(answer)
    lower = _LOWER_LETTER_RE.fullmatch(s)
    if lower:  # `d`, `(d)`: a lower-case letter alone names the option
        return lower.group(1).upper()
    named = {m.group(1).upper() for m in _CHOICE_WORD_RE.finditer(s)}
    if len(named) == 1:
        return named.pop()
    if named:
        return None
    m = _LEAD_LETTER_RE.match(s)
    if not m:
        return None
    rest = s[m.end():]
    # `B` alone, `(B) text`, `B: text`; not `A + B`, `B and C`, `A = 3`.
    if rest and (re.match(r"^[+\-*/=^_,]", rest) or re.search(r"(?<![A-Za-z])(?:and|or)\s+\(?[A-H]\)?(?![A-Za-z])", rest)):
        return None
    if rest and not (s.startswith("(") or re.match(r"^[A-H][ \t]*[:.)\-]", s)):
        return None  # `B 2` is not a choice
    return m.group(1)
