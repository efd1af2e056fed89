"""Reading a completion's final answer the way math@3.0.0 does: explicit statements first.

A *final-answer statement* is one of (`kind`):

    heading   a markdown heading `# Answer` / `## Final Answer` followed by the answer: the
              rest of the heading line, else the next lines up to a blank line (PRM800K);
    label     `**Final Answer**` on its own (the answer on the next line), or a line
              `Solution: Choice_C` that names a choice;
    hashes    GSM8K's last line `#### 72`;
    boxed     the last `\\boxed{…}` (with the boxes written together with it);
    tag       `<answer>…</answer>`;
    final     "the final answer is …", "Final Answer: …";
    phrase    "the answer is …", "the correct answer choice is D: 2/3", "answer: …".

The answer is the statement that ends last: *the last explicit final-answer statement
wins*. Every statement but a plain `phrase` is a *commitment*; `read_final` returns them
all, and the verifier rejects a completion whose commitments disagree (two different final
answers). A phrase whose content is a judgement, not an answer ("our answer is correct"),
is not a statement.

A hedge is several answers (each a commitment the verifier checks against the reference):
boxes offered as alternatives (`\\boxed{6} (or \\boxed{7})`), a value joined by "or" right
after the answer, "it could also be 7" after it, a value or hedge word in a `\\text{}` that
the normaliser would drop as a unit, every `<answer>` tag. A negated value is no answer
("the answer is not 9"; "8, not 9" is 8). Statements inside code fences are code; those
inside a closed `<think>` are drafts once a statement follows it. Fullwidth digits,
hyphen-minus look-alikes and zero-width characters are read as ASCII.

Without any statement: the whole completion when it is a short bare answer; else the last
number of the final sentence, when it stands in prose, or the closed math block holding it
(that block's value after its last `=`); none when that sentence hedges ("6 or possibly
7", "4, 5, 6, 7", "either", "or less") or negates its last number ("isn't 9"; "5, but not
6" reads 5). Digits inside LaTeX (`\\frac{4}{3}`, `a_{10}`,
`16\\sqrt{3}` outside `$…$`), after an unclosed `$`, or labelling an item (`(2)`, `Step 3:`)
are never the answer.

Pure string work, linear in the completion: line-anchored regexes without nested
quantifiers, and scans from the end.
"""
from __future__ import annotations

import bisect
import re
from collections import deque
from dataclasses import dataclass

from .extract import (BARE_ANSWER_MAX_CHARS, MAX_BOX_TRIES, _BOX_RE, _COPULA_RE, _NUMBER_RE,
                      _SEVERAL_RE, _bare, _box_at, _math_block_at, _strip_wrappers, join_last_boxes)

# A statement's content is at most this long (a matrix on one line fits; prose does not).
MAX_STATEMENT_CHARS = 400
# The final sentence is read within this many characters of the end.
FINAL_SENTENCE_MAX_CHARS = 600
# Statements considered, from the end (each is cheap; a completion may repeat thousands).
MAX_STATEMENTS = 12

_HEADING_RE = re.compile(r"^[ \t]*#{1,6}[ \t]*(?:\*\*)?[ \t]*(?:final[ \t]+)?answers?\b[ \t]*(?:\*\*)?[ \t]*:?"
                         r"[ \t]*(?:\*\*)?([^\n]*)$", re.M | re.I)
_BOLD_LABEL_RE = re.compile(r"^[ \t]*(?:\*\*|__)[ \t]*final[ \t]+answer[ \t]*:?[ \t]*(?:\*\*|__)[ \t]*:?([^\n]*)$",
                            re.M | re.I)
_SOLUTION_CHOICE_RE = re.compile(r"^[ \t]*(?:step[ \t]*\d+[ \t]*:[ \t]*)?(?:\*\*)?(?:solution|answer)(?:\*\*)?[ \t]*:[ \t]*(?:\*\*)?"
                                 r"((?:choice|option)[^\n]*)$", re.M | re.I)
