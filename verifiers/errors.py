"""The one exception tree of the scoring library.

    VerifierError                 base; never raised itself
    ├── UnknownVerifierError      no verifier registered under that name/version
    ├── InvalidParamsError        parameters fail the verifier's typed schema
    └── InvalidReferenceError     the reference is missing or of the wrong shape

Verifier *outcomes* (a wrong answer, a timeout, a crash inside the verifier) are not
exceptions: they come back as a `VerifierResult` with a status. These exceptions mean
the *request* is wrong, and reward_server/errors.py maps each to one gRPC status code.
"""
from __future__ import annotations


class VerifierError(Exception):
    """Base of every error the scoring library raises for a bad request."""


class UnknownVerifierError(VerifierError):
    """No verifier of that name (or version). `known` lists what is registered."""

    def __init__(self, name: str, known: list[str], version: str | None = None):
        self.name, self.version, self.known = name, version, known
        what = f"{name}@{version}" if version else name
        super().__init__(f"unknown verifier {what!r}; known: {', '.join(known) or '(none)'}")

    def __reduce__(self):  # keep the fields across the worker-process boundary
        return type(self), (self.name, self.known, self.version)


class InvalidParamsError(VerifierError):
    """Parameters that fail the verifier's schema; the message names the field."""


class InvalidReferenceError(VerifierError):
    """A reference that is missing or cannot be used by this verifier."""
