"""The scoring library: verifiers by name, usable without the server.

    >>> import verifiers
    >>> verifiers.verify("math", "so the answer is \\boxed{\\frac{1}{2}}", "0.5").reward
    1.0

`verify` runs in the calling thread. For untrusted or CPU-heavy input use
`verifiers.pool.VerifierPool`, which enforces a hard wall-clock and memory limit.
"""
from __future__ import annotations

from typing import Any

from . import registry
from .core import Params, Status, Verifier, VerifierResult, params_hash
from .errors import InvalidParamsError, InvalidReferenceError, UnknownVerifierError, VerifierError
from .registry import register

# Built-in verifiers register themselves on import.
from . import format as _format  # noqa: E402,F401
from . import format_v1 as _format_v1  # noqa: E402,F401
from . import math as _math  # noqa: E402,F401
from . import code as _code  # noqa: E402,F401
from . import judges as _judges  # noqa: E402,F401


def verify(name: str, completion: str, reference: Any, params: dict[str, Any] | None = None,
           *, version: str | None = None, prompt: str | None = None) -> VerifierResult:
    """Score one completion in this thread.

    Raises UnknownVerifierError, InvalidParamsError or InvalidReferenceError for a bad
    request; every outcome of the completion itself is a VerifierResult.
    """
    cls = registry.get(name, version)
    parsed = registry.parse_params(cls, params)
    if cls.uses_prompt:
        return cls().verify(completion, reference, parsed, prompt=prompt)
    return cls().verify(completion, reference, parsed)


__all__ = ["verify", "register", "registry", "Status", "Verifier", "VerifierResult", "Params",
           "params_hash", "VerifierError", "UnknownVerifierError", "InvalidParamsError",
           "InvalidReferenceError"]