_HASHES_RE = re.compile(r"^[ \t]*(?:step[ \t]*\d+[ \t]*:[ \t]*)?####[ \t]*(\S[^\n]*)$", re.M | re.I)
# "the final answer is", "Final Answer:", "the answer is", "the correct answer choice is",
# "answer:"; `final` set when the statement says "final".
_PHRASE_RE = re.compile(r"(?<![A-Za-z])(?:(?:the\s+|our\s+|my\s+)?(?:(final)\s+|correct\s+)?answer"
                        r"|the\s+(?:correct\s+|final\s+)?solution)(?:\s+choice)?"
                        r"(?:\s+is\b|\s*:)(?:\s*:)?[ \t]*(?:\*\*)?[ \t]*", re.I)
# Contents of "answer is …" that judge rather than answer.
_JUDGEMENTS = frozenset({"correct", "right", "wrong", "incorrect", "valid", "invalid", "above", "below", "follows",
                         "as follows", "the following", "given", "shown", "clear", "obvious", "reasonable",
                         "consistent", "confirmed", "verified", "indeed", "not", "true", "false", "simply",
                         "then", "thus", "therefore", "the same", "unique", "positive", "negative"})
# What may precede a label at the start of its line: markdown, "Step 4:".
_LINE_LEAD_RE = re.compile(r"[ \t>*#_-]*(?:step[ \t]*\d+[ \t]*:[ \t]*)?(?:\*\*)?[ \t]*", re.I)
# After a math block: a closing delimiter, then "and"/"or"/a comma, then another block.
_JOINED_BLOCK_RE = re.compile(r"(?:\$\$|\$|\\\)|\\\])[ \t]*(?:,|;|,?[ \t]*(?:and|or))[ \t]*(?:\$|\\\(|\\\[)", re.I)
# An XML-like tag ends a sentence: `the answer is 3</think>`, `4</answer>`.
_TAG_RE = re.compile(r"</?[A-Za-z][\w-]*>")
_TRAILER_RE = re.compile(r"\s*(?:I hope it is correct|I hope this is correct|Hope this helps)\b.*$", re.I | re.S)
_SENTENCE_END_RE = re.compile(r"\.\s+(?=[A-Z])")
# Words that negate the value after them: "the answer is not 9", "isn't 9", "11 rather than 9".
_NEGATION = r"(?:not|never|cannot|can't|isn't|aren't|wasn't|rather\s+than|instead\s+of|except|other\s+than)"
# A clause after the answer that rejects another value: "8, not 9", "$8$ and not $9$".
_NEGATED_TAIL_RE = re.compile(r"[ \t]*[,;(\[]?[ \t]*(?:and[ \t]+|but[ \t]+)?(?<![A-Za-z'])" + _NEGATION
                              + r"(?![A-Za-z])[^\n]*$", re.I)
_NEGATED_HEAD_RE = re.compile(r"^[ \t]*" + _NEGATION + r"(?![A-Za-z])", re.I)
# Just before a number: a negation, optionally with "be"/"equal to" ("cannot be 9", "isn't 9").
_NEGATED_BEFORE_RE = re.compile(r"(?<![A-Za-z'])" + _NEGATION + r"[ \t]+(?:(?:be|equal|equals|to|exactly)[ \t]+){0,2}"
                                r"[$(\\]*[ \t]*$", re.I)
# Between two numbers of the final sentence that are alternatives: "6 or possibly 7", "4, 5, 6".
_OR_GAP_RE = re.compile(r"[ \t]*,?[ \t]*(?:or|and/or)[ \t]+(?:(?:possibly|maybe|perhaps|probably|else|even)[ \t]+)?",
                        re.I)
_COMMA_GAP_RE = re.compile(r"[ \t]*,[ \t]*")
# A final sentence that hedges: "It could be 6. Or 7.", "either 6 or 7".
_HEDGE_LEAD_RE = re.compile(r"[ \t]*or\b", re.I)
_HEDGE_RE = re.compile(r"\beither\b|\b(?:maybe|perhaps|possibly|unsure|not sure)\b"
                       r"|\bor[ \t]+(?:less|more|fewer|greater|higher|lower|so)\b", re.I)
