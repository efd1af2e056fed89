"""Finding the final answer in a completion, and unwrapping a reference.

`extract_answer` tries, in order, and the first rule that finds something wins:

1. the last complete `\\boxed{…}` / `\\fbox{…}` (nested braces; `\\boxed 5` too); boxes
   written together at the end (`\\boxed{1} and \\boxed{2}`) are one answer, a list;
2. a GSM8K-style last line `#### 42`;
3. the last `<answer>…</answer>` block (its content goes through rules 4–6);
4. "the (final) answer is …" / "final answer: …" (the rest of that sentence, or the whole
   math block that follows it, across lines); "Final Answer: the largest $n$ is 34" → `34`;
5. a *bare answer*: the whole completion when it is one short line that is not prose
   (a trainer that asks for the answer alone gets `-7, -1, 1, 7`, `x = 3` or `no solution`);
6. the last number in the text; when that number sits inside a math block (`$…$`, `\\[…\\]`,
   `\\(…\\)`, `$$…$$`), the block instead (its last `= …` part), so `$$\\frac{1}{2}$$` is a half,
   not 2.

It returns None when nothing is found; the verifier then abstains. `reference_answer`
applies the same rules to a reference that is a whole worked solution. Pure string work:
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
# Numbers: 1,000 · -3.5 · .5 · 3/4 · 2,74 (digits joined by commas stay one token: the
# verifier decides whether `2,74` is a decimal comma and `1,2` a list).
_NUMBER_RE = re.compile(r"(?<![\w.,])-?(?:\d+(?:,\d+)*(?:\.\d+)?|\.\d+)(?:/\d+)?(?![\w])")
# math@1.0.0's numbers: commas only as thousands groups of exactly three digits (`2,74` is 74).
_NUMBER_1_0_RE = re.compile(r"(?<![\w.])-?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:/\d+)?(?![\w])")
# Boxes / answer phrases tried from the end before giving up (each try may scan far).
MAX_BOX_TRIES = 8
# Prose, not an answer: more than PROSE_MAX_WORDS words of 2+ letters, or three plain words
# in a row with a function word, outside \text{} ("and"/"or" do not count: `1 and 3`).
_PROSE_RE = re.compile(r"(?<![\\\w])[A-Za-z][a-z']*\s+[A-Za-z][a-z']*\s+[A-Za-z][a-z']*\b")
_WORD_RE = re.compile(r"(?<![\\\w])(?!(?:and|or)\b)[A-Za-z][a-z']+\b")
PROSE_MAX_WORDS = 4  # a bare answer in words is short: "all real numbers", "no solution"
PROSE_MIN_WORDS_1_0 = 4  # math@1.0.0: four such words (or three plain words in a row) are prose
# Function words that mark a line as a sentence about a number ("it is 0.5"), not an answer.
_SENTENCE_WORDS = frozenset({"is", "are", "was", "were", "it", "its", "the", "so", "thus", "hence", "therefore",
                             "we", "get", "gives", "equals", "answer", "result", "be"})
_TEXT_CMD_RE = re.compile(r"\\(?:text|mbox|textbf|mathrm|textrm|mathbf)\s*\{[^{}]*\}")


@dataclass(frozen=True)
class Extraction:
    """An extracted answer: its `text` and the rule (`method`) that found it."""

    text: str
    method: str  # "boxed" | "boxes" | "hashes" | "answer_tag" | "phrase" | "bare" | "math_block" | "last_number"
    parts: tuple[str, ...] = ()  # "boxes": each box's content, in order


def matching_brace(text: str, open_pos: int) -> int | None:
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


def _box_at(text: str, m: re.Match, last: bool) -> tuple[str, int, int] | None:
    """(content, start, end) of the box whose command `m` matched, or None.

    A last box that never closes (the completion was cut) counts when what follows it is
    one short line, `\\boxed{\\frac{1}{2}` → `\\frac{1}{2}`. `\\boxed 5` takes the next token.
    """
    j = m.end()
    while j < len(text) and text[j] == " ":
        j += 1
    if j < len(text) and text[j] == "{":
        end = matching_brace(text, j)
        if end is not None:
            return text[j + 1:end].strip(), m.start(), end + 1
        tail = text[j + 1:].strip()
        if last and "\n" not in tail and len(tail) <= BARE_ANSWER_MAX_CHARS:
            return tail, m.start(), len(text)
    elif m.end() < len(text) and text[m.end()] == " ":
        tok = re.match(r"\s*([^\s$]+)", text[m.end():])
        if tok:
            return tok.group(1), m.start(), m.end() + tok.end()
    return None


# What may stand between boxes that together make one answer: `$\boxed{1}$ and $\boxed{2}$`,
# `\boxed{1}, \boxed{2}`, `x = \boxed{2} or x = \boxed{-3}`.
_BOX_GAP_RE = re.compile(r"(?:\s|\$|,|;|\\[,;!quad ]+|\\text\{\s*(?:and|or)\s*\}|\b(?:and|or)\b"
                         r"|[A-Za-z](?:_\{?\w\}?)?\s*=)*")
MAX_JOINED_BOXES = 16


def boxed_answers(text: str) -> list[str]:
    """The contents of the last box and of the boxes written together with it, in order
    (`\\boxed{1} and \\boxed{2}` → ["1", "2"]); [] when there is no usable box.

    Earlier boxes apart from the last are intermediate results and are not returned; a last
    box that cannot be read makes the earlier ones count (at most MAX_BOX_TRIES are tried).
    """
    return join_last_boxes(text, list(_BOX_RE.finditer(text))[-MAX_BOX_TRIES:])


def join_last_boxes(text: str, boxes: list[re.Match], skip_empty: bool = False,
                    gap: re.Pattern = _BOX_GAP_RE) -> list[str]:
    """The contents of the last readable box among `boxes` (box commands in `text`, in order)
    and of the boxes written together with it (what lies between them matches `gap`; at most
    MAX_JOINED_BOXES). `skip_empty`: an empty box is unreadable (math@3.0.0's reading, with
    its own linear-time gap pattern)."""
    for k in range(len(boxes) - 1, -1, -1):
        found = _box_at(text, boxes[k], last=k == len(boxes) - 1)
        if found is None or (skip_empty and not found[0]):
            continue
        out = [found]
        for m in reversed(boxes[:k]):
            prev = _box_at(text, m, last=False)
            if prev is None or (skip_empty and not prev[0]) or prev[2] > out[0][1] or len(out) >= MAX_JOINED_BOXES:
                break
            if not gap.fullmatch(text[prev[2]:out[0][1]]):
                break
            out.insert(0, prev)
        return [c for c, _, _ in out]
    return []


def last_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{…}` or `\\fbox{…}` in `text`, or None."""
    boxes = boxed_answers(text)
    return boxes[-1] if boxes else None


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


