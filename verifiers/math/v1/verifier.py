"""The `math` verifier, version 1.0.0 (frozen; see `verifiers/math/v1/__init__.py`): does the completion's final answer equal the reference?

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

from ...core import Params, Verifier, VerifierResult
from ...errors import InvalidReferenceError
from ...registry import register
from . import guards
from .equivalence import Policy, answers_equal
from .extract import extract_answer, unwrap_reference
from .normalize import clean
from .parse import parse_answer

# Reasons quote at most this much of an answer.
_QUOTE_CHARS = 80


class MathParams(Params):
    """Parameters of `math` (defaults are the documented policy; see `equivalence`)."""

    rel_tol: float = Field(1e-6, ge=0, le=0.1, description=(
        "relative tolerance when either side is written as a decimal; exact forms compare exactly"))
    percent_policy: Literal["either", "strip", "fraction"] = Field("either", description=(
        "how a % answer reads: 'either' 50% = 50 or 0.5; 'strip' 50% = 50; 'fraction' 50% = 0.5"))
    ordered_lists: bool = Field(False, description=(
        "bare comma lists must match in order (tuples in parentheses are always ordered)"))
    decimal_rounding: bool = Field(True, description=(
        "a decimal with ≥3 significant digits equals an exact non-terminating value that rounds "
        "or truncates to it (6.67 = 20/3, 3.14 = π)"))


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
    text = unwrap_reference(reference)
    if not text.strip():
        raise InvalidReferenceError("math reference is empty")
    return text


@register
class MathVerifier(Verifier):
    name = "math"
    version = "1.0.0"
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
            return VerifierResult.abstain("no final answer found (no \\boxed{}, answer tag, "
                                          "'answer is' phrase or number)")
        details = {"extracted": found.text, "reference": gold, "method": found.method}
        shown = f"{_quote(found.text)!r} ({found.method}) vs {_quote(gold)!r}"
        if clean(found.text).replace(" ", "") == clean(gold).replace(" ", ""):
            return VerifierResult.ok(1.0, f"{shown}: same after normalisation", **details)
        policy = Policy(rel_tol=params.rel_tol, percent_policy=params.percent_policy,
                        ordered_lists=params.ordered_lists, decimal_rounding=params.decimal_rounding)
        side = "reference"
        try:
            gold_tree = parse_answer(gold)
            side = "answer"
            pred_tree = parse_answer(found.text)
            side = "comparison"
            ok, why = answers_equal(pred_tree, gold_tree, policy)
        except guards.UnsafeInput as e:
            return VerifierResult.abstain(f"{side} refused: {e}", **details)
        except RecursionError:
            return VerifierResult.abstain(f"{side} refused: nested too deeply to evaluate", **details)
        except MemoryError:
            raise  # the pool reports the memory limit
        except Exception as e:  # a SymPy corner we do not handle: say so, never a silent 0
            return VerifierResult.error(f"{side} failed: {type(e).__name__}: {str(e)[:200]}", **details)
        return VerifierResult.ok(1.0 if ok else 0.0, f"{shown}: {why}", **details)