# `\text{…}` that the normaliser would drop as a unit but holds a value or a hedge
# (`6 \text{ (or possibly 7)}`): its words become part of the answer.
_TEXT_CMD_RE = re.compile(r"\\(?:text[a-z]*|mbox|hbox)[ \t]*\{([^{}]*)\}")
_TEXT_HEDGE_RE = re.compile(r"\d|\?|(?<![A-Za-z])(?:or|not|maybe|perhaps|possibly|probably|unless|either|except"
                            r"|at[ \t]+(?:most|least)|fewer|more|less|guess|unknown)(?![A-Za-z])", re.I)
# After the final answer, another value offered as possible for it: "But it could also be
# 5.", "Alternatively, the answer might be A." (a hedge: it commits to that value too; "x
# might be 0 at the boundary" is about something else).
_AFTER_HEDGE_RE = re.compile(r"(?<![A-Za-z])(?i:it|this|that|answer|result|value)[ \t]+(?i:could|might)[ \t]+(?:(?i:also|instead|alternatively|possibly|even)[ \t]+)?"
                             r"(?i:be)[ \t]+(?:(?i:option|choice)[ \t]+)?(\$[^$\n]{1,80}\$|\\\([^\n]{1,80}?\\\)"
                             r"|\(?[A-H]\)?(?![A-Za-z\d])|-?\d[\d,]*(?:\.\d+)?(?:/\d+)?)")
# Right after the final answer: "or" and another value (`\\boxed{6} \\text{ (or 7)}`,
# `$\\boxed{6}$ or $7$`, "The answer is 6. Or 7.").
_OR_VALUE_AFTER_RE = re.compile(r"[\s$.]*(?:\\(?:text[a-z]*|mbox|hbox)[ \t]*\{)?[ \t(]*(?i:or|alternatively|possibly|maybe"
                                r"|perhaps)(?![A-Za-z])[ \t},]*(?:(?i:possibly|maybe|perhaps|even|else)[ \t]+)?[ \t$(]*"
                                r"(\\\([^\n]{1,80}?\\\)|\(?[A-H]\)?(?![A-Za-z\d])|-?\d[\d,]*(?:\.\d+)?(?:/\d+)?"
                                r"|\\[a-z]+\{[^\n]{0,80})")
# In the rest of the answer's sentence, words that offer another value as possible.
_LINE_HEDGE_RE = re.compile(r"(?<![A-Za-z])(?:or|alternatively|plausible|possible|possibly|maybe|perhaps|otherwise)"
                            r"(?![A-Za-z])|\\footnote", re.I)
_CLOSER_RE = re.compile(r"^[ \t]*(?:\$\$|\$|\\\)|\\\])")
_TEXT_WRAPPER_RE = re.compile(r"\\(?:text[a-z]*|mbox|hbox|footnote)[ \t]*\{([^{}]*)\}")
_INLINE_BLOCK_RE = re.compile(r"\$([^$\n]{1,120})\$|\\\((.{1,120}?)\\\)")
# Fullwidth forms (U+FF01..U+FF5E) are their ASCII characters (`４２` is 42), hyphen and
# small minus look-alikes are `-`, and zero-width characters are nothing (`4\u200b2` is 42).
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {c: "-" for c in (0x2010, 0x2011, 0x2012, 0xFE63)} \
    | {c: None for c in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF)}


@dataclass(frozen=True)
class Statement:
    """One final-answer statement: its answer `text`, `kind`, and where it ends."""

    text: str
    kind: str
    end: int
    parts: tuple[str, ...] = ()  # boxed: each box's content

    @property
    def committed(self) -> bool:
        return self.kind != "phrase"


def _next_lines(text: str, pos: int) -> str:
    """The lines after `pos` up to the first blank line after some content (≤ MAX_STATEMENT_CHARS)."""
    out: list[str] = []
    for line in text[pos:pos + MAX_STATEMENT_CHARS * 2].split("\n"):
        if not line.strip():
            if out:
                break
            continue
        out.append(line.strip())
    return " ".join(out)[:MAX_STATEMENT_CHARS]


