"""`format@1.0.0`, frozen: the format checks as they scored before 2.0.0 (issue #17).

Kept registered so that specs pinned to 1.0.0 keep validating and `rewardctl replay
--verifier format@1.0.0` re-scores stored history with the old verdicts. Two changes
bound what it can do to the process that runs it, and neither changes a verdict it used
to give in time:
- it runs in the killable worker pool (`isolated`), so its quadratic strict R1 check and
  the `regex` engine's backtracking end as TIMEOUT at the pool's wall-clock limit instead
  of holding the server's GIL;
- its pattern is sized from Python's own regex parser before `regex` ever compiles it:
  `regex` expands nested counted repeats at compile time (33 characters of
  `(?:(?:(?:a{100}){100}){100}){100}` asked for 10^8 copies and OOM-killed the server),
  so a pattern whose expansion exceeds MAX_EXPANDED_ITEMS, that Python's parser cannot
  size, or longer than MAX_PATTERN_CHARS, is refused. Such patterns belong to format@2.0.0 (RE2).
Fixes go to verifiers/format.py, never here.

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

try:  # Python >= 3.11
    from re import _constants as _sre_constants, _parser as _sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

# Items the compiled pattern may hold once counted repeats are expanded: 10^5 is ~30 MB of
# `regex` program (10^6 took 280 MB and 0.8 s to compile).
MAX_EXPANDED_ITEMS = 100_000
MAX_PATTERN_CHARS = 10_000  # sizing is linear, but runs where the request is validated
_REPEATS = {_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT,
            getattr(_sre_constants, "POSSESSIVE_REPEAT", _sre_constants.MAX_REPEAT)}


def _expanded_items(items) -> int:
    """Upper bound on the items of a parsed pattern with each counted repeat unrolled."""
    total = 0
    for op, av in items:
        if op in _REPEATS:
            lo, hi, sub = av
            count = hi if hi != _sre_constants.MAXREPEAT else lo
            total += max(1, count) * _expanded_items(sub)
        elif op is _sre_constants.BRANCH:
            total += sum(_expanded_items(b) for b in av[1])
        elif op is _sre_constants.SUBPATTERN:
            total += _expanded_items(av[-1])
        elif op in (_sre_constants.ASSERT, _sre_constants.ASSERT_NOT):
            total += _expanded_items(av[1])
        elif op is getattr(_sre_constants, "ATOMIC_GROUP", None):
            total += _expanded_items(av)
        elif op is _sre_constants.GROUPREF_EXISTS:
            total += _expanded_items(av[1]) + (_expanded_items(av[2]) if av[2] is not None else 0)
        else:
            total += 1
        if total > MAX_EXPANDED_ITEMS:
            return total
    return total


def check_pattern_size(pattern: str) -> None:
    """Raise ValueError when `regex` would expand `pattern` past MAX_EXPANDED_ITEMS or
    Python's parser cannot size it. Never compiles the pattern."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"params.pattern: format@1.0.0 sizes patterns of at most {MAX_PATTERN_CHARS:,} characters "
                         f"(this one has {len(pattern):,})")
    try:
        parsed = _sre_parse.parse(pattern, _sre_constants.SRE_FLAG_DOTALL)
    except (_sre_constants.error, RecursionError, OverflowError) as e:
        raise ValueError(f"params.pattern: format@1.0.0 cannot size this pattern ({e}); "
                         f"use format@2.0.0 (RE2 syntax)") from None
    if _expanded_items(parsed) > MAX_EXPANDED_ITEMS:
        raise ValueError(f"params.pattern: its counted repetitions expand past {MAX_EXPANDED_ITEMS:,} items "
                         f"when compiled; nest fewer or smaller {{m,n}} repeats")

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
            check_pattern_size(self.pattern)
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
    description = ("Structure checks: R1 think/answer blocks, tag counts, a regex, length bounds (frozen; "
                   "format@2.0.0 is linear-time and gives empty blocks no credit).")
    Params = FormatParams
    isolated = True
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
