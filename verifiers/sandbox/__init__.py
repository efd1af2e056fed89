"""Sandboxed execution of untrusted programs.

    from verifiers.sandbox import default_backend, Limits
    r = default_backend().run({"main.py": b"print(input())"}, ["/usr/bin/python3", "main.py"],
                              b"hi\\n", Limits(wall_time_s=5))
    r.exit_code, r.stdout     # 0, b"hi\\n"

One interface (`SandboxBackend.run(files, cmd, stdin, limits) -> RunResult`), two
implementations: `BubblewrapBackend` (local namespaces) and `DockerBackend` (production:
a warm pool of locked-down containers; image from scripts/docker-runner-image.sh).
`make_backend(name)` builds either; the process-wide default is chosen by
$RLVR_SANDBOX_BACKEND ("bubblewrap", the default, or "docker"; the Docker image from
$RLVR_SANDBOX_IMAGE, the pool size from $RLVR_SANDBOX_POOL_SIZE).
Runs are admitted by what they use, in turns per tenant (`with tenant("team-a"): ...`;
admission.py). Nothing here knows about tests or verdicts: that is `verifiers.code`.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from .admission import tenant
from .base import (WORKDIR, Limits, RunResult, SandboxBackend, SandboxError, SandboxFile,
                   SandboxUnavailableError)
from .bubblewrap import BubblewrapBackend
from .docker_backend import DockerBackend  # imports the docker SDK only when first used

BACKEND_NAMES = ("bubblewrap", "docker")

_default: SandboxBackend | None = None
_default_lock = threading.Lock()


def make_backend(name: str | None = None, **options: Any) -> SandboxBackend:
    """A new backend by name ("bubblewrap" or "docker"; None: $RLVR_SANDBOX_BACKEND, else
    bubblewrap). `options` go to its constructor (docker: image, pool_size, base_url, ...)."""
    name = (name or os.environ.get("RLVR_SANDBOX_BACKEND") or "bubblewrap").strip().lower()
    if name in ("bubblewrap", "bwrap", "local"):
        return BubblewrapBackend(**options)
    if name == "docker":
        if "pool_size" not in options and os.environ.get("RLVR_SANDBOX_POOL_SIZE"):
            options["pool_size"] = int(os.environ["RLVR_SANDBOX_POOL_SIZE"])
        return DockerBackend(**options)
    raise ValueError(f"unknown sandbox backend {name!r}; known: {', '.join(BACKEND_NAMES)}")


def default_backend() -> SandboxBackend:
    """The process-wide backend ($RLVR_SANDBOX_BACKEND, bubblewrap by default), created on
    first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = make_backend()
        return _default


def set_default_backend(backend: SandboxBackend | None) -> None:
    """Replace the process-wide backend (tests; a Docker backend in production)."""
    global _default
    with _default_lock:
        _default = backend


__all__ = ["WORKDIR", "Limits", "RunResult", "SandboxBackend", "SandboxError", "SandboxFile",
           "SandboxUnavailableError", "BubblewrapBackend", "DockerBackend", "BACKEND_NAMES", "make_backend",
           "default_backend", "set_default_backend", "tenant"]
