"""The local sandbox: bubblewrap namespaces, rlimits, per-run cgroups, a parent-side clock.

One run, from the outside in::

    [sh: join the run's cgroups]  ->  [setpriv: drop to uid 65534, no groups]  ->  bwrap
        new user, PID, network, IPC, UTS and mount namespaces; no further user namespaces
        /usr (and the /bin, /lib… links) read-only, nothing else of the host;
        a private size-capped /tmp; /sandbox = this run's files (read-only by default);
        a fresh minimal /dev and /proc; the environment cleared
      -> prlimit: CPU time, address space, file size, open files, processes, no core
        -> the program

The parent enforces the wall clock (SIGKILL to the whole process group; bwrap's
--die-with-parent then tears the PID namespace down, killing every descendant) and
drains stdout and stderr concurrently with a byte cap each, so a chatty program can
neither deadlock the pipe nor fill the server's memory. A run that exceeds the stdout
cap is killed and flagged: truncated output is never compared.

Nothing of a run outlives `run`: once the program has exited (or been killed), the
sandbox's init is SIGKILLed and waited for, which empties its PID namespace (pidns.py);
the run's cgroup, where there is one, is killed as well.

Exit statuses: bwrap reports a child killed by signal N as exit status 128+N, so a
program that exits with 128+N by itself is reported as killed by signal N (both are
failures either way). bwrap also writes its child's exit status on `--json-status-fd`
before it exits: a bwrap dead by a signal without having written it was killed itself,
before the program's outcome was known; unless the parent killed it (the clock, the
output cap) or the run's memory limit did, that kill came from outside the sandbox (an
operator, a supervisor) and the run is a SandboxError, the service's failure, not a
verdict about the program. (A program killed from outside by itself, bypassing bwrap,
cannot be told from its own crash.)
"""
from __future__ import annotations

import atexit
import concurrent.futures
import logging
import math
import os
import queue
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import replace
from collections.abc import Mapping, Sequence
from pathlib import Path

from .admission import IN_FLIGHT_PER_CPU_SLOT, Admission, CpuWatch, Ticket, host_memory_bytes
from .base import (WORKDIR, Limits, RunResult, SandboxBackend, SandboxError, SandboxFile,
                   SandboxUnavailableError, check_file_names)
from .cgroups import CgroupManager, RunCgroup
from .drain import drain
from .pidns import INIT_INFO_TIMEOUT_S, SandboxInit
from .seccomp import filter_fd, keyring_filter
from .zygote import SERVER_SCRIPT, SERVER_SOURCE, PythonZygote, ZygoteError

log = logging.getLogger(__name__)

# The launcher: write our pid into each cgroup.procs given before "--", then exec the rest.
_JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
_HOST_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/alternatives")
_COLLECT_MAX_BYTES = 256 << 20


