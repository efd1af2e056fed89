"""Format checks: the R1 `<think>…</think><answer>…</answer>` structure, tag counts, a
user regex and length bounds. Linear-time by construction, so they run inline.

`kind` selects the check:
- "r1": strict = the whole completion is exactly one think block then one answer block
  (whitespace allowed between and around); lenient = each tag appears exactly once and in
  order, text may surround them. Either way both blocks must hold some non-blank text.
- "tags": partial credit per well-formed tag pair (the R1-style tag-count reward): each of
  `tags` present exactly once as an open/close pair around non-blank text earns 1/len(tags).
- "regex": 1 when `pattern` matches (search; `full_match` for a whole-text match), DOTALL.
  The pattern is RE2 syntax (https://github.com/google/re2/wiki/Syntax), matched in time
  linear in the completion: no backreferences, no lookaround, and `\\w \\d \\s \\b` are
  ASCII (`\\pL`, `\\pN` are the Unicode classes).
- "length": 1 when min_chars <= len(completion) <= max_chars.

Cost bounds (issue #17): the built-in checks are `str.count`/`str.find` scans, never a
backtracking regex; a caller's pattern compiles under RE2's program-size limit
(RE2_MAX_MEM_BYTES, MAX_PROGRAM_SIZE, and RE2's own cap of 1000 on nested counted
repeats), so it is refused up front as a bad parameter instead of expanding in the
server's memory; r1/tags/regex read at most MAX_INPUT_CHARS, and a pattern scans at
most REGEX_WORK_BUDGET / its program size bytes (RE2 releases the GIL while it scans). A longer completion is the completion's own
fault, so it is a wrong answer (OK, reward 0, with the reason), never TIMEOUT or ERROR.

Versions: 2.0.0 (this file) changed verdicts: empty blocks earn nothing, patterns are RE2,
over-long completions score 0. `format@1.0.0` stays registered, frozen, in format_v1.py.
"""
from __future__ import annotations

import functools
from typing import Any, Literal

import re2
from pydantic import Field, field_validator, model_validator

from .core import Params, Verifier, VerifierResult
from .registry import register

MAX_INPUT_CHARS = 1_000_000
MAX_PATTERN_CHARS = 1000
# RE2 is linear in the text, but not free in the program: when its DFA gives up (too many
# states, as for `(?:a|b)*.{350}z`) it runs the NFA, whose cost per byte grows with the
# program. Measured on 1 MB: under 0.6 s at 2,500 instructions, 26 s at 9,000. So a
# compiled pattern holds at most MAX_PROGRAM_SIZE instructions (`\pL` alone is 1,200), it
# gets RE2_MAX_MEM_BYTES so that the DFA rarely gives up, and it scans at most
# REGEX_WORK_BUDGET / program size bytes: all of MAX_INPUT_CHARS up to 1,250 instructions,
# 500 KB at the cap.
MAX_PROGRAM_SIZE = 2500
REGEX_WORK_BUDGET = 1_250_000_000
RE2_MAX_MEM_BYTES = 8 << 20
_RE2_SIZING_MEM_BYTES = 1 << 20  # the first compile only sizes the program: fails fast when huge
_R1_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
# RE2's own words for syntax it lacks, and what to write instead.
_RE2_HINTS = (("invalid escape sequence: \\", "backreferences (\\1) are not supported: match the text itself, "
                                              "or check the repetition in a separate component"),
              ("invalid perl operator: (?=", "lookaround ((?=, (?!, (?<=, (?<!) is not supported"),
              ("invalid perl operator: (?!", "lookaround ((?=, (?!, (?<=, (?<!) is not supported"),
              ("invalid perl operator: (?<", "lookaround ((?=, (?!, (?<=, (?<!) is not supported"),
              ("invalid repetition size", "nested counted repetitions may expand to at most 1000 copies"),
              ("pattern too large", f"it compiles to far more than {MAX_PROGRAM_SIZE:,} instructions"))


def _re2(pattern: str, max_mem: int) -> Any:
    options = re2.Options()
    options.dot_nl = True
    options.never_capture = True
    options.log_errors = False
    options.max_mem = max_mem
    return re2.compile(pattern.encode("utf-8", "surrogatepass"), options)


@functools.lru_cache(maxsize=16)  # each may hold up to RE2_MAX_MEM_BYTES of DFA states
def compile_pattern(pattern: str) -> Any:
    """The RE2 program of `pattern` (UTF-8 bytes, DOTALL, groups not captured: only
    whether it matches is asked, which lets RE2 answer with its DFA), cached per process.

    Raises ValueError saying what to change when RE2 refuses it (syntax it lacks, more
    than 1000 nested repeats) or it compiles to more than MAX_PROGRAM_SIZE instructions."""
    try:
        sized = _re2(pattern, _RE2_SIZING_MEM_BYTES)
    except re2.error as e:
        why = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        hint = next((h for key, h in _RE2_HINTS if key in why), "")
        raise ValueError(f"params.pattern is not a pattern RE2 accepts ({why})" + (f": {hint}" if hint else "")
                         + "; see https://github.com/google/re2/wiki/Syntax") from None
    if sized.programsize > MAX_PROGRAM_SIZE:
        raise ValueError(f"params.pattern compiles to {sized.programsize:,} RE2 instructions, more than "
                         f"{MAX_PROGRAM_SIZE:,}: use smaller counted repeats or fewer Unicode classes")
    return _re2(pattern, RE2_MAX_MEM_BYTES)