def _answer_in(content: str, nested: bool = False) -> tuple[str, tuple[str, ...]] | None:
    """The answer a statement's content gives: its box, its "answer is" phrase, else the
    content itself (wrappers, a trailing "I hope it is correct" and a copula dropped)."""
    content = _TRAILER_RE.sub("", content).strip()
    if _NEGATED_HEAD_RE.match(content):  # "the answer is not 9": what follows is no answer
        return (content, ()) if re.search(r"\d|\\|\$", content) else None
    cut = _NEGATED_TAIL_RE.search(content)
    if cut and cut.start() > 0:  # "8, not 9": the answer is 8
        content = content[:cut.start()].strip()
    boxes = _boxes(content)
    if boxes:
        return ", ".join(boxes), tuple(boxes) if len(boxes) > 1 else ()
    inner = None if nested else _phrases(content, nested=True)  # one level: never a recursion
    if inner:
        return inner[-1].text, ()
    s = _strip_wrappers(content)
    copula = _COPULA_RE.match(s)
    if copula:
        s = _strip_wrappers(s[copula.end():])
    return (s, ()) if s else None


def _judgement(s: str) -> bool:
    key = " ".join(re.sub(r"[^a-z ]", " ", s.lower()).split())
    return key in _JUDGEMENTS or key.split(" ")[0] in {"that", "to", "not", "in", "correct", "wrong", "incorrect"}


def _phrases(text: str, nested: bool = False) -> list[Statement]:
    """The "answer is …" statements of `text`; each ends where its sentence ends (at a line
    end, ". " before a capital, or a tag such as `</think>`), so a later statement wins."""
    out: list[Statement] = []
    lower = text.lower()
    if "answer" not in lower and "solution" not in lower:
        return out
    for m in deque(_PHRASE_RE.finditer(text), maxlen=MAX_STATEMENTS):
        start = m.end()
        line_start = text.rfind("\n", 0, m.start()) + 1
        label = text[m.start():m.end()].rstrip(" *\t").endswith(":") and \
            _LINE_LEAD_RE.fullmatch(text[line_start:m.start()]) is not None
        kind = "final" if m.group(1) or label else "phrase"
        eol = text.find("\n", start)
        eol = len(text) if eol < 0 else eol
        line = text[start:eol]
        tag = _TAG_RE.search(line)
        if tag:
            line = line[:tag.start()]
        stop = _SENTENCE_END_RE.search(line)
        sentence = line[:stop.start()] if stop else line
        end = start + len(sentence)
        block = _math_block_at(text, start)
        k = sentence.find(block) if block else -1
        if block and k >= 0 and _JOINED_BLOCK_RE.match(sentence, k + len(block)):
            # `$x = 2$ or $x = 3$`, `$\boxed{2}$ and $\boxed{3}$`: the whole sentence answers
            block, sentence = None, re.sub(r"\$\$|\$|\\[()\[\]]", " ", sentence)
        if block:
            found = _answer_in(block, nested)
            if found:
                out.append(Statement(found[0], kind, max(end, start + k + len(block)), found[1]))
            continue
        if not sentence.strip() and kind == "final" and not tag:
            sentence = _next_lines(text, eol)
            end = eol + 1 + len(sentence)
        found = _answer_in(sentence[:MAX_STATEMENT_CHARS], nested)
        if found and (not _judgement(found[0]) or _NEGATED_HEAD_RE.match(found[0])):
            out.append(Statement(found[0], kind, end, found[1]))
    return out


# Between boxes that make one answer: spaces, `$`, commas, `\quad`, "and"/"or", `x =`; and
# what offers one box as an alternative to the other: `(or …)`, `/`, `|`, "alternatively",
# "perhaps" (a hedge over boxes is several answers, not the last one). Each
# alternative starts with a different character, so the loop cannot backtrack (math@2.x's
# pattern could, exponentially, on `\   \   …`).
_BOX_GAP_RE = re.compile(r"(?:[ \t\n$,;()/|]|\\(?:qquad|quad|[,;! ])|\\text\{[ \t]*(?:and|or)[ \t]*\}"
                         r"|(?:and|or|alternatively|perhaps|possibly|maybe|else)\b"
                         r"|[A-Za-z](?:_\{?\w\}?)?[ \t]*=)*", re.I)


