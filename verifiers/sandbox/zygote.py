"""Trusted side of the pre-forked Python interpreter (see zygote_server.py).

A `PythonZygote` is one long-lived bubblewrap sandbox holding an imported interpreter;
`run` hands it one script run at a time and observes the run from outside exactly as
a fresh sandbox is observed: the parent keeps the wall clock, drains stdout and stderr
with byte caps, and reads CPU time, OOM kills and peak memory from the zygote's cgroup
(one run at a time per zygote, so the cgroup's deltas are the run's).

A fresh interpreter costs ~10 ms of CPU plus its imports per run; a fork costs ~2 ms.
That difference is most of the code verifier's throughput on function tests.
"""
from __future__ import annotations

import base64
import json
import os
import select
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .admission import CpuWatch, Ticket
from .base import Limits, RunResult, SandboxError, SandboxFile, check_file_names
from .cgroups import RunCgroup
from .drain import drain
from .pidns import INIT_INFO_TIMEOUT_S, SandboxInit

SERVER_SCRIPT = "zygote_server.py"
START_TIMEOUT_S = 20.0
RESULT_GRACE_S = 5.0
DONE_GRACE_S = 10.0
# Unreclaimable memory (anon, shmem, unevictable) still charged after a run beyond the
# zygote's own: past this the zygote is replaced rather than shrink the next run's room.
REUSE_SLACK_BYTES = 4 << 20
# The zygote's own memory is charged to its cgroup too: the run's limit is on top of it.
BASELINE_SLACK_BYTES = 16 << 20
SERVER_SOURCE = (Path(__file__).resolve().parent / SERVER_SCRIPT).read_bytes()


