"""Reading a judge's answer: pure functions, no I/O, tested with tables.

    parse_score("…so I give it 7/10. Score: 7", 1, 10)     -> Parsed(ok, 0.667, "score 7 on [1, 10]")
    parse_verdict("Verdict: INCORRECT", {"correct": 1, "incorrect": 0})  -> Parsed(ok, 0.0, …)
    yes_probability([(" Yes", [(" Yes", -0.1), (" No", -2.4)])])         -> Parsed(ok, 0.909, …)
    detect_refusal("I'm sorry, but I can't help with that.")              -> "I'm sorry"

Every function returns a `Parsed` whose `kind` is "ok" (value in [0, 1]), "unparseable"
or "refusal", with `detail` saying what was found; the verifiers turn that into a status
(OK / ERROR / ABSTAIN) and never into a reward of 0.

Two readings of a text answer:
- strict (`final_score`, `final_verdict`; judges from 1.2.0): only the answer's last
  non-blank line counts, and it must be the verdict alone (`Score: 7`, `Rating: [[7]]`,
  `7/10`, `Verdict: CORRECT`, `Yes`; markdown emphasis and a final period allowed). A
  judge that rejects a response but quotes its `[[10]]` or `Verdict: CORRECT` elsewhere,
  or answers only `:` / "Thought process:", gives no verdict: unparseable, never a pass.
- lenient (`parse_score`, `parse_verdict`; frozen for judges 1.0.0 and 1.1.0): the
  patterns below anywhere in the text, so a quoted grade could be read as the judge's
  (issue #17, finding 12).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

_NUM = r"[-+]?\d+(?:\.\d+)?"
# Highest priority first; within one pattern the *last* match wins (judges reason, then score).
_BRACKETED = re.compile(rf"\[\[\s*({_NUM})\s*\]\]")                              # MT-Bench: [[7]]
_LABELLED = re.compile(rf"\b(?:final\s+)?(?:score|rating|grade)\b\s*[*_]*\s*(?:is|of|=|:)\s*[*_\[(]*\s*({_NUM})",
                       re.I)
_FRACTION = re.compile(rf"({_NUM})\s*(?:/|out\s+of)\s*({_NUM})", re.I)            # 7/10, 7 out of 10
_BARE = re.compile(rf"[*_\s\[(]*({_NUM})[*_\s\]).]*")                            # the whole answer is a number

_VERDICT_LABEL = r"\b(?:final\s+)?(?:verdict|judg(?:e)?ment|decision|answer)\b\s*[*_]*\s*(?::|=|is)\s*[*_\"'\[(]*\s*"
_NEGATION = re.compile(r"\b(?:not|isn't|is\s+not|never)\s+$", re.I)

_REFUSAL = re.compile(
    r"^\W*(?:i'?m\s+sorry|i\s+am\s+sorry|sorry,|i\s+(?:can(?:no|')t|cannot|won'?t|am\s+(?:not\s+able|unable)|"
    r"(?:must|have\s+to)\s+decline)|as\s+an\s+ai\b|i'?m\s+(?:not\s+able|unable))", re.I)
_STRIP_TOKEN = ".,:;!?\"'*`()[]"


@dataclass(frozen=True)
class Parsed:
    """The reading of one judge answer. `value` is in [0, 1] exactly when kind is "ok"."""

    kind: Literal["ok", "unparseable", "refusal"]
    value: float | None
    detail: str
    raw: float | str | None = None  # the number or word found, before normalisation

    @classmethod
    def ok(cls, value: float, detail: str, raw: float | str | None = None) -> "Parsed":
        return cls("ok", min(1.0, max(0.0, float(value))), detail, raw)

    @classmethod
    def fail(cls, detail: str) -> "Parsed":
        return cls("unparseable", None, detail)


def normalise(x: float, lo: float, hi: float) -> float:
    """Map x on the scale [lo, hi] to [0, 1]: (x - lo) / (hi - lo)."""
    if hi <= lo:
        raise ValueError(f"scale [{lo}, {hi}] is empty")
    return (x - lo) / (hi - lo)


def parse_score(text: str, scale_min: float, scale_max: float) -> Parsed:
    """A number on the scale [scale_min, scale_max], normalised to [0, 1].

    Looked for, in this order: `[[x]]`; `Score: x` (also rating/grade, `is`/`=`, markdown
    bold); `x/max` or `x out of max` with max == scale_max; the whole answer being a
    number. The last match of the first pattern that matches wins. A number off the
    scale is unparseable, not clipped.
    """
    found: tuple[float, str] | None = None
    for pattern, how in ((_BRACKETED, "[[x]]"), (_LABELLED, "labelled")):
        matches = pattern.findall(text)
        if matches:
            found = (float(matches[-1]), how)
            break
    if found is None:
        fractions = [(float(a), float(b)) for a, b in _FRACTION.findall(text) if float(b) == scale_max]
        if fractions:
            found = (fractions[-1][0], f"x/{scale_max:g}")
    if found is None:
        m = _BARE.fullmatch(text.strip())
        if m:
            found = (float(m.group(1)), "bare number")
    if found is None:
        return Parsed.fail(f"no score on the scale [{scale_min:g}, {scale_max:g}] found")
    x, how = found
    if not (scale_min <= x <= scale_max):
        return Parsed.fail(f"score {x:g} ({how}) is outside the scale [{scale_min:g}, {scale_max:g}]")
    return Parsed.ok(normalise(x, scale_min, scale_max), f"score {x:g} on [{scale_min:g}, {scale_max:g}] ({how})", x)


def _verdict_alternation(verdicts: Iterable[str]) -> str:
    # Longest first, so that "incorrect" is tried before "correct" and "partially correct" before both.
    words = sorted({w.lower() for w in verdicts}, key=len, reverse=True)
    return "|".join(r"\s+".join(re.escape(p) for p in w.split()) for w in words)


def parse_verdict(text: str, verdicts: Mapping[str, float]) -> Parsed:
    """A verdict word (case-insensitive, whole words) mapped to its value in [0, 1].

    `Verdict: X` (also judgement/decision/answer) wins; otherwise the last verdict word
    in the text that is not negated ("not correct" is skipped). None found: unparseable.
    """
    if not verdicts:
        raise ValueError("no verdict words given")
    table = {" ".join(k.lower().split()): float(v) for k, v in verdicts.items()}
    alt = _verdict_alternation(table)
    labelled = re.findall(rf"{_VERDICT_LABEL}({alt})\b", text, re.I)
    if labelled:
        word = " ".join(labelled[-1].lower().split())
        return Parsed.ok(table[word], f"verdict {word!r} (labelled) = {table[word]:g}", word)
    hits = []
    for m in re.finditer(rf"\b({alt})\b", text, re.I):
        if not _NEGATION.search(text[max(0, m.start() - 20):m.start()]):
            hits.append(" ".join(m.group(1).lower().split()))
    if not hits:
        return Parsed.fail(f"no verdict word ({', '.join(sorted(table))}) found")
    word = hits[-1]
    return Parsed.ok(table[word], f"verdict {word!r} = {table[word]:g}", word)


# The judge's final line: at most this long, so the strict patterns never see more.
MAX_FINAL_LINE_CHARS = 200
_DECOR = r"[\s*_#>`]*"
_FINAL_SCORE = re.compile(
    rf"{_DECOR}(?:(?:final\s+)?(?:score|rating|grade){_DECOR}[:=]{_DECOR})?"
    rf"(?:\[\[\s*(?P<bracketed>{_NUM})\s*\]\]|(?P<number>{_NUM}))"
    rf"(?:\s*(?:/|out\s+of)\s*(?P<max>{_NUM}))?{_DECOR}\.?{_DECOR}", re.I)
_FINAL_VERDICT_LABEL = rf"{_DECOR}(?:(?:final\s+)?(?:verdict|judg(?:e)?ment|decision|answer){_DECOR}[:=]{_DECOR})?"


def final_line(text: str) -> str | None:
    """The answer's last non-blank line, stripped; None when there is none or it is longer
    than MAX_FINAL_LINE_CHARS (a verdict line is short)."""
    stripped = text.rstrip()
    line = stripped[stripped.rfind("\n") + 1:].strip()
    return line if line and len(line) <= MAX_FINAL_LINE_CHARS else None


def _shown(line: str | None, text: str) -> str:
    return repr(line) if line is not None else ("nothing" if not text.strip() else "a line too long for a verdict")


def final_score(text: str, scale_min: float, scale_max: float) -> Parsed:
    """The score on the answer's last line, normalised to [0, 1] (strict reading, module doc).

    The line must be the score alone: `Score: x`, `Final score: x`, `Rating: [[x]]`,
    `[[x]]`, `x`, optionally `/max` or `out of max` with max == scale_max. A number off the
    scale is unparseable, not clipped."""
    line = final_line(text)
    m = _FINAL_SCORE.fullmatch(line) if line is not None else None
    if m is None:
        return Parsed.fail(f"the last line is not 'Score: N' on [{scale_min:g}, {scale_max:g}] "
                           f"(it is {_shown(line, text)})")
    if m["max"] is not None and float(m["max"]) != scale_max:
        return Parsed.fail(f"the last line {line!r} scores out of {m['max']}, not {scale_max:g}")
    x = float(m["bracketed"] or m["number"])
    if not (scale_min <= x <= scale_max):
        return Parsed.fail(f"score {x:g} on the last line is outside the scale [{scale_min:g}, {scale_max:g}]")
    return Parsed.ok(normalise(x, scale_min, scale_max), f"score {x:g} on [{scale_min:g}, {scale_max:g}] "
                                                         f"(last line)", x)


def final_verdict(text: str, verdicts: Mapping[str, float]) -> Parsed:
    """The verdict word on the answer's last line, mapped to its value in [0, 1] (strict
    reading, module doc): `Verdict: X` (also final verdict, judgement, decision, answer) or
    the word alone, case-insensitive. "Verdict: NOT CORRECT" is no verdict."""
    if not verdicts:
        raise ValueError("no verdict words given")
    table = {" ".join(k.lower().split()): float(v) for k, v in verdicts.items()}
    line = final_line(text)
    m = (re.fullmatch(rf"{_FINAL_VERDICT_LABEL}[\"'\[(]*({_verdict_alternation(table)})[\"'\])]*{_DECOR}[.!]?{_DECOR}",
                      line, re.I) if line is not None else None)
    if m is None:
        return Parsed.fail(f"the last line is not one of the verdicts ({', '.join(sorted(table))}) "
                           f"(it is {_shown(line, text)})")
    word = " ".join(m.group(1).lower().split())
    return Parsed.ok(table[word], f"verdict {word!r} = {table[word]:g} (last line)", word)


def _norm_token(tok: str) -> str:
    # OpenAI/vLLM send decoded token strings; SentencePiece ("▁") and byte-level BPE ("Ġ")
    # markers appear when a server sends raw pieces.
    return tok.replace("▁", " ").replace("Ġ", " ").strip().strip(_STRIP_TOKEN).lower()


def yes_probability(positions: Sequence[tuple[str, Sequence[tuple[str, float]]]], *,
                    yes_words: Iterable[str] = ("yes",), no_words: Iterable[str] = ("no",),
                    min_mass: float = 0.1) -> Parsed:
    """P(yes) / (P(yes) + P(no)) at the answer's first content token.

    `positions` is, per generated token, `(chosen token, [(candidate, logprob), …])`
    (the `top_logprobs` of a chat completion). Leading tokens that are only whitespace,
    punctuation or markup are skipped. Candidates are compared case-insensitively after
    stripping spaces and punctuation, and their probabilities summed ("Yes" + " yes").
    When yes and no together hold less than `min_mass` of the probability at that token
    the judge did not answer yes or no: unparseable.
    """
    yes = {w.lower() for w in yes_words}
    no = {w.lower() for w in no_words}
    for i, (chosen, top) in enumerate(positions):
        if not _norm_token(chosen):
            continue
        p_yes = sum(math.exp(lp) for t, lp in top if _norm_token(t) in yes)
        p_no = sum(math.exp(lp) for t, lp in top if _norm_token(t) in no)
        mass = p_yes + p_no
        if mass < min_mass or mass == 0:
            return Parsed.fail(f"answer token {i} {chosen!r}: P(yes)+P(no) = {mass:.3g} < {min_mass:g} "
                               f"among the top log-probabilities")
        return Parsed.ok(p_yes / mass, f"P(yes)={p_yes:.4f} P(no)={p_no:.4f} at token {i} {chosen!r}", p_yes)
    return Parsed.fail("no answer token (empty or only whitespace/punctuation)")


def yes_probability_from_probs(p_yes: float, p_no: float, *, min_mass: float = 0.1) -> Parsed:
    """The same rule for a local model, given the next-token probabilities summed over the
    yes and no token ids."""
    mass = p_yes + p_no
    if mass < min_mass or mass == 0:
        return Parsed.fail(f"P(yes)+P(no) = {mass:.3g} < {min_mass:g} at the answer token")
    return Parsed.ok(p_yes / mass, f"P(yes)={p_yes:.4f} P(no)={p_no:.4f}", p_yes)


def detect_refusal(text: str) -> str | None:
    """The refusal phrase that opens `text` ("I'm sorry", "I can't", "As an AI"…), or None.

    Only the opening counts: reasoning that later says "I cannot see an error" is not a
    refusal. Callers check this only after parsing failed.
    """
    m = _REFUSAL.match(text)
    return m.group(0).strip() if m else None


__all__ = ["Parsed", "normalise", "parse_score", "parse_verdict", "final_score", "final_verdict", "final_line",
           "yes_probability", "yes_probability_from_probs", "detect_refusal"]