def _last_box_commands(text: str) -> list[re.Match]:
    """The last MAX_BOX_TRIES `\\boxed` commands, found from the end (rfind, not a full scan)."""
    out: list[re.Match] = []
    end = len(text)
    while len(out) < MAX_BOX_TRIES:
        k = max(text.rfind("\\boxed", 0, end), text.rfind("\\fbox", 0, end))
        if k < 0:
            break
        m = _BOX_RE.match(text, k)
        if m:
            out.insert(0, m)
        end = k
    return out


def _boxes(text: str) -> list[str]:
    """The last box and the boxes written together with it (see extract.boxed_answers)."""
    return join_last_boxes(text, _last_box_commands(text), skip_empty=True, gap=_BOX_GAP_RE)


def _box_statement(text: str) -> Statement | None:
    boxes = _last_box_commands(text)
    if not boxes:
        return None
    found = _boxes(text)
    if not found:
        return None
    last = _box_at(text, boxes[-1], last=True)
    end = last[2] if last else boxes[-1].end()
    if len(found) > 1:
        return Statement(", ".join(found), "boxes", end, tuple(found))
    return Statement(found[0], "boxed", end)


def statements(text: str) -> list[Statement]:
    """Every final-answer statement of `text`, ordered by where it ends."""
    out: list[Statement] = []
    for m in deque(_HEADING_RE.finditer(text), maxlen=MAX_STATEMENTS):
        rest = m.group(1).strip()
        found = _answer_in(rest if rest else _next_lines(text, m.end()))
        if found:
            out.append(Statement(found[0], "heading", m.end() + (0 if rest else 1), found[1]))
    for m in deque(_BOLD_LABEL_RE.finditer(text), maxlen=MAX_STATEMENTS):
        rest = m.group(1).strip()
        found = _answer_in(rest if rest else _next_lines(text, m.end()))
        if found:
            out.append(Statement(found[0], "label", m.end() + (0 if rest else 1), found[1]))
    for m in deque(_SOLUTION_CHOICE_RE.finditer(text), maxlen=MAX_STATEMENTS):
        out.append(Statement(_strip_wrappers(m.group(1)), "label", m.end()))
    for m in deque(_HASHES_RE.finditer(text), maxlen=MAX_STATEMENTS):
        s = _strip_wrappers(m.group(1).strip())
        if s:
            out.append(Statement(s, "hashes", m.end()))
    box = _box_statement(text)
    if box:
        out.append(box)
    out.extend(_answer_tags(text))
    # Phrases inside a heading's or label's own line are that statement, not another one.
    out.extend(_phrases(text))
    fences = _fences(text) if "```" in text else []
    if fences:  # a statement inside a code block is code (`print("the answer is", x)`), not an answer
        starts = [a for a, _ in fences]
        out = [s for s in out if not (k := bisect.bisect_right(starts, s.end - 1)) or s.end > fences[k - 1][1]]
    out.sort(key=lambda s: s.end)
    return _dedupe(text, out)


def _answer_tags(text: str) -> list[Statement]:
    """Every `<answer>…</answer>` (the last MAX_STATEMENTS, each closing tag with the
    nearest opening one before it; nested tags are each a statement): each one commits.
    The last is read whole; an earlier one only when short (bounded work)."""
    out: list[Statement] = []
    lower = text.lower()
    close = len(text)
    for k in range(MAX_STATEMENTS):
        close = lower.rfind("</answer>", 0, close)
        if close < 0:
            break
        open_ = lower.rfind("<answer>", 0, close)
        if open_ < 0:
            break
        content = text[open_ + len("<answer>"):close]
        if content.strip() and (k == 0 or len(content) <= MAX_STATEMENT_CHARS * 4):
            inner = read_final(content)
            if inner.answer:
                out.insert(0, Statement(inner.answer.text, "tag", close + len("</answer>"), inner.answer.parts))
    return out


