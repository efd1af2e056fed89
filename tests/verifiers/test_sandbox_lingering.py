"""Nothing a run starts outlives its verdict (issue 11): double-forked daemons, processes
that leave their session or process group, and ones that hide from the run's stdout —
on the pre-forked (zygote) path, the fresh bubblewrap path, and through the `code`
verifier. Checked from the host the moment the call returns (no grace period), and
again after the daemon would have re-executed itself under a new command line."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

import verifiers
import verifiers.code  # noqa: F401  (registers "code")
from verifiers.sandbox import BubblewrapBackend, Limits, default_backend, set_default_backend

BACKEND = default_backend()
AVAILABLE, WHY = BACKEND.available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox on this host: {WHY}")
PY = "/usr/bin/python3"
LIMITS = Limits(wall_time_s=5, cpu_time_s=2, memory_bytes=256 << 20)


def host_processes_with(marker: str) -> list[str]:
    """PIDs (host view) whose name, command line or environment holds `marker`."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        for what in ("comm", "cmdline", "environ"):
            try:
                if marker.encode() in (p / what).read_bytes():
                    found.append(p.name)
                    break
            except OSError:
                pass
    return found


def daemons(marker: str) -> str:
    """A program that leaves four kinds of survivors and exits 0 at once: a classic
    double-forked daemon (setsid), one that only changes its process group, one that
    closes its stdio, and a plain background child. Each carries `marker` in its
    environment, sleeps 1 s, then re-executes itself with `marker` on its command line."""
    later = (f"import os, time\ntime.sleep(1.0)\n"
             f"os.execv({PY!r}, [{PY!r}, '-c', 'import time; time.sleep(60)', {marker!r}])\n")
    return (f"import os, sys\n"
            f"LATER = {later!r}\n"
            f"def spawn(detach):\n"
            f"    if os.fork() == 0:\n"
            f"        try:\n"
            f"            detach()\n"
            f"            if os.fork() == 0:\n"
            f"                os.execve({PY!r}, [{PY!r}, '-c', LATER], {{'RLVR_MARK': {marker!r}}})\n"
            f"        finally:\n"
            f"            os._exit(0)\n"
            f"def close_stdio():\n"
            f"    os.setsid()\n"
            f"    fd = os.open('/dev/null', os.O_RDWR)\n"
            f"    for i in range(3):\n"
            f"        os.dup2(fd, i)\n"
            f"spawn(os.setsid)\n"
            f"spawn(lambda: os.setpgid(0, 0))\n"
            f"spawn(close_stdio)\n"
            f"spawn(lambda: None)\n"
            f"print('spawned', flush=True)\n")


def assert_nothing_left(marker: str) -> None:
    left = host_processes_with(marker)
    assert left == [], f"processes of the run alive after its verdict: {left}"
    time.sleep(1.3)  # past the daemons' re-exec: a survivor would show its marker now
    left = host_processes_with(marker)
    assert left == [], f"a process of the run re-executed after its verdict: {left}"


@pytest.mark.parametrize("path", ["prefork", "fresh"])
def test_backend_run_leaves_no_process(path):
    marker = f"rlvr-linger-{uuid.uuid4().hex[:12]}"
    files = {"main.py": daemons(marker).encode()}
    if path == "prefork":
        before = BACKEND.stats["prefork_runs"]
        r = BACKEND.run_python(files, "main.py", b"", LIMITS)
        assert BACKEND.stats["prefork_runs"] == before + 1
    else:
        r = BACKEND.run(files, [PY, "-B", "main.py"], b"", LIMITS)
    assert r.ok and r.stdout == b"spawned\n", (r.describe(), r.stderr)
    assert_nothing_left(marker)


def hogs(marker: str, n: int = 12) -> str:
    """A program that leaves `n` detached daemons spinning on the CPU (named `marker`),
    so that the sandbox's own teardown competes with them for the CPUs."""
    return (f"import ctypes, os, time\n"
            f"for _ in range({n}):\n"
            f"    if os.fork() == 0:\n"
            f"        os.setsid()\n"
            f"        if os.fork() == 0:\n"
            f"            ctypes.CDLL(None).prctl(15, {marker[:15].encode()!r}, 0, 0, 0)  # PR_SET_NAME\n"
            f"            while True:\n"
            f"                pass\n"
            f"        os._exit(0)\n"
            f"time.sleep(0.3)\n"
            f"print('spawned', flush=True)\n")


@pytest.mark.parametrize("cgroups", [False, True], ids=["no-cgroups", "cgroups"])
@pytest.mark.parametrize("path", ["prefork", "fresh"])
def test_spinning_daemons_are_gone_when_run_returns(path, cgroups):
    # Without cgroups only the PID namespace can end them: bwrap exits as soon as the
    # program does, before its init has torn the namespace down, so `run` must wait for
    # that (it failed about one run in eight here before it did).
    backend = BubblewrapBackend(use_cgroups=cgroups)
    try:
        for _ in range(8):
            marker = f"lg{uuid.uuid4().hex[:12]}"
            files = {"main.py": hogs(marker).encode()}
            limits = Limits(wall_time_s=5, cpu_time_s=3, memory_bytes=256 << 20, processes=32)
            r = (backend.run_python(files, "main.py", b"", limits) if path == "prefork"
                 else backend.run(files, [PY, "-B", "main.py"], b"", limits))
            assert r.ok and r.stdout == b"spawned\n", (r.describe(), r.stderr)
            assert host_processes_with(marker[:15]) == [], "a daemon of the run is alive after `run` returned"
    finally:
        backend.close()


@pytest.fixture(params=["prefork", "fresh"])
def code_backend(request):
    """The code verifier's default backend, or one that never pre-forks."""
    if request.param == "prefork":
        yield BACKEND
        return
    fresh = BubblewrapBackend(prefork_python=False)
    set_default_backend(fresh)
    try:
        yield fresh
    finally:
        set_default_backend(BACKEND)
        fresh.close()


@pytest.mark.parametrize("kind", ["stdio", "function"])
def test_code_verdict_leaves_no_process(code_backend, kind):
    marker = f"rlvr-linger-{uuid.uuid4().hex[:12]}"
    body = daemons(marker)
    if kind == "stdio":
        ref = {"tests": [{"stdin": "", "stdout": "spawned\n"}, {"stdin": "x\n", "stdout": "spawned\n"}]}
        completion = f"```python\n{body}```"
    else:
        ref = {"entry_point": "f", "test": "def check(candidate):\n    assert candidate(1) == 2\n"}
        completion = f"```python\n{body}\ndef f(x):\n    return x + 1\n```"
    r = verifiers.verify("code", completion, ref, {"timeout_per_test_s": 2.0})
    assert r.status.value == "OK" and r.reward == 1.0, r.reason
    assert_nothing_left(marker)