class FormatParams(Params):
    kind: Literal["r1", "tags", "regex", "length"] = "r1"
    strict: bool = Field(True, description="r1 only: whole completion must be the two blocks")
    tags: list[str] = Field(default_factory=lambda: ["think", "answer"], max_length=16,
                            description="tags kind only: tag names, at most 16")
    pattern: str | None = Field(None, max_length=MAX_PATTERN_CHARS,
                                description="regex kind: the pattern (RE2 syntax, linear-time)")
    full_match: bool = Field(False, description="regex kind: the whole completion must match")
    timeout_s: float = Field(1.0, gt=0, le=10, description="unused since 2.0.0 (RE2 matching is linear-time); "
                                                           "accepted so specs written for 1.0.0 validate")
    min_chars: int = Field(0, ge=0, description="length kind: lower bound, characters")
    max_chars: int | None = Field(None, ge=0, description="length kind: upper bound, characters")

    @field_validator("tags")
    @classmethod
    def _tag_names(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not t or len(t) > 64 or any(c in t for c in "<>/ \t\n")]
        if bad:
            raise ValueError(f"each tag is a bare name of 1-64 characters without <, >, / or spaces; bad: {bad[:3]}")
        return v

    @model_validator(mode="after")
    def _check(self) -> "FormatParams":
        if self.kind == "regex":
            if not self.pattern:
                raise ValueError("kind 'regex' needs params.pattern")
            compile_pattern(self.pattern)
        if self.kind == "tags" and not self.tags:
            raise ValueError("kind 'tags' needs a non-empty params.tags")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError("params.max_chars is below params.min_chars")
        return self


def _r1(text: str, strict: bool) -> VerifierResult:
    counts = [text.count(t) for t in _R1_TAGS]
    bad = [f"{t}×{n}" for t, n in zip(_R1_TAGS, counts) if n != 1]
    if bad:
        return VerifierResult.ok(0.0, f"each tag must appear exactly once: {', '.join(bad)}")
    i_think, i_think_end, i_answer, i_answer_end = (text.index(t) for t in _R1_TAGS)
    if not i_think < i_think_end < i_answer < i_answer_end:
        return VerifierResult.ok(0.0, "tags out of order (need <think>…</think> then <answer>…</answer>)")
    if strict and (text[:i_think].strip() or text[i_think_end + len("</think>"):i_answer].strip()
                   or text[i_answer_end + len("</answer>"):].strip()):
        return VerifierResult.ok(0.0, "text outside the <think> and <answer> blocks (strict)")
    empty = [name for name, body in (("think", text[i_think + len("<think>"):i_think_end]),
                                     ("answer", text[i_answer + len("<answer>"):i_answer_end]))
             if not body.strip()]
    if empty:
        return VerifierResult.ok(0.0, f"empty <{'>, <'.join(empty)}> block")
    return VerifierResult.ok(1.0, "exactly <think>…</think><answer>…</answer>" if strict
                             else "think then answer blocks present (lenient)")


def _tag_problem(text: str, tag: str) -> str:
    """Why `<tag>…</tag>` is not one well-formed pair around non-blank text ("" when it is)."""
    open_, close = f"<{tag}>", f"</{tag}>"
    n_open, n_close = text.count(open_), text.count(close)
    if n_open != 1 or n_close != 1:
        return f"{tag} ({n_open} open, {n_close} close)"
    start, end = text.index(open_) + len(open_), text.index(close)
    if start > end:
        return f"{tag} (closed before opened)"
    if not text[start:end].strip():
        return f"{tag} (empty)"
    return ""


def _tags(text: str, tags: list[str]) -> VerifierResult:
    problems = [p for p in (_tag_problem(text, t) for t in tags) if p]
    good = len(tags) - len(problems)
    reason = f"{good}/{len(tags)} tag pairs well formed" + (f"; bad: {', '.join(problems)}" if problems else "")
    return VerifierResult.ok(good / len(tags), reason)


@register
class FormatVerifier(Verifier):
    name = "format"
    version = "2.0.0"  # 2.0: linear-time checks, RE2 patterns, empty blocks earn nothing (issue #17)
    description = ("Structure checks: R1 think/answer blocks, tag counts, an RE2 regex, length bounds. "
                   "Linear-time; empty blocks earn no credit.")
    Params = FormatParams
    isolated = False
    requires_reference = False

    def verify(self, completion: str, reference: Any, params: FormatParams) -> VerifierResult:
        if params.kind == "length":
            n = len(completion)
            hi = params.max_chars if params.max_chars is not None else float("inf")
            ok = params.min_chars <= n <= hi
            return VerifierResult.ok(float(ok), f"{n} chars, bounds [{params.min_chars}, {params.max_chars}]")
        if len(completion) > MAX_INPUT_CHARS:
            return VerifierResult.ok(0.0, f"completion of {len(completion):,} chars is over the format check's "
                                          f"limit of {MAX_INPUT_CHARS:,}")
        if params.kind == "r1":
            return _r1(completion, params.strict)
        if params.kind == "tags":
            return _tags(completion, params.tags)
        program = compile_pattern(params.pattern)
        text = completion.encode("utf-8", "surrogatepass")
        may_scan = REGEX_WORK_BUDGET // program.programsize
        if len(text) > may_scan:
            return VerifierResult.ok(0.0, f"completion of {len(text):,} bytes is over the {may_scan:,} that this "
                                          f"pattern ({program.programsize:,} RE2 instructions) may scan")
        hit = (program.fullmatch(text) if params.full_match else program.search(text)) is not None
        return VerifierResult.ok(float(hit), f"pattern {'matched' if hit else 'did not match'}")
