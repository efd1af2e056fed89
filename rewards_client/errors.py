"""The one exception tree of the reward service's clients::

    RewardServiceError                 any failure talking to the service
    ├── RewardServiceUnavailable       not reachable / not SERVING (at start, or after the retries)
    └── RewardCallError                an RPC failed for another reason (`.code`, `.details`):
                                       a bad spec, an unknown run, a key refused, a deadline,
                                       a quota still refused after the retries, a stream that
                                       lost results

`RewardServiceCallError` is another name of `RewardCallError` (the integrations' old name).
"""
from __future__ import annotations

import grpc


class RewardServiceError(RuntimeError):
    """Base of every error raised by rewards_client."""


class RewardServiceUnavailable(RewardServiceError):
    """The service cannot be reached, or does not report SERVING (after the retries)."""


class RewardCallError(RewardServiceError):
    """An RPC failed with a status that is not retried, or kept failing past the retries.

    `code`: the grpc.StatusCode (None when the client itself found the answer wrong, e.g. a
    stream that ended without some groups' results); `details`: the service's message.
    """

    def __init__(self, message: str, code: grpc.StatusCode | None = None, details: str = ""):
        super().__init__(message)
        self.code = code
        self.details = details


RewardServiceCallError = RewardCallError
