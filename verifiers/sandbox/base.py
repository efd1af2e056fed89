"""The sandbox contract: limits in, one program run out.

    backend.run(files, cmd, stdin, limits) -> RunResult

`files` are written into a fresh working directory (mounted at `WORKDIR` inside the
sandbox, read-only unless `limits.writable_workdir`), `cmd` runs there with `stdin` as
its standard input, and the result carries the captured output (capped, never more
than `limits.output_bytes` / `limits.stderr_bytes`), the exit status and which limit,
if any, ended the run. Nothing of the run survives it except what `collect` names.

A backend never runs a program unsandboxed: when it cannot isolate (the tool is
missing, namespaces are not permitted) `available()` says why and `run` raises
`SandboxUnavailableError`.
"""
from __future__ import annotations

import abc
import threading
import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

WORKDIR = "/sandbox"
MiB = 1 << 20


class SandboxError(Exception):
    """Base of the sandbox's own failures (not the program's)."""


class SandboxUnavailableError(SandboxError):
    """This host cannot run the backend; the message says why."""


def check_file_name(name: str) -> None:
    """A sandbox file name is a plain relative path that stays inside the working directory:
    no absolute path, no "." or ".." or empty component, no trailing slash, no NUL
    (raises ValueError)."""
    parts = name.split("/")
    if not name or "\0" in name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"sandbox file name must be a relative path inside the working directory "
                         f"(no '.', '..', empty parts or NUL): {name!r}")


def check_file_names(names: Iterable[str]) -> None:
    """Each name valid (check_file_name), and no file where another needs a directory."""
    names = list(names)
    for name in names:
        check_file_name(name)
    dirs = {"/".join(n.split("/")[:i]) for n in names for i in range(1, n.count("/") + 1)}
    clash = dirs.intersection(names)
    if clash:
        raise ValueError(f"sandbox file {sorted(clash)[0]!r} is also a directory of another file")


@dataclass(frozen=True)
class SandboxFile:
    """A file to place in the working directory (`executable` sets mode 0755)."""

    data: bytes
    executable: bool = False


@dataclass(frozen=True)
class Limits:
    """What one run may use. Units are in the names.

    `address_space_bytes` defaults to `memory_bytes` (RLIMIT_AS); runtimes that reserve
    large virtual ranges (V8) raise it and rely on the cgroup memory limit instead.
    `output_bytes` caps stdout: a run that writes more is killed and marked
    `output_limit_hit`, and its truncated output must never be accepted.
    """

    wall_time_s: float = 10.0
    cpu_time_s: float = 5.0
    memory_bytes: int = 512 * MiB
    address_space_bytes: int | None = None
    file_size_bytes: int = 16 * MiB
    open_files: int = 64
    processes: int = 32
    output_bytes: int = 8 * MiB
    stderr_bytes: int = 64 * 1024
    tmpfs_bytes: int = 64 * MiB
    writable_workdir: bool = False
    # RLIMIT_STACK. glibc also sizes every thread's stack by it, so a large value starves a
    # threaded program of address space; C++ raises it for deep recursion.
    stack_bytes: int = 8 * MiB

    @property
    def effective_address_space_bytes(self) -> int:
        return self.address_space_bytes or self.memory_bytes


@dataclass(frozen=True)
class RunResult:
    """One finished run, as observed from outside the sandbox.

    `exit_code` is the program's exit status, or None when it was killed by a signal
    (`signal`). The `*_limit_hit` flags say which limit ended the run; `timed_out` is
    the wall clock enforced by the parent. `files` holds the collected files.
    """

    exit_code: int | None
    signal: int | None
    stdout: bytes
    stderr: bytes
    wall_time_s: float
    cpu_time_s: float
    timed_out: bool = False
    cpu_limit_hit: bool = False
    memory_limit_hit: bool = False
    output_limit_hit: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    peak_memory_bytes: int | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    # Seconds the run waited to be admitted to the sandbox (not part of wall_time_s): a
    # caller's overall budget must not count it against the program.
    queued_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Exited by itself with status 0 within every limit."""
        return (self.exit_code == 0 and not (self.timed_out or self.cpu_limit_hit or self.memory_limit_hit
                                             or self.output_limit_hit))

    def describe(self) -> str:
        """A short human account of how the run ended."""
        if self.timed_out:
            return f"killed at the wall-clock limit after {self.wall_time_s:.2f} s"
        if self.cpu_limit_hit:
            return f"killed at the CPU-time limit after {self.cpu_time_s:.2f} s of CPU"
        if self.memory_limit_hit:
            return "memory limit"
        if self.output_limit_hit:
            return "output limit"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        return f"exit status {self.exit_code}"


class SandboxBackend(abc.ABC):
    """A way to run one untrusted program under limits. Implementations: bubblewrap
    (local namespaces); a Docker backend can plug in behind the same call."""

    name: str = "abstract"

    # Set by subclasses' __init__: the cached probe and the lock guarding it.
    _probe: tuple[bool, str] | None
    _lock: threading.Lock

    def available(self) -> tuple[bool, str]:
        """(usable on this host, why not / what is in force). Probed once (`_check`), then
        cached."""
        with self._lock:
            if self._probe is None:
                self._probe = self._check()
        ok, why = self._probe
        if not ok:
            return False, why
        return True, f"{self.label()}; " + "; ".join(f"{k}: {v}" for k, v in self.limits_in_force().items())

    @abc.abstractmethod
    def _check(self) -> tuple[bool, str]:
        """Probe this host once: (usable, why not)."""

    @abc.abstractmethod
    def label(self) -> str:
        """A short name of the sandbox for `available()`'s message."""

    @abc.abstractmethod
    def limits_in_force(self) -> dict[str, str]:
        """Each isolation measure and limit, and how it is enforced on this host (or
        'not enforced: why')."""

    @abc.abstractmethod
    def run(self, files: Mapping[str, bytes | SandboxFile], cmd: Sequence[str], stdin: bytes = b"",
            limits: Limits = Limits(), *, env: Mapping[str, str] | None = None,
            collect: Sequence[str] = ()) -> RunResult:
        """Run `cmd` in a fresh sandbox holding `files`; see the module docstring."""

    def run_python(self, files: Mapping[str, bytes | SandboxFile], script: str, stdin: bytes = b"",
                   limits: Limits = Limits(), *, env: Mapping[str, str] | None = None,
                   interpreter: str = "/usr/bin/python3") -> RunResult:
        """Run the Python `script` (one of `files`) as `interpreter -B -s script`. Backends
        that can fork runs from a pre-started interpreter override this; the program cannot
        tell the difference (fresh namespaces, limits and __main__ either way)."""
        return self.run(files, [interpreter, "-B", "-s", script], stdin, limits, env=env)
