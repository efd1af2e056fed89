"""Sandboxed execution of untrusted programs.

    from verifiers.sandbox import default_backend, Limits
    r = default_backend().run({"main.py": b"print(input())"}, ["/usr/bin/python3", "main.py"],
                              b"hi\\n", Limits(wall_time_s=5))
    r.exit_code, r.stdout     # 0, b"hi\\n"

One interface (`SandboxBackend.run(files, cmd, stdin, limits) -> RunResult`), one local
implementation (`BubblewrapBackend`); a Docker backend plugs in behind the same call.
Nothing here knows about tests or verdicts: that is `verifiers.code`.
"""
from __future__ import annotations

import threading

from .base import (WORKDIR, Limits, RunResult, SandboxBackend, SandboxError, SandboxFile,
                   SandboxUnavailableError)
from .bubblewrap import BubblewrapBackend

_default: SandboxBackend | None = None
_default_lock = threading.Lock()


def default_backend() -> SandboxBackend:
    """The process-wide backend (bubblewrap), created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = BubblewrapBackend()
        return _default


def set_default_backend(backend: SandboxBackend | None) -> None:
    """Replace the process-wide backend (tests; a Docker backend in production)."""
    global _default
    with _default_lock:
        _default = backend


__all__ = ["WORKDIR", "Limits", "RunResult", "SandboxBackend", "SandboxError", "SandboxFile",
           "SandboxUnavailableError", "BubblewrapBackend", "default_backend", "set_default_backend"]