_MATH_OPEN = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
# "the largest $n$ is 34", "the number of ways is $\frac{1}{2}$": prose, a verb, the value.
_COPULA_RE = re.compile(r"^(?:the|a|an|our|this|that|so|thus|hence|therefore)\b[^=<>]*?\s"
                        r"(?:is|are|was|equals|becomes|comes to)\s+(?=\S)", re.I)


def _math_block_at(text: str, pos: int) -> str | None:
    """The content of the math block opening at `pos` (delimiters across lines), or None."""
    for open_, close in _MATH_OPEN:
        if text.startswith(open_, pos):
            end = text.find(close, pos + len(open_))
            if end > pos + len(open_) and end - pos <= BARE_ANSWER_MAX_CHARS * 2:
                return text[pos + len(open_):end].strip()
            return None
    return None


def _phrase(text: str, math_blocks: bool = True) -> str | None:
    """The rest of the sentence after the last "answer is" / "answer:" (`math_blocks`: or
    the whole math block that follows it, and the value after "the largest $n$ is")."""
    matches = list(_PHRASE_RE.finditer(text))
    for m in reversed(matches[-MAX_BOX_TRIES:]):
        start = m.end()
        block = _math_block_at(text, start) if math_blocks else None
        if block:
            return block
        eol = text.find("\n", start)
        line = text[start:eol if eol >= 0 else len(text)]
        # A sentence ends at ". " + capital or at the line end; decimals like 3.5 stay.
        stop = re.search(r"\.\s+(?=[A-Z])", line)
        if stop:
            line = line[:stop.start()]
        line = _strip_wrappers(line)
        copula = _COPULA_RE.match(line) if math_blocks else None
        if copula:  # "The largest $n$ is 34" → "34"
            line = _strip_wrappers(line[copula.end():])
        if line:
            return line
    return None


