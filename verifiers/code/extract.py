"""Find the program in a completion: pure, no I/O.

    extract(completion, want="python") -> Extracted(code, language, how) | NoCode(reason)

Rule: the last fenced block (``` or ~~~, the opening fence's language tag honoured)
that holds code; failing any fence, the whole completion. A block tagged as non-code
(text, output, console, json, …) is passed over: models often end with the sample
output. An unclosed final fence (a generation cut by the token limit) runs to the end.
- `want=None` (any language): the block's tag decides; untagged code is Python.
- `want="python"` etc.: an untagged block is taken as that language; a block tagged
  with another language is NoCode ("the code is C++, the tests need Python").
Nothing found, or only whitespace, is NoCode: the verifier ABSTAINs with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

LANGUAGE_TAGS = {
    "python": "python", "py": "python", "python3": "python", "py3": "python",
    "cpp": "cpp", "c++": "cpp", "cxx": "cpp", "cc": "cpp", "hpp": "cpp",
    "javascript": "javascript", "js": "javascript", "node": "javascript", "nodejs": "javascript",
    "mjs": "javascript",
}
NON_CODE_TAGS = {"text", "txt", "plaintext", "plain", "output", "out", "console", "terminal", "stdout",
                 "input", "stdin", "sample", "example", "json", "yaml", "yml", "markdown", "md", "csv",
                 "bash", "sh", "shell", "shell-session", "log", "diff", "math", "latex", "tex", "none"}
LANGUAGE_NAMES = {"python": "Python", "cpp": "C++", "javascript": "JavaScript"}

_FENCE = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$", re.M)


@dataclass(frozen=True)
class Extracted:
    code: str
    language: str   # "python" | "cpp" | "javascript" | an unsupported tag as written
    how: str        # "fenced" | "fenced-unclosed" | "whole"


@dataclass(frozen=True)
class NoCode:
    reason: str


def fenced_blocks(text: str) -> list[tuple[str, str, bool]]:
    """(tag, body, closed) of each fenced block, in order. The tag is the info
    string's first word, lower-cased ('' when absent)."""
    blocks = []
    pos = 0
    while True:
        m = _FENCE.search(text, pos)
        if not m:
            return blocks
        fence, info = m["fence"], m["info"].strip()
        tag = info.split()[0].lower().strip("{}.") if info else ""
        body_start = m.end() + 1
        close = re.compile(rf"^[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.M)
        c = close.search(text, body_start)
        if c is None:
            blocks.append((tag, text[body_start:], False))
            return blocks
        blocks.append((tag, text[body_start:c.start()], True))
        pos = c.end()


def _language(tag: str) -> str | None:
    """A block's language: a known name, the raw tag for other code, None for non-code."""
    if tag in NON_CODE_TAGS:
        return None
    return LANGUAGE_TAGS.get(tag, tag)


def extract(completion: str, want: str | None = None) -> Extracted | NoCode:
    """The program to run; see the module docstring."""
    blocks = fenced_blocks(completion)
    for tag, body, closed in reversed(blocks):
        lang = _language(tag)
        if lang is None or not body.strip():
            continue
        lang = lang or want or "python"
        if want is not None and lang != want:
            return NoCode(f"the last code block is {LANGUAGE_NAMES.get(lang, repr(lang))}; "
                          f"these tests need {LANGUAGE_NAMES.get(want, want)}")
        return Extracted(body, lang, "fenced" if closed else "fenced-unclosed")
    if blocks:
        return NoCode("the completion's fenced blocks hold no code (empty or tagged as output/text)")
    if not completion.strip():
        return NoCode("empty completion: no code to run")
    return Extracted(completion, want or "python", "whole")
