"""Why a judge gave no score, and the one mapping from that to a result status.

    JudgeFailure                    base; never raised itself
    ├── JudgeUnavailable            ERROR: the endpoint or model gave no answer
    │   ├── JudgeHTTPError          a non-2xx reply (status code, body excerpt, Retry-After)
    │   ├── JudgeConnectionError    could not connect, or the connection dropped
    │   ├── JudgeBadResponse        a 2xx reply that is not a chat completion (garbage JSON)
    │   ├── CircuitOpenError        the endpoint's breaker is open: no request was sent
    │   └── ModelError              a local model failed to load or to run
    ├── JudgeTimeout                TIMEOUT: the deadline passed (waiting for a slot, a rate
    │                               token, a batch, or the answer)
    ├── JudgeRefused                ABSTAIN: the judge declined (refusal text, content filter)
    └── JudgeUnparseable            ERROR: an answer came, but no score could be read from it

These are outcomes, not request errors (those are `verifiers.errors.VerifierError`):
`failure_result` turns each into a non-OK VerifierResult whose reason carries the raw
answer or error. A judge failure is never a reward of 0.
"""
from __future__ import annotations

from ..core import Status, VerifierResult

_RAW_CHARS = 500


def excerpt(text: str, limit: int = _RAW_CHARS) -> str:
    """`text` cut to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[:limit] + f"…[{len(text) - limit} more chars]"


class JudgeFailure(Exception):
    """Base. `raw` is the judge's answer or the error text, `attempts` the requests sent."""

    status = Status.ERROR

    def __init__(self, message: str, *, raw: str = "", attempts: int = 0):
        super().__init__(message)
        self.raw = raw
        self.attempts = attempts


class JudgeUnavailable(JudgeFailure):
    status = Status.ERROR


class JudgeHTTPError(JudgeUnavailable):
    def __init__(self, status_code: int, body: str, *, retry_after_s: float | None = None, attempts: int = 0):
        super().__init__(f"HTTP {status_code}", raw=excerpt(body), attempts=attempts)
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class JudgeConnectionError(JudgeUnavailable):
    pass


class JudgeBadResponse(JudgeUnavailable):
    pass


class CircuitOpenError(JudgeUnavailable):
    pass


class ModelError(JudgeUnavailable):
    pass


class JudgeTimeout(JudgeFailure):
    status = Status.TIMEOUT


class JudgeRefused(JudgeFailure):
    status = Status.ABSTAIN


class JudgeUnparseable(JudgeFailure):
    status = Status.ERROR


def failure_result(e: JudgeFailure, who: str, **details) -> VerifierResult:
    """The one mapping from a judge failure to a result: status from the class, reason
    naming the judge, the failure, the attempts and the raw answer or error."""
    reason = f"{who}: {e}"
    if e.attempts > 1:
        reason += f" after {e.attempts} attempts"
    if e.raw:
        reason += f"; raw: {excerpt(e.raw)!r}"
    details = {"failure": type(e).__name__, "attempts": e.attempts, **details}
    if isinstance(e, JudgeHTTPError):
        details["http_status"] = e.status_code
    return VerifierResult(e.status, None, reason, details)


__all__ = ["JudgeFailure", "JudgeUnavailable", "JudgeHTTPError", "JudgeConnectionError", "JudgeBadResponse",
           "CircuitOpenError", "ModelError", "JudgeTimeout", "JudgeRefused", "JudgeUnparseable",
           "failure_result", "excerpt"]
