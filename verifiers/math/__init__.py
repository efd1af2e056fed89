"""The `math` verifier: final-answer equivalence with SymPy (registers on import).

    final.py        3.0.0: final-answer statements (`# Answer`, `Final Answer:`, `####`, boxes…)
    choices.py      3.0.0: a multiple choice's options (from the prompt) and the letter an answer names
    extract.py      2.x: the final answer in a completion; unwrapping the reference (all versions)
    normalize.py    string clean-up of LaTeX noise, units, conditions
    parse.py        answer string → tree (lists, tuples, sets, intervals, relations, leaves)
    guards.py       refusing input too large or deep to evaluate safely
    equivalence.py  the equality policy
    verifier.py     `MathVerifier`, `MathParams`, and VERSIONS: one row (frozen `MathRules` and its
                    parameters) per registered version 1.0.0, 2.0.0, 2.1.0, 3.0.0; golden verdicts
                    in tests/verifiers/golden/
"""
from .verifier import MathParams, MathVerifier

__all__ = ["MathVerifier", "MathParams"]