class BubblewrapBackend(SandboxBackend):
    """Runs programs under bubblewrap. Thread-safe. Runs are admitted by what they use
    (admission.py): at most `max_concurrent` busy on the CPU (default: the host's cores),
    at most `max_in_flight` in the sandbox at once (default: 8 per CPU slot), their
    memory limits and output caps within `memory_budget_bytes` (default: half the host's memory), in
    turns per tenant (`verifiers.sandbox.tenant`)."""

    name = "bubblewrap"

    def __init__(self, bwrap: str | None = None, *, sandbox_uid: int = 65534, sandbox_gid: int = 65534,
                 ro_binds: Sequence[str] = ("/usr",), max_concurrent: int | None = None,
                 use_cgroups: bool = True, scratch_dir: str | None = None, prefork_python: bool = True,
                 max_in_flight: int | None = None, memory_budget_bytes: int | None = None) -> None:
        self.bwrap = bwrap or shutil.which("bwrap") or "/usr/bin/bwrap"
        self.sandbox_uid, self.sandbox_gid = sandbox_uid, sandbox_gid
        self.ro_binds = tuple(ro_binds)
        self.max_concurrent = max_concurrent or max(1, os.cpu_count() or 1)
        self.max_in_flight = max_in_flight or IN_FLIGHT_PER_CPU_SLOT * self.max_concurrent
        self.memory_budget_bytes = memory_budget_bytes or max(1 << 30, host_memory_bytes() // 2)
        self.admission = self._new_admission()
        self.cgroups = CgroupManager() if use_cgroups else None
        self._scratch_parent = scratch_dir
        self._scratch: Path | None = None
        self._lock = threading.Lock()
        self._scratch_lock = threading.Lock()
        self._probe: tuple[bool, str] | None = None
        self._features: set[str] = set()
        # Pre-forked interpreters for run_python, idle ones by (interpreter, env).
        self._zygote_off: str | None = None if prefork_python else "disabled (prefork_python=False)"
        self._idle_zygotes: dict[tuple, list[PythonZygote]] = {}
        self._zygote_lock = threading.Lock()
        self._closed = False
        # Counters (runs through a zygote, Python runs in a fresh sandbox, zygotes started / lost).
        self._stats_lock = threading.Lock()
        self.stats = {"prefork_runs": 0, "fresh_python_runs": 0, "zygotes_started": 0, "zygotes_lost": 0,
                      "zygotes_retired": 0}
        self._seccomp = keyring_filter()
        _BACKENDS.add(self)

    def _new_admission(self) -> Admission:
        return Admission(self.max_concurrent, self.max_in_flight, self.memory_budget_bytes)

    # -- availability ---------------------------------------------------------------

    def label(self) -> str:
        return "bubblewrap sandbox"

    def _check(self) -> tuple[bool, str]:
        if not (os.path.isfile(self.bwrap) and os.access(self.bwrap, os.X_OK)):
            return False, (f"bubblewrap not found ({self.bwrap}); install the Debian package 'bubblewrap' "
                           f"— code is never run unsandboxed")
        for tool in ("/usr/bin/prlimit",) + (("/usr/bin/setpriv",) if os.geteuid() == 0 else ()):
            if not os.access(tool, os.X_OK):
                return False, f"{tool} not found (util-linux); it sets the sandbox's limits"
        try:
            help_text = subprocess.run([self.bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError) as e:
            return False, f"bubblewrap does not start: {e}"
        self._features = {f for f in ("--disable-userns", "--size", "--die-with-parent", "--json-status-fd")
                          if f in help_text}
        try:
            r = self._run_unchecked({}, ["/usr/bin/true"], b"", Limits(wall_time_s=10, cpu_time_s=2))
        except OSError as e:
            return False, f"bubblewrap cannot create namespaces here: {e}"
        if r.exit_code != 0:
            detail = r.stderr.decode(errors="replace").strip().splitlines()
            return False, (f"bubblewrap cannot create a sandbox here ({r.describe()}): "
                           f"{detail[-1] if detail else 'no message'}")
        return True, ""

    def limits_in_force(self) -> dict[str, str]:
        mem_cg, pids_cg, why = self.cgroups.probe() if self.cgroups else (False, False, "disabled")
        cg = ("cgroup v2" if self.cgroups and self.cgroups.v2 else "cgroup v1")
        user = (f"uid {self.sandbox_uid} (setpriv from root)" if os.geteuid() == 0
                else f"uid {os.geteuid()} (unprivileged user namespace)")
        return {
            "namespaces": "user, pid, net (no network), ipc, uts, mount"
                          + (", nested user namespaces disabled" if "--disable-userns" in self._features else ""),
            "filesystem": f"read-only {', '.join(self.ro_binds)} + /bin,/lib links; private /tmp"
                          + (" (size-capped)" if "--size" in self._features else " (not size-capped: bwrap too old)")
                          + f"; run files at {WORKDIR}; server cwd, database, config not mounted",
            "environment": "cleared (PATH, HOME=/tmp, TMPDIR, LANG, MALLOC_ARENA_MAX=2 only)",
            "user": user,
            "rlimits": "cpu, as, fsize, nofile, nproc, stack, core=0",
            "wall_clock": "enforced by the parent (SIGKILL of the process group; PID namespace torn down)",
            "output": "stdout/stderr drained concurrently, capped in bytes; over the stdout cap = killed",
            "memory_cgroup": f"{cg} memory limit per run" if mem_cg else f"not enforced ({why}); RLIMIT_AS only",
            "pids_cgroup": f"{cg} pids limit per run" if pids_cg else f"not enforced ({why}); RLIMIT_NPROC only",
            "cpu_time": ("RLIMIT_CPU (whole seconds), measured by the run's cgroup"
                         if self.cgroups and (self.cgroups.cpuacct_parent or self.cgroups.v2)
                         else "RLIMIT_CPU only (whole seconds); not measured without a cpuacct cgroup"),
            "syscall_filter": ("seccomp: add_key, request_key, keyctl and foreign-ABI syscalls refused "
                               "(kernel keyrings are not namespaced)" if self._seccomp else
                               "not enforced (no seccomp program for this machine's syscall numbers)"),
            "concurrency": (f"runs admitted by use: at most {self.max_concurrent} busy on the CPU ("
                            + ("a sleeping run gives its slot back, seen by its cgroup's CPU time"
                               if self.cgroups and (self.cgroups.cpuacct_parent or self.cgroups.v2)
                               else "not measured without a cpuacct cgroup: a run holds its slot")
                            + f"), at most {self.max_in_flight} in flight, their memory limits and output "
                              f"caps within {self.memory_budget_bytes >> 20} MiB; in turns per tenant"),
            "python_runs": (f"fresh sandbox per run (pre-forked interpreter {self._zygote_off})" if self._zygote_off
                            else "pre-forked interpreter per sandbox slot; each run forked into new PID, mount, "
                                 "IPC and network namespaces under an init of its own (nothing outlives it), "
                                 "fresh /tmp, /dev/shm and /sandbox, all capabilities dropped, no_new_privs, "
                                 "the same rlimits, seccomp filter and cgroup limits"),
        }

    # -- running ----------------------------------------------------------------------

    def run(self, files: Mapping[str, bytes | SandboxFile], cmd: Sequence[str], stdin: bytes = b"",
            limits: Limits = Limits(), *, env: Mapping[str, str] | None = None,
            collect: Sequence[str] = ()) -> RunResult:
        if self._probe is None:
            self.available()
        ok, why = self._probe  # type: ignore[misc]
        if not ok:
            raise SandboxUnavailableError(why)
        with self.admission.admit(limits.memory_bytes + limits.output_bytes) as ticket:
            r = self._run_unchecked(files, cmd, stdin, limits, env=env, collect=collect, ticket=ticket)
        return replace(r, queued_s=ticket.queued_s)

    def run_python(self, files: Mapping[str, bytes | SandboxFile], script: str, stdin: bytes = b"",
                   limits: Limits = Limits(), *, env: Mapping[str, str] | None = None,
                   interpreter: str = "/usr/bin/python3") -> RunResult:
        """Run `script` (one of `files`) with `interpreter`, forked from a pre-started
        interpreter in a long-lived sandbox (zygote.py) when this host allows it, else in a
        fresh sandbox like `run`. Same isolation and limits either way; see
        limits_in_force()["python_runs"]."""
        if self._probe is None:
            self.available()
        ok, why = self._probe  # type: ignore[misc]
        if not ok:
            raise SandboxUnavailableError(why)
        check_file_names(files)  # a bad name is the caller's error, not the zygote's
        run_env = self._run_env(env)
        with self.admission.admit(limits.memory_bytes + limits.output_bytes) as ticket:
            r = self._run_python_admitted(files, script, stdin, limits, run_env, interpreter, env, ticket)
        return replace(r, queued_s=ticket.queued_s)

    def _run_python_admitted(self, files: Mapping[str, bytes | SandboxFile], script: str, stdin: bytes,
                             limits: Limits, run_env: dict[str, str], interpreter: str,
                             env: Mapping[str, str] | None, ticket: Ticket) -> RunResult:
        key = (interpreter, tuple(sorted(run_env.items())))
        for _ in range(2):  # a zygote lost before the script started: one more try
            if self._zygote_off is not None:
                break
            z: PythonZygote | None = None
            try:
                z = self._take_zygote(key, run_env, interpreter)
                r = z.run(files, script, stdin, limits, run_env, ticket=ticket)
            except ZygoteError as e:  # raised only when the script did not start
                self._zygote_failed(e, z)
                continue
            except BaseException:
                if z is not None:
                    self._close_zygote(z)
                raise
            self._give_back_zygote(key, z)
            self._count("prefork_runs")
            return r
        self._count("fresh_python_runs")
        return self._run_unchecked(files, [interpreter, "-B", "-s", script], stdin, limits, env=env,
                                   ticket=ticket)

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _take_zygote(self, key: tuple, run_env: Mapping[str, str], interpreter: str) -> PythonZygote:
        with self._zygote_lock:
            idle = self._idle_zygotes.get(key, [])
            while idle:
                z = idle.pop()
                if z.alive():
                    return z
                self._count("zygotes_lost")  # killed while idle (OOM killer, an operator)
                self._close_zygote(z)
            # At most max_in_flight idle zygotes: make room by closing an idle one of another kind.
            if sum(len(v) for v in self._idle_zygotes.values()) >= self.max_in_flight:
                for other in self._idle_zygotes.values():
                    if other:
                        self._close_zygote(other.pop())
                        break
        work = self._make_workdir({SERVER_SCRIPT: SERVER_SOURCE}, writable=False)
        cg = None
        try:
            cg = self.cgroups.create(None, None) if self.cgroups else None
            seccomp_fd = filter_fd(self._seccomp) if self._seccomp else -1
            init = SandboxInit()
            try:
                argv = self._launch_prefix(cg) + self._bwrap_args(
                    work, Limits(), run_env, raw_env=True, seccomp_fd=seccomp_fd, init=init,
                    caps=("CAP_SYS_ADMIN", "CAP_SETPCAP", "CAP_NET_ADMIN")) + ["--"]
                # Started from one long-lived thread: bwrap's --die-with-parent fires when the
                # *thread* that forked it exits, and callers' pool threads come and go.
                z = _launcher().submit(PythonZygote, argv, interpreter, cg,
                                       [seccomp_fd] if seccomp_fd >= 0 else [], init).result()
            except BaseException:
                init.kill_and_wait()
                init.close()
                raise
            finally:
                if seccomp_fd >= 0:
                    os.close(seccomp_fd)
        except BaseException:
            _reaper.put(work, cg)
            raise
        z.work = work  # type: ignore[attr-defined]
        self._count("zygotes_started")
        return z

    def _give_back_zygote(self, key: tuple, z: PythonZygote) -> None:
        if not z.alive() or not z.reusable:
            self._count("zygotes_lost" if not z.alive() else "zygotes_retired")
            self._close_zygote(z)
            return
        with self._zygote_lock:
            keep = not self._closed and sum(len(v) for v in self._idle_zygotes.values()) < self.max_in_flight
            if keep:
                self._idle_zygotes.setdefault(key, []).append(z)
        if not keep:  # the backend was closed meanwhile, or enough are idle
            self._close_zygote(z)

    def _close_zygote(self, z: PythonZygote) -> None:
        z.close()
        _reaper.put(z.work, z.cg)  # type: ignore[attr-defined]

    def _zygote_failed(self, e: ZygoteError, z: PythonZygote | None) -> None:
        """This run falls back to a fresh sandbox. A zygote that cannot start or set a run
        up will not do better next time: then fresh sandboxes for good, said in
        limits_in_force(); a zygote merely lost (killed) is replaced on the next run."""
        log.warning("pre-forked Python interpreter: %s", e)
        self._count("zygotes_lost")
        if z is not None:
            self._close_zygote(z)
        if e.permanent:
            self._zygote_off = f"off after a failure: {str(e)[:300]}"
            with self._zygote_lock:
                idle = [z for v in self._idle_zygotes.values() for z in v]
                self._idle_zygotes.clear()
            for z in idle:
                self._close_zygote(z)

    def _run_env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        # MALLOC_ARENA_MAX: glibc reserves 64 MiB of address space per thread arena, which
        # under RLIMIT_AS left a 256 MiB program room for five threads.
        return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
                "MALLOC_ARENA_MAX": "2", **(env or {})}

    def _launch_prefix(self, cg: RunCgroup | None) -> list[str]:
        """What runs before bwrap: join the cgroups, drop to the sandbox uid (as root)."""
        argv: list[str] = []
        if cg is not None:
            argv += ["/bin/sh", "-c", _JOIN_CGROUPS, "sh", *cg.procs_files, "--"]
        if os.geteuid() == 0:
            argv += ["/usr/bin/setpriv", f"--reuid={self.sandbox_uid}", f"--regid={self.sandbox_gid}",
                     "--clear-groups", "--"]
        return argv

    def _scratch_dir(self) -> Path:
        with self._scratch_lock:
            if self._scratch is None:
                base = Path(self._scratch_parent or tempfile.gettempdir())
                # One per backend: closing one backend must not pull the floor from another.
                d = Path(tempfile.mkdtemp(prefix=f"rlvr-sandbox-{os.getpid()}-", dir=base))
                os.chmod(d, 0o711)  # searchable (bwrap binds as the sandbox uid), not listable
                self._scratch = d
                _SCRATCH_DIRS.add(d)
            return self._scratch

    def _make_workdir(self, files: Mapping[str, bytes | SandboxFile], writable: bool) -> Path:
        check_file_names(files)
        work = Path(tempfile.mkdtemp(prefix="run-", dir=self._scratch_dir()))
        os.chmod(work, 0o755)
        for name, content in files.items():
            f = content if isinstance(content, SandboxFile) else SandboxFile(content)
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.data)
            os.chmod(path, 0o755 if f.executable else 0o644)
        if writable and os.geteuid() == 0:
            for p in [work, *work.rglob("*")]:
                os.chown(p, self.sandbox_uid, self.sandbox_gid, follow_symlinks=False)
        return work

    def _bwrap_args(self, work: Path, limits: Limits, env: Mapping[str, str] | None, *, raw_env: bool = False,
                    caps: Sequence[str] = (), seccomp_fd: int = -1, init: SandboxInit | None = None) -> list[str]:
        """bwrap's options for one sandbox. `caps`: capabilities kept inside the sandbox's
        own user namespace (only the zygote keeps any, to give each run namespaces).
        `init`: where bwrap reports its init's PID (pass `init.write_fd` to it)."""
        a = [self.bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
             "--hostname", "sandbox", "--clearenv"]
        if init is not None:
            a += init.args()
        if "--disable-userns" in self._features:
            a.append("--disable-userns")
        for cap in caps:
            a += ["--cap-add", cap]
        if seccomp_fd >= 0:
            a += ["--seccomp", str(seccomp_fd)]
        for k, v in (dict(env or {}) if raw_env else self._run_env(env)).items():
            a += ["--setenv", k, v]
        for b in self.ro_binds:
            a += ["--ro-bind", b, b]
        for link in _HOST_LINKS:
            if os.path.islink(link):
                a += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link) and link not in self.ro_binds:
                a += ["--ro-bind", link, link]
        for f in _ETC_FILES:
            a += ["--ro-bind-try", f, f]
        a += ["--proc", "/proc", "--dev", "/dev"]
        if "--size" in self._features:
            a += ["--size", str(limits.tmpfs_bytes)]
        a += ["--tmpfs", "/tmp"]
        a += ["--bind" if limits.writable_workdir else "--ro-bind", str(work), WORKDIR, "--chdir", WORKDIR,
              "--remount-ro", "/"]
        return a

    @staticmethod
    def _prlimit_args(limits: Limits) -> list[str]:
        cpu = max(1, math.ceil(limits.cpu_time_s))
        aspace = limits.effective_address_space_bytes
        return ["/usr/bin/prlimit", f"--cpu={cpu}:{cpu + 1}", f"--as={aspace}", f"--fsize={limits.file_size_bytes}",
                f"--nofile={limits.open_files}", f"--nproc={limits.processes + 1}",  # +1: bwrap's init
                f"--stack={min(aspace, limits.stack_bytes)}", "--core=0", "--"]

    def _run_unchecked(self, files: Mapping[str, bytes | SandboxFile], cmd: Sequence[str], stdin: bytes,
                       limits: Limits, *, env: Mapping[str, str] | None = None,
                       collect: Sequence[str] = (), ticket: Ticket | None = None) -> RunResult:
        work = self._make_workdir(files, limits.writable_workdir)
        cg: RunCgroup | None = None
        stdin_fd = seccomp_fd = -1
        init = SandboxInit()
        # bwrap's status reports (JSON lines): {"exit-code": N} once its child has exited.
        status_r, status_w = os.pipe2(os.O_CLOEXEC) if "--json-status-fd" in self._features else (-1, -1)
        try:
            cg = self.cgroups.create(limits.memory_bytes, limits.processes + 2) if self.cgroups else None
            watch = CpuWatch(ticket, cg.cpu_time_s if cg is not None else (lambda: None))
            argv = self._launch_prefix(cg)
            seccomp_fd = filter_fd(self._seccomp) if self._seccomp else -1
            argv += (self._bwrap_args(work, limits, env, seccomp_fd=seccomp_fd, init=init)
                     + (["--json-status-fd", str(status_w)] if status_w >= 0 else []) + ["--"]
                     + self._prlimit_args(limits) + list(cmd))

            # stdin from an anonymous in-memory file: the program reads at its own pace and
            # the parent never blocks writing to a pipe nobody reads.
            stdin_fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
            view = memoryview(stdin)
            while view:
                view = view[os.write(stdin_fd, view):]
            os.lseek(stdin_fd, 0, os.SEEK_SET)

            t0 = time.monotonic()
            proc = subprocess.Popen(argv, stdin=stdin_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env={"PATH": "/usr/bin:/bin"}, close_fds=True, start_new_session=True,
                                    pass_fds=[init.write_fd] + [fd for fd in (seccomp_fd, status_w) if fd >= 0],
                                    cwd="/")
            os.close(stdin_fd)
            stdin_fd = -1
            if status_w >= 0:
                os.close(status_w)
                status_w = -1
            if seccomp_fd >= 0:
                os.close(seccomp_fd)
                seccomp_fd = -1
            pidfd = os.pidfd_open(proc.pid)
            try:
                init.started(min(t0 + INIT_INFO_TIMEOUT_S, t0 + limits.wall_time_s))
                out, err, flags = drain(proc.stdout.fileno(), proc.stderr.fileno(),  # type: ignore[union-attr]
                                        pidfd, t0 + limits.wall_time_s, limits.output_bytes, limits.stderr_bytes,
                                        lambda: _kill(proc, cg, init), watch.tick)
            finally:
                os.close(pidfd)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
            init.kill_and_wait()  # the program is done: so is everything it started
            wall = time.monotonic() - t0
            for s in (proc.stdout, proc.stderr):
                s.close()  # type: ignore[union-attr]
            # bwrap exits as soon as its child does, without reaping the sandbox's init, so
            # wait4's rusage misses the program: the cgroup's CPU accounting does not.
            cg_cpu = cg.cpu_time_s() if cg is not None else None
            cpu = cg_cpu if cg_cpu is not None else usage.ru_utime + usage.ru_stime
            code: int | None = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            sig: int | None = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            if code is not None and code > 128 and (code - 128) in _SIGNALS:
                code, sig = None, code - 128
            oom = cg.oom_killed() if cg is not None else False
            if (status_r >= 0 and os.WIFSIGNALED(status) and b'"exit-code"' not in _read_available(status_r)
                    and not (flags["timed_out"] or flags["stdout_over"] or oom)):
                raise SandboxError(f"the sandbox was killed from outside during the run (bwrap: "
                                   f"{_signame(os.WTERMSIG(status))}); the program's outcome is unknown")
            peak = cg.peak_memory_bytes() if cg is not None else None
            cpu_hit = sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_time_s * 0.98
                                                and not flags["timed_out"])
            files_out = _collect(work, collect) if collect else {}
            return RunResult(exit_code=code, signal=sig, stdout=bytes(out), stderr=bytes(err), wall_time_s=wall,
                             cpu_time_s=cpu, timed_out=flags["timed_out"], cpu_limit_hit=cpu_hit,
                             memory_limit_hit=oom and not (code == 0),
                             output_limit_hit=flags["stdout_over"], stdout_truncated=flags["stdout_over"],
                             stderr_truncated=flags["stderr_over"], peak_memory_bytes=peak, files=files_out)
        finally:
            for fd in (stdin_fd, seccomp_fd, status_r, status_w):
                if fd >= 0:
                    os.close(fd)
            init.kill_and_wait()  # (again, for a run that raised: idempotent)
            init.close()
            if cg is not None:
                cg.kill_all()  # nothing of the run outlives `run` (where cgroups are in force)
            # Removing a directory that was a mount source in a namespace still being torn
            # down costs milliseconds: leave it (and the empty cgroups) to the reaper thread.
            _reaper.put(work, cg)

    def close(self) -> None:
        """Stop the idle zygotes, wait for the reaper and remove this backend's scratch space
        (also done at exit)."""
        with self._zygote_lock:
            self._closed = True
            idle = [z for v in self._idle_zygotes.values() for z in v]
            self._idle_zygotes.clear()
        for z in idle:
            self._close_zygote(z)
        _reaper.flush()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            _SCRATCH_DIRS.discard(self._scratch)
            self._scratch = None
        if self.cgroups is not None:
            self.cgroups.cleanup()


