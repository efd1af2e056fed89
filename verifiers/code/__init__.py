"""The `code` verifier: programs run in the sandbox against function or stdin/stdout
tests, compared outside the program's process. See verifier.py for the contract,
functests.py for the anti-cheating design, compare.py and extract.py for the pure parts.

Importing this package registers `code@1.2.0` and, for specs pinned to them, `code@1.1.0` and `code@1.0.0`.
"""
from __future__ import annotations

from .verifier import CodeParams, CodeVerifier

__all__ = ["CodeVerifier", "CodeParams"]
