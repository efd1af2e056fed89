"""The `math` verifier: final-answer equivalence with SymPy (registers on import).

    extract.py      the final answer in a completion; unwrapping the reference
    normalize.py    string clean-up of LaTeX noise, units, conditions
    parse.py        answer string → tree (lists, tuples, sets, intervals, relations, leaves)
    guards.py       refusing input too large or deep to evaluate safely
    equivalence.py  the equality policy
    verifier.py     `MathVerifier` ("math" 2.1.0; 2.0.0 as `MathVerifierV2_0`) and its `MathParams`
    v1/             "math" 1.0.0, frozen, kept registered for replaying stored history
"""
from . import v1  # noqa: F401  (registers math@1.0.0)
from .verifier import MathParams, MathVerifier

__all__ = ["MathVerifier", "MathParams"]
