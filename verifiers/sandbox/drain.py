"""Reading a sandboxed run's output from outside: both pipes at once, capped, against the
wall clock. Shared by the fresh bubblewrap sandbox and the pre-forked interpreter."""
from __future__ import annotations

import os
import selectors
import time
from collections.abc import Callable

_READ_CHUNK = 1 << 16
TICK_S = 0.05


def drain(out_fd: int, err_fd: int, done_fd: int, deadline: float, out_cap: int, err_cap: int,
          kill: Callable[[], None], tick: Callable[[], None] | None = None
          ) -> tuple[bytearray, bytearray, dict[str, bool]]:
    """Read stdout and stderr until both close and `done_fd` (a pidfd, or the socket the
    result arrives on) is readable, or until the deadline (then `kill()`). Keeps at most
    `out_cap`/`err_cap` bytes of each; more stdout than `out_cap` kills the run.
    `tick()`, if given, is called at least every TICK_S while the run lasts (the CPU
    watch of admission.py)."""
    flags = {"timed_out": False, "stdout_over": False, "stderr_over": False}
    bufs = {out_fd: bytearray(), err_fd: bytearray()}
    caps = {out_fd: out_cap, err_fd: err_cap}
    pidfd = done_fd
    sel = selectors.DefaultSelector()
    try:
        for fd in bufs:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        sel.register(pidfd, selectors.EVENT_READ)
        exited = killed = False
        grace_deadline = None
        while True:
            open_pipes = len(sel.get_map()) - (0 if exited else 1)
            if exited and open_pipes == 0:
                break
            now = time.monotonic()
            if not killed and now >= deadline:
                flags["timed_out"] = True
                kill()
                killed = True
                grace_deadline = now + 2.0
            if grace_deadline is not None and now >= grace_deadline:
                break  # killed and still not closed: stop reading; wait4 below reaps
            if exited and grace_deadline is None:
                grace_deadline = now + 1.0  # exited: pipes held only by stragglers
            limit = (grace_deadline if grace_deadline is not None else deadline) - now
            if tick is not None:
                tick()
            for key, _ in sel.select(max(0.0, min(limit, 1.0 if tick is None else TICK_S))):
                fd = key.fd
                if fd == pidfd:
                    exited = True
                    sel.unregister(pidfd)
                    continue
                try:
                    chunk = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                buf, cap = bufs[fd], caps[fd]
                room = cap - len(buf)
                if len(chunk) > room:
                    buf += chunk[:max(room, 0)]
                    if fd == out_fd:
                        flags["stdout_over"] = True
                        if not killed:
                            kill()
                            killed = True
                            grace_deadline = time.monotonic() + 2.0
                    else:
                        flags["stderr_over"] = True
                else:
                    buf += chunk
        if not exited or sel.get_map():
            kill()
    finally:
        sel.close()
    return bufs[out_fd], bufs[err_fd], flags