class ZygoteError(SandboxError):
    """The zygote could not run the request (it is discarded; the caller may fall back to
    a fresh sandbox). Never a verdict about the program. `permanent`: this host cannot
    run zygotes at all (start-up or per-run isolation failed), as opposed to one zygote
    lost."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class PythonZygote:
    """One pre-forked interpreter in its own sandbox. Not thread-safe: one run at a time
    (the backend hands each zygote to one caller)."""

    def __init__(self, argv_prefix: Sequence[str], interpreter: str, cg: RunCgroup | None,
                 extra_fds: Sequence[int] = (), init: SandboxInit | None = None) -> None:
        """`argv_prefix`: the bwrap command line up to "--"; `init`: the SandboxInit whose
        `args()` it holds (closing the zygote then waits until its sandbox is empty)."""
        self.cg = cg
        self.init = init
        self.proc: subprocess.Popen | None = None
        self.reusable = True  # False once a run left the zygote unfit for another
        self._mem_limit: int | None = None
        self._pids_limit: int | None = None
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._stderr = os.memfd_create("zygote-stderr", os.MFD_CLOEXEC)
        argv = [*argv_prefix, interpreter, "-B", "-s", SERVER_SCRIPT, str(theirs.fileno())]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=self._stderr,
                                         pass_fds=[theirs.fileno(), *extra_fds,
                                                   *([init.write_fd] if init is not None else [])],
                                         env={"PATH": "/usr/bin:/bin"}, start_new_session=True, cwd="/")
        except OSError as e:
            self.close()
            raise ZygoteError(f"the Python zygote did not start: {e}", permanent=True) from e
        finally:
            theirs.close()
        if init is not None:
            init.started(time.monotonic() + INIT_INFO_TIMEOUT_S)
        ready = self._recv_exact(6, time.monotonic() + START_TIMEOUT_S)
        if ready != b"READY\n":
            self.close()
            raise ZygoteError(f"the Python zygote did not start: {self.stderr_tail() or 'no message'}",
                              permanent=True)
        self.baseline_bytes = self._usage_bytes()
        self.baseline_unreclaimable = self.cg.unreclaimable_bytes() if self.cg is not None else 0

    # -- one run ------------------------------------------------------------------

    def run(self, files: Mapping[str, bytes | SandboxFile], script: str, stdin: bytes, limits: Limits,
            env: Mapping[str, str], *, ticket: Ticket | None = None) -> RunResult:
        """Run `script` (one of `files`) as __main__ in a fresh fork, under `limits`.
        `ticket`: the run's admission, told when the run sleeps (admission.py).

        Raises ZygoteError only when the script did not start (the zygote is unusable, or
        the run's set-up failed before the script ran): the caller may then run it
        elsewhere. Once the script may have started, every outcome is a RunResult (a
        supervisor lost to the run's own memory use is a killed run) or, when the zygote
        or the supervisor was lost for another reason (killed from outside, a crash of
        ours), SandboxError: the service's failure, never a verdict about the program and
        never a second execution."""
        if not self.alive():
            raise ZygoteError("the Python zygote has exited")
        check_file_names(files)
        req = {"script": script, "env": dict(env),
               "files": {n: [base64.b64encode(f.data if isinstance(f, SandboxFile) else f).decode(),
                             bool(isinstance(f, SandboxFile) and f.executable)] for n, f in files.items()},
               "limits": self._rlimits(limits)}
        try:
            self._prepare_cgroup(limits)
        except OSError as e:  # e.g. a lower memory limit than what is still charged
            self.close()
            raise ZygoteError(f"cannot set the zygote's cgroup limits: {e}") from e
        cpu0 = self.cg.cpu_time_s() if self.cg is not None else None
        watch = CpuWatch(ticket, self.cg.cpu_time_s if self.cg is not None else (lambda: None))
        oom0 = self.cg.oom_kill_count() if self.cg is not None else 0
        fds = {"stdin": -1, "out_r": -1, "out_w": -1, "err_r": -1, "err_w": -1}
        try:
            fds["stdin"] = os.memfd_create("stdin", os.MFD_CLOEXEC)
            fds["out_r"], fds["out_w"] = os.pipe2(os.O_CLOEXEC)
            fds["err_r"], fds["err_w"] = os.pipe2(os.O_CLOEXEC)
            view = memoryview(stdin)
            while view:
                view = view[os.write(fds["stdin"], view):]
            os.lseek(fds["stdin"], 0, os.SEEK_SET)
            body = json.dumps(req).encode()
            t0 = time.monotonic()
            try:
                socket.send_fds(self.sock, [b"R"], [fds["stdin"], fds["out_w"], fds["err_w"]])
                self.sock.sendall(struct.pack(">I", len(body)) + body)
            except OSError as e:
                self.close()
                raise ZygoteError(f"the Python zygote stopped taking requests: {e}") from e
            finally:
                for k in ("stdin", "out_w", "err_w"):
                    os.close(fds[k])
                    fds[k] = -1
            out, err, flags = drain(fds["out_r"], fds["err_r"], self.sock.fileno(), t0 + limits.wall_time_s,
                                    limits.output_bytes, limits.stderr_bytes, self._kill_run, watch.tick)
            msg, done = self._recv_outcome()
            wall = time.monotonic() - t0
        finally:
            for fd in fds.values():
                if fd >= 0:
                    os.close(fd)
        if msg is not None and msg.get("setup_error"):  # the script never started
            self.close()
            raise ZygoteError(f"the Python zygote could not set a run up: {msg['setup_error']}",
                              permanent=bool(msg.get("isolation")))
        if (msg is None or "error" in msg) and not flags["timed_out"] and not (
                self.cg is not None and self.cg.oom_kill_count() > oom0):
            # No report, and neither the run's memory nor its clock explains it: the zygote
            # or the supervisor was lost (killed from outside, a crash of ours).
            why = "no report from the run's supervisor" if msg is None else str(msg.get("error"))[:200]
            exited = self.proc is not None and self._exited_within(1.0)
            self.close()
            raise SandboxError(f"the sandbox's pre-forked interpreter was lost during the run "
                               f"({'it was killed' if exited else why}); the program's outcome is unknown")
        if msg is None or "error" in msg or not done:
            # The supervisor was lost to the OOM killer or the wall clock: the run counts as killed.
            why = "no report from the run's supervisor" if msg is None else msg.get("error", "no teardown ack")
            self.close()
            msg = {"status": signal.SIGKILL, "utime": 0.0, "stime": 0.0, "killed": True, "lost": why}
        status = int(msg["status"])
        code: int | None = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig: int | None = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        cpu1 = self.cg.cpu_time_s() if self.cg is not None else None
        cpu = (cpu1 - cpu0) if (cpu0 is not None and cpu1 is not None) else float(msg["utime"] + msg["stime"])
        oom = self.cg is not None and self.cg.oom_kill_count() > oom0
        peak = self.cg.peak_memory_bytes() if self.cg is not None else None
        cpu_hit = sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_time_s * 0.98
                                            and not flags["timed_out"] and not msg["killed"])
        stderr = bytes(err) + (f"\n[sandbox: {msg['lost']}]".encode() if "lost" in msg else b"")
        if self.alive() and self.cg is not None and (
                self.cg.unreclaimable_bytes() > self.baseline_unreclaimable + REUSE_SLACK_BYTES):
            # Something of the run is still charged and cannot be reclaimed (e.g. a memfd in
            # a cycle of unix sockets the kernel frees later): it would count against the
            # next run's limit, so the next run gets a new zygote.
            self.reusable = False
        return RunResult(exit_code=code, signal=sig, stdout=bytes(out), stderr=stderr, wall_time_s=wall,
                         cpu_time_s=cpu, timed_out=flags["timed_out"], cpu_limit_hit=cpu_hit,
                         memory_limit_hit=oom and not (code == 0), output_limit_hit=flags["stdout_over"],
                         stdout_truncated=flags["stdout_over"], stderr_truncated=flags["stderr_over"],
                         peak_memory_bytes=None if peak is None else max(0, peak - self.baseline_bytes))

    @staticmethod
    def _rlimits(limits: Limits) -> dict[str, int | bool]:
        cpu = max(1, int(-(-limits.cpu_time_s // 1)))
        aspace = limits.effective_address_space_bytes
        return {"cpu": cpu, "as": aspace, "fsize": limits.file_size_bytes, "nofile": limits.open_files,
                # counted per user namespace: bwrap's init, the zygote, the supervisor and the
                # run's init are four more (a fresh sandbox: bwrap's init, one more)
                "nproc": limits.processes + 4, "stack": min(aspace, limits.stack_bytes), "core": 0,
                "tmpfs_bytes": limits.tmpfs_bytes, "writable_workdir": limits.writable_workdir}

    def _prepare_cgroup(self, limits: Limits) -> None:
        if self.cg is None:
            return
        mem = limits.memory_bytes + self.baseline_bytes + BASELINE_SLACK_BYTES
        if mem != self._mem_limit:
            self.cg.set_memory_limit(mem)
            self._mem_limit = mem
        pids = limits.processes + 5  # + bwrap (outside and its init), zygote, supervisor, run's init
        if pids != self._pids_limit:
            self.cg.set_pids_limit(pids)
            self._pids_limit = pids
        self.cg.reset_peak()

    def _usage_bytes(self) -> int:
        return self.cg.memory_usage_bytes() if self.cg is not None else 0

    def _kill_run(self) -> None:
        try:
            self.sock.send(b"K")
        except OSError:
            self.close()

    # -- plumbing -------------------------------------------------------------------

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                break
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        return bytes(buf)

    def _recv_outcome(self) -> tuple[dict | None, bool]:
        """(the supervisor's report or None, whether the zygote said the run is over).
        b"M" + length + JSON is the report; b"D" follows once the run's namespaces are
        gone; a b"D" first means the supervisor died without a report."""
        msg = None
        tag = self._recv_exact(1, time.monotonic() + RESULT_GRACE_S)
        if tag == b"M":
            deadline = time.monotonic() + RESULT_GRACE_S
            head = self._recv_exact(4, deadline)
            if len(head) == 4:
                (n,) = struct.unpack(">I", head)
                body = self._recv_exact(n, deadline)
                try:
                    msg = json.loads(body) if len(body) == n else None
                except ValueError:
                    msg = None
            if msg is None:
                return None, False
            tag = self._recv_exact(1, time.monotonic() + DONE_GRACE_S)
        return msg, tag == b"D"

    def _exited_within(self, timeout_s: float) -> bool:
        try:
            self.proc.wait(timeout=timeout_s)  # type: ignore[union-attr]
            return True
        except subprocess.TimeoutExpired:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.sock.fileno() >= 0

    def stderr_tail(self, n: int = 500) -> str:
        try:
            size = os.fstat(self._stderr).st_size
            return os.pread(self._stderr, n, max(0, size - n)).decode(errors="replace").strip()
        except OSError:
            return ""

    def close(self) -> None:
        """Kill the zygote's sandbox (and anything in it, runs included: their PID
        namespaces are nested in the zygote's) and wait until it is empty."""
        if self.init is not None:
            self.init.kill_and_wait()
            self.init.close()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.cg is not None:
                self.cg.kill_all()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            self.sock.close()
        except OSError:
            pass
        if self._stderr >= 0:
            os.close(self._stderr)
            self._stderr = -1
