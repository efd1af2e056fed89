"""Finding the final answer in a completion, and unwrapping a reference.

`extract_answer` tries, in order, and the first rule that finds something wins:

1. the last complete `\\boxed{…}` / `\\fbox{…}` (nested braces; `\\boxed 5` too);
2. the last `<answer>…</answer>` block (its content goes through rules 3–5);
3. "the (final) answer is …" / "final answer: …" (the rest of that sentence);
4. a *bare answer*: the whole completion when it is one short line that is not prose
   (a trainer that asks for the answer alone gets `-7, -1, 1, 7` or `x = 3`);
5. the last number in the text.

It returns None when nothing is found; the verifier then abstains. Pure string work:
linear scans and bounded regexes, no SymPy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# A bare answer longer than this is more likely reasoning than an answer.
BARE_ANSWER_MAX_CHARS = 200

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
# "The final answer is $x$." / "Final Answer: 5" / "answer: 5"; `**` markdown allowed.
_PHRASE_RE = re.compile(
    r"(?<![A-Za-z])(?:the\s+)?(?:final\s+)?answer\s*(?:is\b|:)\s*(?:\*\*)?\s*:?\s*", re.I)
# Numbers: 1,000 · -3.5 · .5 · 3/4 (thousands groups only with exactly three digits).
_NUMBER_RE = re.compile(r"(?<![\w.])-?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:/\d+)?(?![\w])")
# Boxes / answer phrases tried from the end before giving up (each try may scan far).
MAX_BOX_TRIES = 8
# Prose, not an answer: three plain words in a row, or four words of 2+ letters, outside
# \text{} ("and"/"or" do not count: `1 and 3` is an answer).
_PROSE_RE = re.compile(r"(?<![\\\w])[A-Za-z][a-z']*\s+[A-Za-z][a-z']*\s+[A-Za-z][a-z']*\b")
_WORD_RE = re.compile(r"(?<![\\\w])(?!(?:and|or)\b)[A-Za-z][a-z']+\b")
PROSE_MIN_WORDS = 4
# Function words that mark a line as a sentence about a number ("it is 0.5"), not an answer.
_SENTENCE_WORDS = frozenset({"is", "are", "was", "were", "it", "its", "the", "so", "thus", "hence", "therefore",
                             "we", "get", "gives", "equals", "answer", "result", "be"})
_TEXT_CMD_RE = re.compile(r"\\(?:text|mbox|textbf|mathrm|textrm|mathbf)\s*\{[^{}]*\}")


@dataclass(frozen=True)
class Extraction:
    """An extracted answer: its `text` and the rule (`method`) that found it."""

    text: str
    method: str  # "boxed" | "answer_tag" | "phrase" | "bare" | "last_number"


def _matching_brace(text: str, open_pos: int) -> int | None:
    """Index of the `}` closing the `{` at `open_pos` (escaped braces skipped), or None."""
    depth = 0
    i = open_pos
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2  # `\{` and `\}` are set braces, not grouping
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{…}` or `\\fbox{…}` in `text`, or None.

    A last box that never closes (the completion was cut) counts when what follows it is
    one short line, `\\boxed{\\frac{1}{2}` → `\\frac{1}{2}`; otherwise earlier boxes are tried.
    `\\boxed 5` (no braces) takes the next token.
    """
    boxes = list(_BOX_RE.finditer(text))
    for k, m in enumerate(reversed(boxes[-MAX_BOX_TRIES:])):
        j = m.end()
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            end = _matching_brace(text, j)
            if end is not None:
                return text[j + 1:end].strip()
            tail = text[j + 1:].strip()
            if k == 0 and "\n" not in tail and len(tail) <= BARE_ANSWER_MAX_CHARS:
                return tail  # the completion stops right where the box should close
        elif m.end() < len(text) and text[m.end()] == " ":
            tok = re.match(r"\s*([^\s$]+)", text[m.end():])
            if tok:
                return tok.group(1)
    return None


def _last_answer_tag(text: str) -> str | None:
    """Content of the last `<answer>…</answer>` (case-insensitive), found from the end in
    linear time (a regex over many unclosed tags is quadratic)."""
    lower = text.lower()
    close = lower.rfind("</answer>")
    if close < 0:
        return None
    open_ = lower.rfind("<answer>", 0, close)
    return None if open_ < 0 else text[open_ + len("<answer>"):close]


def _strip_wrappers(s: str) -> str:
    """Drop surrounding markdown bold, math delimiters and a final full stop."""
    s = s.strip()
    for _ in range(3):
        before = s
        s = s.strip().strip("*").strip()
        if s.endswith(".") and not s.endswith(".."):
            s = s[:-1].rstrip()
        for open_, close in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
            if s.startswith(open_) and s.endswith(close) and len(s) >= len(open_) + len(close):
                s = s[len(open_):len(s) - len(close)].strip()
        if s == before:
            break
    return s


def _phrase(text: str) -> str | None:
    """The rest of the sentence after the last "answer is" / "answer:"."""
    matches = list(_PHRASE_RE.finditer(text))
    for m in reversed(matches[-MAX_BOX_TRIES:]):
        eol = text.find("\n", m.end())
        line = text[m.end():eol if eol >= 0 else len(text)]
        # A sentence ends at ". " + capital or at the line end; decimals like 3.5 stay.
        stop = re.search(r"\.\s+(?=[A-Z])", line)
        if stop:
            line = line[:stop.start()]
        line = _strip_wrappers(line)
        if line:
            return line
    return None


def _bare(text: str) -> str | None:
    """The whole text, when it is a single short line that reads as an answer."""
    s = _strip_wrappers(text)
    if not s or "\n" in s or len(s) > BARE_ANSWER_MAX_CHARS:
        return None
    math_part = _TEXT_CMD_RE.sub(" ", s)
    if _PROSE_RE.search(math_part) or len(_WORD_RE.findall(math_part)) >= PROSE_MIN_WORDS:
        return None
    words = {w.lower() for w in _WORD_RE.findall(math_part)}
    if words & _SENTENCE_WORDS and _NUMBER_RE.search(math_part):
        return None  # a sentence around a number: the last-number rule takes it
    return s


def _last_number(text: str) -> str | None:
    last = None
    for last in _NUMBER_RE.finditer(text):
        pass
    return last.group(0) if last else None


def extract_answer(completion: str) -> Extraction | None:
    """The final answer of `completion` (rules in the module docstring), or None."""
    boxed = last_boxed(completion)
    if boxed:
        return Extraction(boxed, "boxed")
    region, tag = completion, False
    content = _last_answer_tag(completion)
    if content and content.strip():
        region, tag = content, True
    phrase = _phrase(region)
    if phrase:
        return Extraction(phrase, "phrase")
    bare = _bare(region)
    if bare:
        return Extraction(bare, "answer_tag" if tag else "bare")
    number = _last_number(region)
    if number:
        return Extraction(number, "last_number")
    return None


def unwrap_reference(reference: str) -> str:
    """A reference answer without `$…$` / `\\[…\\]` delimiters or an enclosing `\\boxed{}`."""
    s = _strip_wrappers(reference)
    boxed = last_boxed(s)
    if boxed is not None and s.startswith(("\\boxed", "\\fbox")) and s.rstrip().endswith("}"):
        s = boxed
    return _strip_wrappers(s)
