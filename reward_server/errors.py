"""Request errors of the service, and the one place that maps errors to gRPC status codes.

    Exception
    ├── verifiers.errors.VerifierError
    │   ├── UnknownVerifierError   -> NOT_FOUND (message lists the known verifiers)
    │   ├── InvalidParamsError     -> INVALID_ARGUMENT
    │   └── InvalidReferenceError  -> INVALID_ARGUMENT
    ├── InvalidRequestError        -> INVALID_ARGUMENT (message names the field)
    │   └── UndecodableRequestError   the bytes are not the RPC's message (decoding.py)
    ├── TooLargeError              -> RESOURCE_EXHAUSTED (message gives the limit)
    ├── store.RunNotFoundError     -> NOT_FOUND
    ├── store.SpecNotFoundError    -> NOT_FOUND (message lists the stored specs)
    ├── store.ScoreNotFoundError   -> NOT_FOUND
    ├── store.AmbiguousRunError    -> INVALID_ARGUMENT (an admin read of a run id several teams hold)
    ├── store.GroupConflictError   -> ALREADY_EXISTS (the group was stored with other content)
    ├── store.StoreWriteError      -> UNAVAILABLE (nothing recorded; retry)
    │   └── store.StoreRefusedError   -> INVALID_ARGUMENT (the database cannot hold these rows)
    ├── DatabaseUnavailableError   -> UNAVAILABLE (also SQLAlchemy's connection, pool and
    │                                 operational errors: the database is down or busy; retry)
    ├── AuthError                  -> UNAUTHENTICATED or PERMISSION_DENIED
    └── QuotaExceededError         -> RESOURCE_EXHAUSTED (message and `retry-after-s` trailer give the wait)
"""
from __future__ import annotations

import grpc

from verifiers.errors import InvalidParamsError, InvalidReferenceError, UnknownVerifierError


class InvalidRequestError(ValueError):
    """A malformed request; the message starts with the offending field's path."""


class UndecodableRequestError(InvalidRequestError):
    """The request's bytes could not be decoded as the RPC's message type."""


class TooLargeError(ValueError):
    """A request over a configured size limit; the message gives the limit."""


class AuthError(Exception):
    """Missing, unknown or revoked key (UNAUTHENTICATED), or not allowed (PERMISSION_DENIED)."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.UNAUTHENTICATED):
        super().__init__(message)
        self.code = code


class QuotaExceededError(Exception):
    """A team is over one of its quotas; `retry_after_s` says when to try again."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(f"{message}; retry in {retry_after_s:.2f} s")
        self.retry_after_s = retry_after_s


class DatabaseUnavailableError(Exception):
    """The database could not be reached or had no free connection in time (retry)."""


def _database_down(exc: BaseException) -> bool:
    """A connection, pool or operational failure of the database (not a refused row)."""
    from sqlalchemy import exc as sa

    return isinstance(exc, (DatabaseUnavailableError, sa.OperationalError, sa.InterfaceError, sa.TimeoutError,
                            sa.DisconnectionError)) or (isinstance(exc, sa.DBAPIError) and exc.connection_invalidated)


def public_message(exc: BaseException) -> str:
    """What a caller may read about `exc`: its message for request errors; for database and
    internal failures a fixed text (SQL, host, port and driver details stay in the server log)."""
    if _database_down(exc):
        return "the database is unavailable or busy; nothing was recorded: retry in a few seconds"
    if status_code_for(exc) is None:
        return f"internal error ({type(exc).__name__}); the server log has the details"
    return str(exc)


def status_code_for(exc: BaseException) -> grpc.StatusCode | None:
    from .store.store import (AmbiguousRunError, GroupConflictError, RunNotFoundError, ScoreNotFoundError,
                              SpecNotFoundError, StoreRefusedError, StoreWriteError)

    if isinstance(exc, (UnknownVerifierError, RunNotFoundError, SpecNotFoundError, ScoreNotFoundError)):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, GroupConflictError):
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(exc, AmbiguousRunError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, StoreRefusedError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if _database_down(exc):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, AuthError):
        return exc.code
    if isinstance(exc, QuotaExceededError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, (InvalidRequestError, InvalidParamsError, InvalidReferenceError)):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, TooLargeError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, StoreWriteError):
        return grpc.StatusCode.UNAVAILABLE
    return None