_SIGNALS = {int(s) for s in signal.Signals}


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _read_available(fd: int) -> bytes:
    """What a pipe holds now, without waiting (its writer may be gone or not)."""
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)


class _Reaper:
    """One daemon thread that removes finished runs' directories and cgroups."""

    def __init__(self) -> None:
        self._q: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, work: Path, cg: RunCgroup | None) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="sandbox-reaper", daemon=True)
                self._thread.start()
        self._q.put((work, cg))

    def _loop(self) -> None:
        while True:
            work, cg = self._q.get()
            try:
                if cg is not None:
                    cg.remove()
                shutil.rmtree(work, ignore_errors=True)
            finally:
                self._q.task_done()

    def flush(self) -> None:
        """Wait until everything queued so far is removed."""
        if self._thread is not None:
            self._q.join()


_reaper = _Reaper()
_BACKENDS: weakref.WeakSet[BubblewrapBackend] = weakref.WeakSet()


def _forget_after_fork() -> None:
    """In a forked child: the threads (launcher, reaper), the zygotes, the slots held by
    the parent's threads and the scratch directory are the parent's. Start afresh."""
    global _launcher_pool, _reaper
    _launcher_pool = None
    _reaper = _Reaper()
    for b in list(_BACKENDS):
        b._idle_zygotes = {}
        b._zygote_lock = threading.Lock()
        b._stats_lock = threading.Lock()
        b._scratch_lock = threading.Lock()
        b._lock = threading.Lock()
        b.admission = b._new_admission()
        b._scratch = None


