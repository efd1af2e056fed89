"""Format checks: the R1 `<think>…</think><answer>…</answer>` structure, tag counts, a
user regex and length bounds. Cheap and deterministic, so they run inline.

`kind` selects the check:
- "r1": strict = the whole completion is exactly one think block then one answer block
  (whitespace allowed between and around); lenient = each tag appears exactly once and in
  order, text may surround them.
- "tags": partial credit per well-formed tag pair (the R1-style tag-count reward): each of
  `tags` present exactly once as an open/close pair earns 1/len(tags).
- "regex": 1 when `pattern` matches (re.search; `full_match` for re.fullmatch), DOTALL.
- "length": 1 when min_chars <= len(completion) <= max_chars.
"""
from __future__ import annotations

import re

import regex
from typing import Any, Literal

from pydantic import Field, model_validator

from .core import Params, Verifier, VerifierResult
from .registry import register

_R1_STRICT = re.compile(r"\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*", re.S)


class FormatParams(Params):
    kind: Literal["r1", "tags", "regex", "length"] = "r1"
    strict: bool = Field(True, description="r1 only: whole completion must be the two blocks")
    tags: list[str] = Field(default_factory=lambda: ["think", "answer"], description="tags kind only")
    pattern: str | None = Field(None, description="regex kind: the pattern (Python re)")
    full_match: bool = Field(False, description="regex kind: re.fullmatch instead of re.search")
    timeout_s: float = Field(1.0, gt=0, le=10, description="regex kind: matching time limit, seconds")
    min_chars: int = Field(0, ge=0, description="length kind: lower bound, characters")
    max_chars: int | None = Field(None, ge=0, description="length kind: upper bound, characters")

    @model_validator(mode="after")
    def _check(self) -> "FormatParams":
        if self.kind == "regex":
            if not self.pattern:
                raise ValueError("kind 'regex' needs params.pattern")
            try:
                regex.compile(self.pattern)
            except regex.error as e:
                raise ValueError(f"params.pattern is not a valid regex: {e}") from None
        if self.kind == "tags" and not self.tags:
            raise ValueError("kind 'tags' needs a non-empty params.tags")
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError("params.max_chars is below params.min_chars")
        return self


def _r1(text: str, strict: bool) -> VerifierResult:
    if strict:
        m = _R1_STRICT.fullmatch(text)
        if m and not any(t in m["think"] + m["answer"] for t in ("<think>", "</think>", "<answer>", "</answer>")):
            return VerifierResult.ok(1.0, "exactly <think>…</think><answer>…</answer>")
        return VerifierResult.ok(0.0, "not exactly <think>…</think><answer>…</answer> (strict)")
    counts = {t: text.count(t) for t in ("<think>", "</think>", "<answer>", "</answer>")}
    bad = [f"{t}×{n}" for t, n in counts.items() if n != 1]
    if bad:
        return VerifierResult.ok(0.0, f"each tag must appear once: {', '.join(bad)}")
    order = [text.index(t) for t in ("<think>", "</think>", "<answer>", "</answer>")]
    if order != sorted(order):
        return VerifierResult.ok(0.0, "tags out of order")
    return VerifierResult.ok(1.0, "think then answer blocks present (lenient)")


def _tags(text: str, tags: list[str]) -> VerifierResult:
    good = [t for t in tags if text.count(f"<{t}>") == 1 and text.count(f"</{t}>") == 1
            and text.index(f"<{t}>") < text.index(f"</{t}>")]
    missing = [t for t in tags if t not in good]
    reason = f"{len(good)}/{len(tags)} tag pairs well formed" + (f"; bad: {', '.join(missing)}" if missing else "")
    return VerifierResult.ok(len(good) / len(tags), reason)


@register
class FormatVerifier(Verifier):
    name = "format"
    version = "1.0.0"
    description = "Structure checks: R1 think/answer blocks, tag counts, a regex, length bounds."
    Params = FormatParams
    isolated = False
    requires_reference = False

    def verify(self, completion: str, reference: Any, params: FormatParams) -> VerifierResult:
        if params.kind == "r1":
            return _r1(completion, params.strict)
        if params.kind == "tags":
            return _tags(completion, params.tags)
        if params.kind == "regex":
            # The `regex` engine takes a timeout: a user pattern with catastrophic
            # backtracking becomes TIMEOUT instead of a thread stuck in `re`.
            match = regex.fullmatch if params.full_match else regex.search
            try:
                hit = match(params.pattern, completion, regex.S, timeout=params.timeout_s) is not None
            except TimeoutError:
                return VerifierResult.timeout(f"pattern ran past {params.timeout_s:g} s (backtracking)")
            return VerifierResult.ok(float(hit), f"pattern {'matched' if hit else 'did not match'}")
        n = len(completion)
        hi = params.max_chars if params.max_chars is not None else float("inf")
        ok = params.min_chars <= n <= hi
        return VerifierResult.ok(float(ok), f"{n} chars, bounds [{params.min_chars}, {params.max_chars}]")