def _dedupe(text: str, sts: list[Statement]) -> list[Statement]:
    """One statement per place: "The final answer is $\\boxed{5}$" is one statement (the
    box), not a box and a phrase; so is `# Answer` and a phrase on its line."""
    out: list[Statement] = []
    for s in sts:
        prev = out[-1] if out else None
        if prev is not None and prev.text.replace(" ", "") == s.text.replace(" ", "") and \
                "\n" not in text[prev.end:s.end].strip("\n"):
            if s.committed and not prev.committed:
                out[-1] = s
            elif prev.committed and not s.committed:
                out[-1] = Statement(prev.text, prev.kind, s.end, prev.parts)
            continue
        out.append(s)
    return out


@dataclass(frozen=True)
class Reading:
    """What math@3.0.0 reads in a completion: the `answer` (None: nothing found) and the
    committed statements (for the two-different-answers rule)."""

    answer: Statement | None
    commitments: tuple[Statement, ...] = ()


_ITEM_LABEL_RE = re.compile(r"(?:^|\n)[ \t]*(?:step[ \t]*)?\(?\d+[.):][ \t]", re.I)


def _in_latex(text: str, pos: int) -> bool:
    """Whether the number at `pos` sits inside LaTeX: in braces, or right after `_`, `^`
    or a command (`\\sqrt3`), outside any `$` block (those are handled as blocks)."""
    depth = 0
    line_start = max(text.rfind("\n", 0, pos) + 1, pos - FINAL_SENTENCE_MAX_CHARS)
    for c in text[line_start:pos]:
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
    if depth:
        return True
    j = pos - 1
    while j >= line_start and text[j] == " ":
        j -= 1
    if j >= line_start and text[j] in "_^{}\\":
        return True
    return bool(re.search(r"\\[A-Za-z]+\s*$", text[max(line_start, pos - 24):pos]))




# What opens a math block, or must be skipped while looking for one (`\\\\` a line break,
# `\\$` a dollar sign).
_OPENER_RE = re.compile(r"\\\\|\\\$|\\[\[(]|\$\$?")


def _math_spans(text: str) -> list[tuple[int, int, int, int]]:
    """(start, end, content start, content end) of the math blocks of `text`, left to right
    (`$…$`, `$$…$$`, `\\[…\\]`, `\\(…\\)`); an unclosed delimiter ends the scan. The
    same blocks as extract._math_spans, found by regex search instead of a loop per character."""
    spans = []
    pos = 0
    while True:
        m = _OPENER_RE.search(text, pos)
        if m is None:
            return spans
        tok = m.group(0)
        if tok in ("\\\\", "\\$"):
            pos = m.end()
            continue
        close = {"\\[": "\\]", "\\(": "\\)"}.get(tok, tok)
        end = text.find(close, m.end())
        if end < 0:
            return spans
        spans.append((m.start(), end + len(close), m.end(), end))
        pos = end + len(close)


def _alternatives(body: str, spans: list, numbers: list, start: int) -> bool:
    """Whether the final sentence's last number is one of several candidates: after another
    number in prose by "or" (`6 or possibly 7`) or in a list of three or more (`4, 5, 6,
    7`), or its math block after another block by "or" (`$6$ or $7$`). A list inside one
    block (`$1, 3$`) is that block's value, not alternatives."""
    last = numbers[-1]
    span = next((sp for sp in reversed(spans) if sp[0] <= last.start() < sp[1]), None)
    if span is None:
        prose = [m for m in numbers[-3:] if not any(sp[0] <= m.start() < sp[1] for sp in spans)]
        if len(prose) >= 2 and prose[-2] is numbers[-2] and _OR_GAP_RE.fullmatch(body, prose[-2].end(), last.start()):
            return True
        return len(prose) == 3 and len(numbers) >= 3 and prose[0] is numbers[-3] and all(
            _COMMA_GAP_RE.fullmatch(body, a.end(), b.start()) or _OR_GAP_RE.fullmatch(body, a.end(), b.start())
            for a, b in zip(prose, prose[1:]))
    k = spans.index(span)
    if k == 0 or spans[k - 1][1] <= start:
        return False
    prev = spans[k - 1]
    return bool(_NUMBER_RE.search(body, prev[2], prev[3])) and _OR_GAP_RE.fullmatch(body, prev[1], span[0]) is not None


