"""How each language is compiled and run inside the sandbox (paths are host paths that
the sandbox mounts read-only: /usr)."""
from __future__ import annotations

import os
from typing import Any
from dataclasses import dataclass, replace

from ..sandbox import Limits

PYTHON_EXE = "/usr/bin/python3"
# Fixed hash seed: set iteration order, hence the run, is the same every time (the
# function-test replay relies on it); bytecode is never written.
PYTHON_ENV = {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
MiB = 1 << 20


@dataclass(frozen=True)
class Language:
    name: str
    source: str                            # file name of the program
    run: tuple[str, ...]                   # argv; "{mem_mb}" is replaced by the memory limit
    needs: tuple[str, ...]                 # executables that must exist where programs run
    compile: tuple[str, ...] | None = None
    artefact: str | None = None            # compiled file carried from compile to run
    oom_markers: tuple[bytes, ...] = ()    # stderr text that means "out of memory"
    extra_address_space_bytes: int = 0     # virtual reservations beyond the memory limit
    extra_processes: int = 0               # runtime threads (count against RLIMIT_NPROC)
    stack_bytes: int | None = None         # RLIMIT_STACK, if not the sandbox's default (8 MiB)
    env: tuple[tuple[str, str], ...] = ()

    def available(self, backend: Any = None) -> tuple[bool, str]:
        """Whether programs in this language can run: asked of the sandbox backend when it
        can tell (a Docker image decides, not the host), else of this host."""
        if backend is not None and hasattr(backend, "missing_executables"):
            missing = backend.missing_executables(self.needs)
            where = "in the sandbox image"
        else:
            missing = [p for p in self.needs if not os.access(p, os.X_OK)]
            where = "on this host"
        return (not missing, f"{', '.join(missing)} not installed {where}" if missing else "")

    def run_argv(self, memory_bytes: int) -> list[str]:
        return [a.replace("{mem_mb}", str(max(16, memory_bytes // MiB))) for a in self.run]

    def run_limits(self, base: Limits) -> Limits:
        return replace(base, address_space_bytes=base.memory_bytes + self.extra_address_space_bytes,
                       processes=base.processes + self.extra_processes,
                       stack_bytes=min(self.stack_bytes or base.stack_bytes, base.memory_bytes))


PYTHON = Language(
    "python", "main.py", (PYTHON_EXE, "-B", "-s", "main.py"), (PYTHON_EXE,),
    oom_markers=(b"MemoryError",), env=tuple(PYTHON_ENV.items()))
CPP = Language(
    "cpp", "main.cpp", ("./main",), ("/usr/bin/g++",),
    compile=("/usr/bin/g++", "-std=gnu++17", "-O2", "-pipe", "-o", "main", "main.cpp"), artefact="main",
    oom_markers=(b"std::bad_alloc",), stack_bytes=256 << 20)  # deep recursion, as judges allow
JAVASCRIPT = Language(
    # V8 reserves far more address space than it uses: RLIMIT_AS gets 2 GiB on top of the
    # memory limit, and the heap is capped by --max-old-space-size (and the cgroup).
    "javascript", "main.js", ("/usr/bin/node", "--max-old-space-size={mem_mb}", "--v8-pool-size=1", "main.js"),
    ("/usr/bin/node",), oom_markers=(b"heap out of memory", b"Allocation failed"),
    extra_address_space_bytes=2 << 30, extra_processes=16)

LANGUAGES: dict[str, Language] = {lang.name: lang for lang in (PYTHON, CPP, JAVASCRIPT)}


def available_languages(backend: Any = None) -> dict[str, str]:
    """Language name -> '' when usable (in `backend`, else on this host), else why not."""
    return {name: lang.available(backend)[1] for name, lang in LANGUAGES.items()}
