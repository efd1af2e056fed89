"""The PID 1 of a bubblewrap sandbox, seen from the host: how nothing of a run outlives it.

bwrap reports its init's host PID on `--info-fd`. When the init of a PID namespace exits,
the kernel kills every other process in that namespace (and in namespaces nested in it),
refuses new forks there, and waits for all of them before the init's own exit completes;
so SIGKILL to the init followed by a readable pidfd means the sandbox is empty. This is
what ends double-forked daemons and processes that left their session or process group,
with or without cgroups. (bwrap exits as soon as its program does, before its init has
torn the namespace down, so waiting for bwrap alone is not enough.)
"""
from __future__ import annotations

import json
import logging
import os
import select
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

INIT_INFO_TIMEOUT_S = 10.0    # bwrap writes the info right after its clone()
TEARDOWN_TIMEOUT_S = 5.0


class SandboxInit:
    """The PID 1 of one bwrap sandbox, as the host sees it (from `--info-fd`).

    `kill_and_wait()` SIGKILLs it and waits until it has exited. When the init of a PID
    namespace exits, the kernel kills every other process in that namespace (and in
    namespaces nested in it), refuses new forks there, and waits for all of them before
    the init's own exit completes, so a readable pidfd means nothing of the sandbox is
    left. Through a pidfd, so a recycled PID is never signalled."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)
        self.pidfd = -1

    def args(self) -> list[str]:
        return ["--info-fd", str(self.write_fd)]

    def started(self, deadline: float) -> None:
        """After bwrap started: close our copy of the write end, read the init's PID, and
        hold a pidfd on it. Best effort: without it, the cgroup (if any) is the backstop."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1
        buf = b""
        while b"}" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                break
            chunk = os.read(self.read_fd, 4096)
            if not chunk:
                break
            buf += chunk
        os.close(self.read_fd)
        self.read_fd = -1
        try:
            pid = int(json.loads(buf)["child-pid"])
            pidfd = os.pidfd_open(pid)
        except (ValueError, KeyError, TypeError, OSError):
            return
        try:  # it is (still) the init of a PID namespace of its own: NSpid ends in 1
            nspid = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                         if ln.startswith("NSpid:")).split()
            if len(nspid) < 3 or nspid[-1] != "1":
                raise ValueError(nspid)
        except (OSError, StopIteration, ValueError):
            os.close(pidfd)
            return
        self.pidfd = pidfd

    def kill(self) -> None:
        if self.pidfd >= 0:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except (ProcessLookupError, OSError):
                pass

    def kill_and_wait(self, timeout_s: float = TEARDOWN_TIMEOUT_S) -> bool:
        """Kill the sandbox's init and wait until its PID namespace is empty; True when it
        is (or was never known to exist)."""
        if self.pidfd < 0:
            return True
        self.kill()
        gone = bool(select.select([self.pidfd], [], [], timeout_s)[0])
        if not gone:
            log.error("a sandbox's PID namespace was not torn down within %.1f s of SIGKILL", timeout_s)
        return gone

    def close(self) -> None:
        for name in ("read_fd", "write_fd", "pidfd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