def _final_sentence_number(text: str) -> Statement | None:
    """The last number of the completion's final sentence, standing in prose (or the closed
    math block that holds it: the block's value after its last `=`)."""
    body = text.rstrip()
    spans = _math_spans(body)
    # An unclosed `$` / `\[`: everything after it is LaTeX that never ended.
    closed_to = spans[-1][1] if spans else 0
    tail = body[closed_to:]
    for opener in ("$", "\\[", "\\("):
        k = tail.find(opener)
        # `2,74 $`, `$5`: a currency sign, not the start of LaTeX that never ended
        if k >= 0 and (opener != "$" or re.search(r"[\\_^{]", tail[k:])):
            body = body[:closed_to + k]
            tail = body[closed_to:]
    cut = max(body.rfind("\n"), max((m.end() - 1 for m in _SENTENCE_END_RE.finditer(body[-600:])), default=-1)
              + max(0, len(body) - 600))
    for s0, s1, _, _ in reversed(spans):  # a display block over several lines is one sentence
        if s0 <= cut < s1:
            cut = max(body.rfind("\n", 0, s0), s0 - 1)
            break
    start = max(cut + 1, len(body) - FINAL_SENTENCE_MAX_CHARS)
    # A final line that is only a check mark or a block: the sentence is the one before.
    numbers = [m for m in _NUMBER_RE.finditer(body, start)]
    if _HEDGE_LEAD_RE.match(body, start) or _HEDGE_RE.search(body, start):
        return None  # "It could be 6. Or 7.", "either 6 or 7": no value committed to
    negated = _NEGATED_BEFORE_RE.search(body, start, numbers[-1].start()) if numbers else None
    if negated:  # "So x is 5, but not 6": what comes before the negation; "isn't 9": nothing
        numbers = [m for m in numbers if m.end() <= negated.start()]
        if not numbers:
            return None
    if numbers and _alternatives(body, spans, numbers, start):
        return None  # "6 or 7", "4, 5, 6, 7", "$6$ or $7$": several candidates, not one answer
    for m in reversed(numbers):
        for s0, s1, c0, c1 in reversed(spans):
            if s0 <= m.start() < s1:
                block = body[c0:c1].strip()
                value = block.rsplit("=", 1)[-1].strip() if "=" in block and not _SEVERAL_RE.search(block) else block
                if value and len(value) <= BARE_ANSWER_MAX_CHARS:
                    return Statement(value, "math_block", s1)
                return None
        if _in_latex(body, m.start()):
            continue
        label = _ITEM_LABEL_RE.match(body, max(0, body.rfind("\n", 0, m.start())))
        if label and label.end() > m.start():
            continue  # `(2) Now…`, `Step 3: …`: the number labels an item
        return Statement(m.group(0), "last_number", m.end())
    if spans and not body[spans[-1][1]:].strip(" \t\n.,;:!"):  # `… gives \\( \\tfrac14\\pi \\).`
        block = body[spans[-1][2]:spans[-1][3]].strip()
        if block and len(block) <= BARE_ANSWER_MAX_CHARS:
            value = block.rsplit("=", 1)[-1].strip() if "=" in block and not _SEVERAL_RE.search(block) else block
            return Statement(value, "math_block", spans[-1][1])
    return None


