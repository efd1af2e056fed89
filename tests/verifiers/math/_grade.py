"""One way to run a table of (completion, reference, accepted?) cases through `math`."""
from __future__ import annotations

from typing import Any

import verifiers
from verifiers import Status, VerifierResult

ACCEPT, REJECT = True, False


def grade(completion: str, reference: Any, params: dict | None = None, version: str | None = None) -> VerifierResult:
    return verifiers.verify("math", completion, reference, params or {}, version=version)


def check(completion: str, reference: Any, accept: bool, params: dict | None = None) -> VerifierResult:
    """Assert the verdict: accepted = OK with reward 1; rejected = OK with reward 0 (a
    rejection must be a decision, not an ABSTAIN, unless the table says otherwise)."""
    r = grade(completion, reference, params)
    if accept:
        assert r.status is Status.OK and r.reward == 1.0, f"expected ACCEPT: {r.status.value} {r.reward}: {r.reason}"
    else:
        assert r.status is not Status.ERROR, r.reason
        assert r.reward != 1.0, f"expected REJECT: {r.status.value} {r.reward}: {r.reason}"
    return r