_HASHES_RE = re.compile(r"^[ \t]*####[ \t]*(\S[^\n]*?)[ \t]*$", re.M)


def _hashes(text: str) -> str | None:
    """GSM8K's final line, `#### 72`."""
    last = None
    for last in _HASHES_RE.finditer(text):
        pass
    return _strip_wrappers(last.group(1)) if last else None


def _bare(text: str, reading_2_0: bool = True) -> str | None:
    """The whole text, when it is a single short line that reads as an answer (`reading_2_0`
    off: math@1.0.0's test, where three plain words in a row are prose whatever they say)."""
    s = _strip_wrappers(text)
    if not s or "\n" in s or len(s) > BARE_ANSWER_MAX_CHARS:
        return None
    math_part = _TEXT_CMD_RE.sub(" ", s)
    if not reading_2_0:
        if _PROSE_RE.search(math_part) or len(_WORD_RE.findall(math_part)) >= PROSE_MIN_WORDS_1_0:
            return None
        words = {w.lower() for w in _WORD_RE.findall(math_part)}
        return None if words & _SENTENCE_WORDS and _NUMBER_1_0_RE.search(math_part) else s
    words = {w.lower() for w in _WORD_RE.findall(math_part)}
    n_words = len(_WORD_RE.findall(math_part))
    if n_words > PROSE_MAX_WORDS or (_PROSE_RE.search(math_part) and words & _SENTENCE_WORDS):
        return None  # "no real solutions" is an answer; "so it is 5" is a sentence
    if (words & _SENTENCE_WORDS or _PROSE_RE.search(math_part)) and _NUMBER_RE.search(math_part):
        return None  # a sentence around a number: the last-number rule takes it
    spans = _math_spans(s)
    if spans and (s[:spans[0][0]] + s[spans[-1][1]:]).strip(" .,;:!") and \
            _WORD_RE.search(_outside(s, spans)):
        return None  # "Since $1 - x \\ge 0$, \\( x \\le 1 \\)": words around math, the last block answers
    return s


def _outside(s: str, spans: list[tuple[int, int, int, int]]) -> str:
    """`s` without its math blocks."""
    out, i = [], 0
    for start, end, _, _ in spans:
        out.append(s[i:start])
        i = end
    return " ".join(out + [s[i:]])


def _math_spans(text: str) -> list[tuple[int, int, int, int]]:
    """(start, end, content start, content end) of the math blocks in `text`, left to right,
    in one pass; an unclosed delimiter ends the scan."""
    spans = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "[(":
            close = "\\]" if text[i + 1] == "[" else "\\)"
            end = text.find(close, i + 2)
            if end < 0:
                break
            spans.append((i, end + 2, i + 2, end))
            i = end + 2
        elif c == "\\":
            i += 2
        elif c == "$":
            delim = "$$" if text.startswith("$$", i) else "$"
            end = text.find(delim, i + len(delim))
            if end < 0:
                break
            spans.append((i, end + len(delim), i + len(delim), end))
            i = end + len(delim)
        else:
            i += 1
    return spans


# A block that states several values or a relation is kept whole (`x = 1 \\text{ or } x = 2`,
# `x = 7, y = 6`), not cut at its last `=`.
_SEVERAL_RE = re.compile(r"[<>;]|=[^=]*,[^=]*=|\\[lg]e|\\(?:text|mbox)\s*\{\s*(?:or|and)\s*\}|(?<![A-Za-z\\])(?:or|and)(?![A-Za-z])")


