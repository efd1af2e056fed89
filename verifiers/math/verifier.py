"""The `math` verifier: does the completion's final answer equal the reference?

    completion ──extract_answer──▶ answer text ──parse_answer──▶ tree ─┐
    reference  ──unwrap_reference─▶ gold text ──parse_answer──▶ tree ─┴─ answers_equal ─▶ 1.0 / 0.0

Outcomes: OK 1.0 / 0.0 with what was extracted and why; ABSTAIN when no answer is
found or an answer is refused as unsafe to evaluate (guards); ERROR if SymPy fails in a
way we do not handle; InvalidReferenceError for a reference that is not a non-empty
string or `{"answer": str}`. It runs in the worker pool (`isolated`): SymPy on
adversarial input that passes the guards is killed there at `timeout_s` (TIMEOUT).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..core import Params, Verifier, VerifierResult
from ..errors import InvalidReferenceError
from ..registry import register
from . import guards
from .equivalence import Policy, answers_equal
from .extract import Extraction, extract_answer, reference_answer
from .normalize import clean, decimal_comma_number
from .parse import Expr, Node, parse_answer, split_top, unwrap_math_fonts

# Reasons quote at most this much of an answer.
_QUOTE_CHARS = 80


class MathParams(Params):
    """Parameters of `math` (defaults are the documented policy; see `equivalence`)."""

    rel_tol: float = Field(1e-9, ge=0, le=0.1, description=(
        "relative tolerance between two decimals (or a decimal and a terminating fraction) when "
        "the reference is not an integer; an integer reference is matched exactly, and a decimal "
        "against 1/3, sqrt(2) or pi is a rounded answer (rounding_sig_digits), never a tolerance"))
    rounding_sig_digits: int | None = Field(None, ge=1, le=15, description=(
        "accept a decimal with at least this many significant digits for an exact value that "
        "rounds to it (0.333 = 1/3 at 3; a truncation 0.666 is not 2/3); null = strict: a "
        "rounded decimal is wrong"))
    accept_truncation: bool = Field(False, description=(
        "with rounding_sig_digits set, also accept a decimal that truncates the exact value "
        "(0.666 = 2/3, 41.494 = 17 + 10 sqrt(6)); off: only a correct rounding"))
    percent_policy: Literal["either", "strip", "fraction"] = Field("either", description=(
        "how a % answer reads: 'either' 50% = 50 or 0.5; 'strip' 50% = 50; 'fraction' 50% = 0.5"))
    decimal_comma: Literal["auto", "never", "always"] = Field("auto", description=(
        "`1,22` (a comma between digits, not before exactly 3 digits): 'auto' a decimal point "
        "when the other side is one decimal number, else a list separator; 'never'; 'always'"))
    ordered_lists: bool = Field(False, description=(
        "bare comma lists must match in order (tuples in parentheses are always ordered)"))
    unanswered: Literal["zero", "abstain"] = Field("zero", description=(
        "a completion with no final answer, or one too large to evaluate: reward 0 ('zero': "
        "trainers must not skip it) or ABSTAIN"))


def _quote(s: str) -> str:
    s = " ".join(s.split())
    return s if len(s) <= _QUOTE_CHARS else s[:_QUOTE_CHARS - 1] + "…"


def reference_text(reference: Any) -> str:
    """The gold answer as a string; raises InvalidReferenceError naming the problem."""
    if isinstance(reference, dict):
        if set(reference) - {"answer"} or "answer" not in reference:
            raise InvalidReferenceError(
                f"math reference object must be {{'answer': str}}, got keys {sorted(reference)}")
        reference = reference["answer"]
    if not isinstance(reference, str):
        raise InvalidReferenceError(
            f"math reference must be a string or {{'answer': str}}, got {type(reference).__name__}")
    text = reference_answer(reference)
    if not text.strip():
        raise InvalidReferenceError("math reference is empty")
    return text


@register
class MathVerifier(Verifier):
    """math@2.1.0. Changes from 2.0.0 (kept registered as `MathVerifierV2_0`), both found by
    the held-out answer-forms suite: a font around math is the math (`\\mathbf{8}` = 8,
    `\\text{12}` = 12: `unwrap_math_fonts`), and the same answer boxed more than once is one
    answer (`\\boxed{12} \\boxed{12}` = 12) unless the reference is itself a list."""

    name = "math"
    version = "2.1.0"
    # 2.1.0's two reading rules (off in 2.0.0, so its stored verdicts replay unchanged).
    fonts_and_repeated_boxes = True
    description = ("Final answer (\\boxed{}, <answer>, 'the answer is', else the last number) "
                   "equals the reference: numbers, fractions, LaTeX, sets, intervals, tuples, "
                   "equations, units and percentages, via SymPy with safety guards")
    Params = MathParams
    isolated = True
    timeout_s = 3.0

    def verify(self, completion: str, reference: Any, params: MathParams) -> VerifierResult:
        gold = reference_text(reference)
        found = extract_answer(completion or "")
        if found is None:
            return self._unanswered(params, "no final answer found (no \\boxed{}, answer tag, "
                                            "'answer is' phrase or number)", {"reference": gold})
        details = {"extracted": found.text, "reference": gold, "method": found.method}
        if self.fonts_and_repeated_boxes:
            found = _one_answer_if_repeated(found, gold)
            found = Extraction(unwrap_math_fonts(found.text), found.method, found.parts)
            gold = unwrap_math_fonts(gold)
            details["method"] = found.method
        shown = f"{_quote(found.text)!r} ({found.method}) vs {_quote(gold)!r}"
        comma_sensitive = params.decimal_comma == "always" and ("," in found.text or "," in gold)
        if not comma_sensitive and clean(found.text).replace(" ", "") == clean(gold).replace(" ", ""):
            return VerifierResult.ok(1.0, f"{shown}: same after normalisation", **details)
        policy = Policy(rel_tol=params.rel_tol, percent_policy=params.percent_policy,
                        ordered_lists=params.ordered_lists, rounding_sig_digits=params.rounding_sig_digits,
                        accept_truncation=params.accept_truncation)
        side = "reference"
        try:
            gold_tree = parse_answer(gold)
            side = "answer"
            pred_tree = parse_answer(found.text)
            pred_tree, gold_tree, comma = _read_decimal_commas(found.text, pred_tree, gold, gold_tree,
                                                               params.decimal_comma)
            side = "comparison"
            ok, why = answers_equal(pred_tree, gold_tree, policy)
        except (guards.UnsafeInput, RecursionError) as e:
            why = str(e) if isinstance(e, guards.UnsafeInput) else "nested too deeply to evaluate"
            if side == "reference":
                return VerifierResult.abstain(f"reference refused: {why}", **details)
            return self._unanswered(params, f"answer refused: {why}", details)
        except MemoryError:
            raise  # the pool reports the memory limit
        except Exception as e:  # a SymPy corner we do not handle: say so, never a silent 0
            return VerifierResult.error(f"{side} failed: {type(e).__name__}: {str(e)[:200]}", **details)
        return VerifierResult.ok(1.0 if ok else 0.0, f"{shown}: {why}{comma}", **details)

    @staticmethod
    def _unanswered(params: MathParams, why: str, details: dict) -> VerifierResult:
        """No gradable answer: the completion's own fault, so a verdict (0) unless asked to abstain."""
        if params.unanswered == "abstain":
            return VerifierResult.abstain(why, **details)
        return VerifierResult.ok(0.0, f"{why}: reward 0 (params.unanswered = 'zero')", **details)


