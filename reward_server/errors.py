"""Request errors of the service, and the one place that maps errors to gRPC status codes.

    Exception
    ├── verifiers.errors.VerifierError
    │   ├── UnknownVerifierError   -> NOT_FOUND (message lists the known verifiers)
    │   ├── InvalidParamsError     -> INVALID_ARGUMENT
    │   └── InvalidReferenceError  -> INVALID_ARGUMENT
    ├── InvalidRequestError        -> INVALID_ARGUMENT (message names the field)
    ├── TooLargeError              -> RESOURCE_EXHAUSTED (message gives the limit)
    ├── store.RunNotFoundError     -> NOT_FOUND
    └── store.SpecNotFoundError    -> NOT_FOUND (message lists the stored specs)
"""
from __future__ import annotations

import grpc

from verifiers.errors import InvalidParamsError, InvalidReferenceError, UnknownVerifierError


class InvalidRequestError(ValueError):
    """A malformed request; the message starts with the offending field's path."""


class TooLargeError(ValueError):
    """A request over a configured size limit; the message gives the limit."""


def status_code_for(exc: BaseException) -> grpc.StatusCode | None:
    from .store.store import RunNotFoundError, SpecNotFoundError

    if isinstance(exc, (UnknownVerifierError, RunNotFoundError, SpecNotFoundError)):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, (InvalidRequestError, InvalidParamsError, InvalidReferenceError)):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, TooLargeError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return None