def _final_block(text: str) -> Extraction | None:
    """The math block that ends the text (only punctuation after it), when it holds no
    number the last-number rule could find (`… gives \\( \\tfrac14\\pi \\).`)."""
    spans = _math_spans(text)
    if not spans or text[spans[-1][1]:].strip(" \t\n.,;:!"):
        return None
    block = text[spans[-1][2]:spans[-1][3]].strip()
    if not block or len(block) > BARE_ANSWER_MAX_CHARS or _NUMBER_RE.search(block):
        return None
    return Extraction(block, "math_block")


def _last_number(text: str, reading_2_0: bool = True) -> Extraction | None:
    """The last number (`reading_2_0`: with commas between digits, and the math block it
    sits in; off: math@1.0.0's thousands groups and the number alone)."""
    last = None
    for last in (_NUMBER_RE if reading_2_0 else _NUMBER_1_0_RE).finditer(text):
        pass
    if last is None:
        return None
    if not reading_2_0:
        return Extraction(last.group(0), "last_number")
    for start, end, c0, c1 in reversed(_math_spans(text)):
        if start <= last.start() < end:
            block = text[c0:c1].strip()
            # `$2 \cdot 12 = 24$`: the value after the last `=`
            tail = block.rsplit("=", 1)[-1].strip() if "=" in block and not _SEVERAL_RE.search(block) \
                else block
            if tail and len(tail) <= BARE_ANSWER_MAX_CHARS:
                return Extraction(tail, "math_block")
            break
        if end <= last.start():
            break
    return Extraction(last.group(0), "last_number")


def extract_answer(completion: str, reading_2_0: bool = True) -> Extraction | None:
    """The final answer of `completion` (rules in the module docstring), or None.
    `reading_2_0` off: math@1.0.0's rules (the last box alone, no `####`, no math blocks,
    a bare answer never in words, numbers with thousands groups only)."""
    if not reading_2_0:
        return _extract_1_0(completion)
    boxes = [b for b in boxed_answers(completion) if b]
    if len(boxes) > 1:
        return Extraction(", ".join(boxes), "boxes", tuple(boxes))
    if boxes:
        return Extraction(boxes[0], "boxed")
    hashes = _hashes(completion)
    if hashes:
        return Extraction(hashes, "hashes")
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
    return _final_block(region) or _last_number(region)


def _extract_1_0(completion: str) -> Extraction | None:
    boxed = last_boxed(completion)
    if boxed:
        return Extraction(boxed, "boxed")
    region, tag = completion, False
    content = _last_answer_tag(completion)
    if content and content.strip():
        region, tag = content, True
    phrase = _phrase(region, math_blocks=False)
    if phrase:
        return Extraction(phrase, "phrase")
    bare = _bare(region, reading_2_0=False)
    if bare:
        return Extraction(bare, "answer_tag" if tag else "bare")
    return _last_number(region, reading_2_0=False)


def unwrap_reference(reference: str) -> str:
    """A reference answer without `$…$` / `\\[…\\]` delimiters or an enclosing `\\boxed{}`."""
    s = _strip_wrappers(reference)
    boxed = last_boxed(s)
    if boxed is not None and s.startswith(("\\boxed", "\\fbox")) and s.rstrip().endswith("}"):
        s = boxed
    return _strip_wrappers(s)


def reference_answer(reference: str) -> str:
    """The gold answer of a reference: the reference itself when it is a short answer, else
    (a whole worked solution, or any text with a box) its final answer by the rules of
    `extract_answer`; the reference unchanged when no rule finds one."""
    s = unwrap_reference(reference)
    marked = "\\boxed" in s or "\\fbox" in s or _HASHES_RE.search(s) or _PHRASE_RE.search(s)
    prose = len(s) > BARE_ANSWER_MAX_CHARS or ("\n" in s.strip() and _PROSE_RE.search(_TEXT_CMD_RE.sub(" ", s)))
    if not (marked or prose):
        return s  # a short answer (a matrix over several lines included)
    found = extract_answer(s)
    return _strip_wrappers(found.text) if found else s