@register
class MathVerifierV2_0(MathVerifier):
    """math@2.0.0, kept for replaying stored history: 2.1.0 without its two reading rules."""

    version = "2.0.0"
    fonts_and_repeated_boxes = False


def _one_answer_if_repeated(found: Extraction, gold: str) -> Extraction:
    """Boxes that all hold the same answer (`\\boxed{12} \\boxed{12}`) are that one answer,
    unless the reference is a list (`3, 3` for a double root), which the boxes then answer."""
    if found.method != "boxes" or len(split_top(clean(gold))) > 1:
        return found
    keys = {clean(p).replace(" ", "") for p in found.parts}
    if len(keys) != 1:
        return found
    return Extraction(found.parts[-1], "boxes, all the same answer")


def _is_decimal(node: Node) -> bool:
    return isinstance(node, Expr) and node.inexact and not node.value.free_symbols


def _read_decimal_commas(pred_text: str, pred: Node, gold_text: str, gold: Node,
                         policy: str) -> tuple[Node, Node, str]:
    """Re-read `1,22` as 1.22 on either side under the `decimal_comma` policy (see
    MathParams); returns both trees and a note for the reason ("" when nothing changed)."""
    if policy == "never":
        return pred, gold, ""
    p, g = decimal_comma_number(pred_text), decimal_comma_number(gold_text)
    note = []
    if p is not None and (policy == "always" or _is_decimal(gold) or g is not None):
        pred = parse_answer(p)
        note.append(f"answer {_quote(pred_text)!r} read with a decimal comma as {p}")
    if g is not None and (policy == "always" or _is_decimal(pred) or p is not None):
        gold = parse_answer(g)
        note.append(f"reference {_quote(gold_text)!r} read with a decimal comma as {g}")
    if not note:
        return pred, gold, ""
    return pred, gold, f" ({'; '.join(note)}: decimal_comma = {policy!r})"
