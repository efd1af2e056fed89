"""`math@1.0.0`, frozen: the verifier as it scored before version 2.0.0 changed the defaults.

Kept registered (and never edited) so that stored history stays interpretable and
`rewardctl replay RUN --verifier math@1.0.0` re-scores with exactly the old rules; compare
with `math@2.0.0` to see which verdicts a version change flips. Fixes go to the current
version in `verifiers/math/`, never here.
"""
from .verifier import MathParams, MathVerifier

__all__ = ["MathVerifier", "MathParams"]