os.register_at_fork(after_in_child=_forget_after_fork)
_launcher_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _launcher() -> concurrent.futures.ThreadPoolExecutor:
    """The one thread that starts zygotes (it lives as long as the process)."""
    global _launcher_pool
    with _launcher_lock:
        if _launcher_pool is None:
            _launcher_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sandbox-zygote-launcher")
        return _launcher_pool


_launcher_lock = threading.Lock()
_SCRATCH_DIRS: set[Path] = set()


@atexit.register
def _cleanup_at_exit() -> None:
    for b in list(_BACKENDS):
        with b._zygote_lock:
            idle = [z for v in b._idle_zygotes.values() for z in v]
            b._idle_zygotes.clear()
        for z in idle:
            b._close_zygote(z)
    _reaper.flush()
    for d in _SCRATCH_DIRS:
        if d.name.startswith(f"rlvr-sandbox-{os.getpid()}-"):  # not a forked parent's
            shutil.rmtree(d, ignore_errors=True)


def _kill(proc: subprocess.Popen, cg: RunCgroup | None, init: SandboxInit | None = None) -> None:
    if init is not None:
        init.kill()  # the whole PID namespace at once
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if cg is not None:
        cg.kill_all()


def _collect(work: Path, names: Sequence[str]) -> dict[str, bytes]:
    """Read back named regular files from the run's directory, never following links."""
    out: dict[str, bytes] = {}
    for name in names:
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or len(rel.parts) != 1:
            continue
        try:
            fd = os.open(work / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size <= _COLLECT_MAX_BYTES:
                with os.fdopen(fd, "rb", closefd=False) as f:
                    out[name] = f.read(_COLLECT_MAX_BYTES)
        finally:
            os.close(fd)
    return out