def _hedges_after(text: str, answer: Statement, sts: list[Statement]) -> tuple[Statement, ...]:
    """The values offered as possible after the final answer ("it could also be 5", or
    right after its box "\\boxed{6} (or 7)"), each a commitment (kind `hedge`), so that a
    different one makes the completion wrong."""
    out = []
    pos = answer.end
    at = pos
    box = next((st for st in reversed(sts) if st.kind in ("boxed", "boxes")), None)
    if box is not None and box.text.replace(" ", "") == answer.text.replace(" ", ""):
        commands = _last_box_commands(text)
        last = _box_at(text, commands[-1], last=True) if commands else None
        at = last[2] if last else pos  # right after the box itself, not its sentence
    m = _OR_VALUE_AFTER_RE.match(text, at)
    if m:
        value = _strip_wrappers(m.group(1))
        if value:
            out.append(Statement(value, "hedge", m.end()))
    else:
        # the rest of the answer's sentence: "\\boxed{6}, although 7 is also plausible"
        eol = text.find("\n", at, at + FINAL_SENTENCE_MAX_CHARS)
        rest = text[at:eol if eol >= 0 else at + FINAL_SENTENCE_MAX_CHARS]
        stop = _SENTENCE_END_RE.search(rest)
        rest = rest[:stop.start()] if stop else rest
        rest = _TEXT_WRAPPER_RE.sub(r" \1 ", _CLOSER_RE.sub("", rest, count=1)).replace("\\ ", "  ")
        number = _NUMBER_RE.search(rest) if _LINE_HEDGE_RE.search(rest) else None
        block = _INLINE_BLOCK_RE.search(rest) if number else None
        if block and block.start() <= number.start():  # `or, equivalently, $\\frac{12}{2}$`: the block
            out.append(Statement(block.group(1) or block.group(2), "hedge", at + block.end()))
        elif number and not _in_latex(rest, number.start()):
            out.append(Statement(number.group(0), "hedge", at + number.end()))
    body = text.rstrip()
    k = body.rfind("\n")
    last_line = _strip_wrappers(body[k + 1:])
    if not out and k >= pos and _NUMBER_RE.fullmatch(last_line) and \
            not answer.text.replace(" ", "").endswith(last_line):
        # "# Answer\n\n6\n\n7", "\\boxed{6}\n\n7": a number alone on the last line after the answer
        out.append(Statement(last_line, "hedge", len(body)))
    for m in deque(_AFTER_HEDGE_RE.finditer(text, pos), maxlen=MAX_STATEMENTS):
        value = _strip_wrappers(m.group(1))
        if value:
            out.append(Statement(value, "hedge", m.end()))
    return tuple(out)


def _fences(text: str) -> list[tuple[int, int]]:
    """The (start, end) of the markdown code blocks of `text` (between ``` lines); an
    unclosed one runs to the end."""
    out, pos = [], 0
    while True:
        a = text.find("```", pos)
        if a < 0:
            return out
        b = text.find("```", a + 3)
        out.append((a, len(text) if b < 0 else b + 3))
        if b < 0:
            return out
        pos = b + 3


def _expose_text(st: Statement) -> Statement:
    """`6 \\text{ (or possibly 7)}` → `6  (or possibly 7)`: a `\\text{}` holding a digit or a
    hedge is part of the answer, not a unit the normaliser may drop."""
    if "text" not in st.text and "box" not in st.text:
        return st
    exposed = _TEXT_CMD_RE.sub(lambda m: f" {m.group(1)} " if _TEXT_HEDGE_RE.search(m.group(1)) else m.group(0),
                               st.text)
    return st if exposed == st.text else Statement(" ".join(exposed.split()), st.kind, st.end, st.parts)


def read_final(completion: str) -> Reading:
    """The final answer of `completion` by the rules in the module docstring."""
    completion = completion.translate(_FULLWIDTH)
    sts = [_expose_text(st) for st in statements(completion)]
    if sts:
        think_end = completion.lower().rfind("</think>")
        if think_end >= 0 and sts[-1].end > think_end:
            # statements inside the thinking are drafts once one is made after it
            sts = [st for st in sts if st.end > think_end]
        committed = tuple(s for s in sts if s.committed) + _hedges_after(completion, sts[-1], sts)
        return Reading(sts[-1], committed)
    bare = _bare(completion)
    if bare:
        return Reading(Statement(bare, "bare", len(completion)))
    return Reading(_final_sentence_number(completion))
