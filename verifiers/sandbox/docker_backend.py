"""The production sandbox: a warm pool of locked-down Docker containers.

    backend = DockerBackend(image="rlvr-sandbox:latest")   # scripts/docker-runner-image.sh builds it
    backend.warm(2)                                         # optional: start containers now
    backend.run({"main.py": b"print(input())"}, ["/usr/bin/python3", "main.py"], b"hi\\n", Limits())

Same contract and the same `RunResult` semantics as the bubblewrap backend (see
`base.py`), so the `code` verifier runs unchanged on either.

One container, from the outside in::

    docker (engine API, the docker SDK): network_mode=none, read-only root file system,
        cap_drop=ALL, no-new-privileges, the engine's default seccomp profile,
        memory (+swap) and pids cgroup limits, a private IPC namespace,
        tmpfs /tmp, /sandbox and /dev/shm (size-capped), logging driver "none",
        user = a non-root uid of its own (no /etc/passwd entry; unique per container, so
        RLIMIT_NPROC counts this container's processes only)
      PID 1: the agent (`_AGENT`, python3 -I -S), non-dumpable (no ptrace, no /proc/1/fd),
        no signal handlers (the kernel drops signals sent to a namespace's init from
        inside it), talking to this process over the container's attach stream
        -> per run, forked: new session, oom_score_adj 1000, stdin from a memfd,
           stdout/stderr socket pairs to the agent, cwd /sandbox, environment cleared,
           rlimits (CPU, address space, file size, open files, processes, stack, core=0)
          -> the program

Why an agent rather than `docker exec` per run: an exec costs ~50 ms of engine and runc
work (more on a loaded host), a message on the already-open attach stream ~0.1 ms. The
agent does what the bubblewrap backend's parent does, inside the container: drains
stdout and stderr with a byte cap each (over the stdout cap = killed and flagged),
enforces the wall clock, and when the program ends (or is killed) sends SIGKILL to every
other process in the container (kill(-1): daemons, sleepers, fork-bomb leftovers), reaps
them, reads the CPU time of the whole run (RUSAGE_CHILDREN: PID 1 reaps every orphan) and
the container's OOM-kill counter, and resets the container: /sandbox, /tmp, /dev/shm and
/dev/mqueue emptied, System V IPC objects removed, no process left. Only then does the
result go back, so nothing of a run is running once its verdict exists.

The parent keeps its own wall clock as a backstop (limit + `backstop_grace_s`); a
container whose agent does not answer in time, whose stream breaks, or which could not
be reset is killed (before `run` returns), removed, and replaced by a fresh one in the
background. A container is never shared by two runs at once.

Differences from bubblewrap, also reported by `limits_in_force()`:
- the read-only /sandbox (writable_workdir=False) is enforced by file modes (0444/0555),
  not a read-only mount: the program runs as the files' owner and could chmod them back.
  The directory is private to the run and emptied after it, and nothing outside /tmp,
  /sandbox and /dev/shm is writable (read-only root).
- `peak_memory_bytes` is None (the container's cgroup peak spans every run it served).
- the view of the file system is the image's (a minimal Debian), not the host's /usr;
  /proc lists the agent (PID 1) besides the run's own processes.

Exit statuses follow the bubblewrap backend: a status of 128+N from the program is
reported as killed by signal N.
"""
from __future__ import annotations

import atexit
import json
import math
import os
import random
import secrets
import select
import signal
import socket
import struct
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .base import (WORKDIR, Limits, RunResult, SandboxBackend, SandboxError, SandboxFile,
                   SandboxUnavailableError)

DEFAULT_IMAGE = "rlvr-sandbox:latest"
MiB = 1 << 20
_SIGNALS = {int(s) for s in signal.Signals}
_PROTOCOL = 1

# The agent: PID 1 of every pool container. Python 3.8+ standard library only, run with
# `python3 -I -S -c`, so any image with python3 (and a libc) serves; nothing is baked in.
_AGENT = r'''
import ctypes, json, os, resource, select, signal, socket, stat, struct, sys, time

PROTOCOL = 1
WORK = "/sandbox"
SCRUB = ("/sandbox", "/tmp", "/dev/shm")
COLLECT_MAX = 256 << 20
CHUNK = 1 << 16
ME = os.getpid()
BASE_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
libc = ctypes.CDLL(None, use_errno=True)


def put(kind, payload=b""):
    view = memoryview(kind + struct.pack(">I", len(payload)) + payload)
    while view:
        view = view[os.write(1, view):]


def put_json(kind, obj):
    put(kind, json.dumps(obj).encode())


def read_exact(n):
    parts, got = [], 0
    while got < n:
        chunk = os.read(0, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def others():
    return [int(n) for n in os.listdir("/proc") if n.isdigit() and int(n) != ME]


def reap(main, status):
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == main and status is None:
            status = st


def kill_all(main, status, budget=2.0):
    """SIGKILL every process of the container but this one, reap them all."""
    end = time.monotonic() + budget
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        status = reap(main, status)
        if not others():
            return True, status
        if time.monotonic() > end:
            return False, status
        time.sleep(0.001)


def oom_kills():
    for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"):
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def empty_dir(top, deadline):
    """Remove everything inside `top` (iteratively: a deep tree cannot exhaust the stack)."""
    ok = True
    try:
        pending = [os.path.join(top, n) for n in os.listdir(top)]
    except FileNotFoundError:
        return True
    dirs = []
    while pending:
        if time.monotonic() > deadline:
            return False
        p = pending.pop()
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        except OSError:
            ok = False
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                if st.st_mode & 0o700 != 0o700:
                    os.chmod(p, 0o700)
                pending.extend(os.path.join(p, n) for n in os.listdir(p))
                dirs.append(p)
            except OSError:
                ok = False
        else:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
    for d in reversed(dirs):
        try:
            os.rmdir(d)
        except OSError:
            ok = False
    try:
        return ok and not os.listdir(top)
    except OSError:
        return False


def sysv_clean():
    ok = True
    removers = {"shm": lambda i: libc.shmctl(i, 0, None), "sem": lambda i: libc.semctl(i, 0, 0),
                "msg": lambda i: libc.msgctl(i, 0, None)}
    for kind, remove in removers.items():
        for _ in range(2):
            try:
                with open("/proc/sysvipc/" + kind) as f:
                    ids = [int(line.split()[1]) for line in f.read().splitlines()[1:] if line.strip()]
            except (OSError, ValueError, IndexError):
                break
            if not ids:
                break
            for i in ids:
                remove(i)
        else:
            ok = False
    return ok


def reset():
    """Empty every writable place; (clean, why not)."""
    why = []
    try:
        os.chmod(WORK, 0o755)
    except OSError as e:
        why.append("chmod %s: %s" % (WORK, e))
    deadline = time.monotonic() + 3.0
    for d in SCRUB:
        if not empty_dir(d, deadline):
            why.append("cannot empty " + d)
    try:
        for n in os.listdir("/dev/mqueue"):
            os.unlink(os.path.join("/dev/mqueue", n))
    except FileNotFoundError:
        pass
    except OSError as e:
        why.append("mqueue: %s" % e)
    if not sysv_clean():
        why.append("System V IPC objects left")
    left = others()
    if left:
        why.append("processes left: %s" % left[:10])
    return not why, "; ".join(why)


def output_channel():
    """(agent's read end, program's write end). A socket pair, not a pipe: the program
    owns its descriptors' inodes here (same uid), and reopening a pipe through
    /proc/self/fd/1 would hand it the read end of its own stdout (a read that blocks);
    a socket cannot be reopened (ENXIO), as with bubblewrap, where the pipe is not its."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.shutdown(socket.SHUT_WR)     # the program reading its stdout gets EOF, not a hang
    theirs.shutdown(socket.SHUT_RD)
    return ours.detach(), theirs.detach()


def write_files(entries, blobs, writable):
    made = []
    for (name, size, exe), data in zip(entries, blobs):
        path = os.path.join(WORK, name)
        parent = os.path.dirname(path)
        if parent != WORK:
            os.makedirs(parent, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o755 if exe else 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o755 if exe else 0o644)
        finally:
            os.close(fd)
        made.append((path, exe))
    if not writable:
        # Read-only by mode (no capability to mount): files and directories, deepest first.
        for path, exe in made:
            os.chmod(path, 0o555 if exe else 0o444)
        for root, dirs, _ in sorted(os.walk(WORK), key=lambda t: -len(t[0])):
            os.chmod(root, 0o555)


def child(argv, env, limits, stdin_fd, out_w, err_w):
    try:
        os.setsid()
        for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(s, signal.SIG_DFL)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # the program, never the agent, is the OOM killer's choice
        except OSError:
            pass
        os.dup2(stdin_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, 1 << 16)
        os.chdir(WORK)
        os.umask(0o022)
        cpu = limits["cpu"]
        r = resource
        r.setrlimit(r.RLIMIT_CORE, (0, 0))
        r.setrlimit(r.RLIMIT_CPU, (cpu, cpu + 1))
        r.setrlimit(r.RLIMIT_AS, (limits["as"], limits["as"]))
        r.setrlimit(r.RLIMIT_FSIZE, (limits["fsize"], limits["fsize"]))
        r.setrlimit(r.RLIMIT_NOFILE, (limits["nofile"], limits["nofile"]))
        r.setrlimit(r.RLIMIT_STACK, (limits["stack"], limits["stack"]))
        r.setrlimit(r.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))
        os.execvpe(argv[0], argv, env)
    except BaseException as e:
        try:
            os.write(2, ("sandbox: cannot run %s: %s\n" % (argv[0] if argv else "", e)).encode())
        finally:
            os._exit(127 if isinstance(e, FileNotFoundError) else 126)


def run(req, blobs):
    limits = req["limits"]
    nfiles = len(req["files"])
    write_files(req["files"], blobs[:nfiles], req["writable"])
    stdin_fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
    view = memoryview(blobs[nfiles])
    while view:
        view = view[os.write(stdin_fd, view):]
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_r, out_w = output_channel()
    err_r, err_w = output_channel()
    env = dict(BASE_ENV)
    env.update(req["env"])
    oom0 = oom_kills()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child(req["argv"], env, limits, stdin_fd, out_w, err_w)
    for fd in (stdin_fd, out_w, err_w):
        os.close(fd)
    deadline = t0 + limits["wall"]
    caps = {out_r: limits["out"], err_r: limits["err"]}
    sent = {out_r: 0, err_r: 0}
    kinds = {out_r: b"O", err_r: b"E"}
    pipes = {out_r, err_r}
    for fd in pipes:
        os.set_blocking(fd, False)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    status = end_t = grace = None
    timed_out = stdout_over = stderr_over = killed = False
    all_dead = True
    while True:
        if status is not None and not pipes:
            break
        now = time.monotonic()
        if not killed and now >= deadline:
            timed_out, killed, end_t = True, True, now
            all_dead, status = kill_all(pid, status)
            grace = time.monotonic() + 2.0
        if grace is not None and now >= grace:
            break  # killed and a pipe still open (a process in uninterruptible sleep)
        waits = list(pipes)
        if status is None and pidfd >= 0:
            waits.append(pidfd)
        limit = (grace if grace is not None else deadline) - now
        ready, _, _ = select.select(waits, [], [], max(0.0, min(limit, 1.0 if pidfd >= 0 else 0.02)))
        if status is None and (pidfd < 0 or pidfd in ready):
            try:
                p, st = os.waitpid(pid, os.WNOHANG)
                if p == pid:
                    status = st
            except ChildProcessError:
                pass
        if status is not None and not killed:
            killed, end_t = True, time.monotonic()
            all_dead, status = kill_all(pid, status)  # the run is over: nothing of it survives
            grace = time.monotonic() + 2.0
        for fd in ready:
            if fd not in pipes:
                continue
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                data = b""  # a reset channel ends like a closed one
            if not data:
                pipes.discard(fd)
                os.close(fd)
                continue
            room = caps[fd] - sent[fd]
            if len(data) > room:
                if room > 0:
                    put(kinds[fd], data[:room])
                    sent[fd] += room
                if fd == out_r:
                    stdout_over = True
                    if not killed:
                        killed, end_t = True, time.monotonic()
                        all_dead, status = kill_all(pid, status)
                        grace = time.monotonic() + 2.0
                else:
                    stderr_over = True
            else:
                put(kinds[fd], data)
                sent[fd] += len(data)
    for fd in pipes:
        os.close(fd)
    if pidfd >= 0:
        os.close(pidfd)
    ok, status = kill_all(pid, status)
    all_dead = all_dead and ok
    wall = (end_t if end_t is not None else time.monotonic()) - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    oom1 = oom_kills()
    code = sig = None
    if status is not None:
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
    for name in req["collect"]:
        if "/" in name or name in ("", ".", ".."):
            continue
        try:
            fd = os.open(os.path.join(WORK, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_size <= COLLECT_MAX:
                data = b""
                while len(data) < st.st_size:
                    chunk = os.read(fd, st.st_size - len(data))
                    if not chunk:
                        break
                    data += chunk
                raw = name.encode()
                put(b"F", struct.pack(">H", len(raw)) + raw + data)
        finally:
            os.close(fd)
    clean, why = reset()
    if not all_dead:
        clean, why = False, ("processes survived SIGKILL; " + why).strip("; ")
    return {"code": code, "signal": sig, "status_known": status is not None, "wall": wall, "cpu": cpu,
            "timed_out": timed_out, "stdout_over": stdout_over, "stderr_over": stderr_over,
            "oom": None if oom0 is None or oom1 is None else oom1 > oom0, "clean": clean, "why": why}


def main():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # no handler: a signal from inside cannot reach PID 1
    problems = []
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE 0: no ptrace, no /proc/1/fd or /mem
        problems.append("prctl(PR_SET_DUMPABLE) failed: errno %d" % ctypes.get_errno())
    if os.getuid() == 0 or os.geteuid() == 0:
        problems.append("the agent runs as root; the container must have a non-root user")
    if not os.path.isdir(WORK) or not os.access(WORK, os.W_OK):
        problems.append("%s is not a writable directory" % WORK)
    clean, why = reset()
    put_json(b"H", {"protocol": PROTOCOL, "ok": not problems, "problems": problems, "pid": ME,
                    "uid": os.getuid(), "python": sys.version.split()[0], "oom_counter": oom_kills() is not None,
                    "pidfd": hasattr(os, "pidfd_open"), "clean": clean, "why": why})
    if problems:
        return
    while True:
        try:
            (n,) = struct.unpack(">I", read_exact(4))
            req = json.loads(read_exact(n))
            blobs = [read_exact(size) for size in req["sizes"]]
        except EOFError:
            return  # the backend closed the stream: leave (the container is auto-removed)
        try:
            result = run(req, blobs)
        except Exception as e:
            ok, _ = kill_all(0, None)
            result = {"error": "%s: %s" % (type(e).__name__, e), "clean": False, "why": "agent error"}
        put_json(b"R", result)


main()
'''


@dataclass(eq=False)
class _Box:
    """One pool container and its open attach stream."""

    id: str
    name: str
    uid: int
    sock: socket.socket
    sock_io: object
    memory_bytes: int
    pids: int
    tmpfs_bytes: int
    runs: int = 0
    created: float = field(default_factory=time.monotonic)
    mux: bytearray = field(default_factory=bytearray)     # docker's multiplexed stream, unparsed
    buf: bytearray = field(default_factory=bytearray)     # the agent's stdout, unparsed
    diag: bytearray = field(default_factory=bytearray)    # the agent's stderr (last few KiB)
    eof: bool = False


class _Broken(Exception):
    """The container cannot serve (stream closed, agent wedged or failed)."""


class DockerBackend(SandboxBackend):
    """Runs programs in a warm pool of Docker containers. Thread-safe: at most
    `pool_size` runs at once (one per container)."""

    name = "docker"

    def __init__(self, image: str | None = None, *, pool_size: int | None = None, base_url: str | None = None,
                 python: str = "/usr/bin/python3", uid_range: tuple[int, int] = (200_000, 300_000),
                 runtime: str | None = None, cpus: float | None = None, agent_memory_bytes: int = 48 * MiB,
                 workdir_bytes: int = 256 * MiB, backstop_grace_s: float = 5.0, start_timeout_s: float = 60.0,
                 keep_warm: bool = True, api_timeout_s: float = 60.0, client=None) -> None:
        self.image = image or os.environ.get("RLVR_SANDBOX_IMAGE") or DEFAULT_IMAGE
        self.pool_size = pool_size or max(1, os.cpu_count() or 1)
        self.base_url = base_url
        self.python = python
        self.uid_range = uid_range
        self.runtime = runtime
        self.cpus = cpus
        self.agent_memory_bytes = agent_memory_bytes
        self.workdir_bytes = workdir_bytes
        self.backstop_grace_s = backstop_grace_s
        self.start_timeout_s = start_timeout_s
        self.keep_warm = keep_warm
        self.api_timeout_s = api_timeout_s
        self._api = client
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._idle: list[_Box] = []
        self._busy: set[str] = set()
        self._count = 0            # containers alive or starting
        self._closed = False
        self._probe: tuple[bool, str] | None = None
        self._engine: dict[str, str] = {}
        self._hello: dict = {}
        self._executables: dict[str, bool] = {}
        self._pid = os.getpid()
        self.stats = {"started": 0, "replaced": 0, "runs": 0, "updates": 0}
        _BACKENDS.add(self)

    # -- availability ---------------------------------------------------------------------

    def label(self) -> str:
        return f"docker sandbox ({self.image})"

    def _client(self):
        if self._api is None:
            import docker  # the optional dependency: `docker>=7`
            kwargs = {"timeout": self.api_timeout_s, "version": "auto"}
            if self.base_url:
                kwargs["base_url"] = self.base_url
                self._api = docker.APIClient(**kwargs)
            else:
                self._api = docker.from_env(**kwargs).api
        return self._api

    def _check(self) -> tuple[bool, str]:
        try:
            import docker  # noqa: F401
        except ImportError:
            return False, "the docker SDK is not installed (pip install 'docker>=7') — code is never run unsandboxed"
        try:
            api = self._client()
            api.ping()
            info = api.info()
        except Exception as e:
            return False, f"no Docker engine answers ({self.base_url or 'DOCKER_HOST / default socket'}): {e}"
        self._engine = {"version": str(info.get("ServerVersion", "?")),
                        "cgroup": f"cgroup v{info.get('CgroupVersion', '1')}",
                        "security": ", ".join(str(s) for s in info.get("SecurityOptions") or [])}
        try:
            api.inspect_image(self.image)
        except Exception as e:
            return False, (f"runner image {self.image} not found ({type(e).__name__}); build it without a "
                           f"registry: scripts/docker-runner-image.sh")
        try:
            box = self._start_box(Limits())
        except Exception as e:
            return False, f"cannot start a sandbox container from {self.image}: {e}"
        with self._cond:
            self._count += 1
            self._idle.append(box)
            self._cond.notify()
        try:
            r = self._run_unchecked({}, ["/bin/true"], b"", Limits(wall_time_s=10, cpu_time_s=2))
        except SandboxError as e:
            return False, f"the sandbox container does not run programs: {e}"
        if r.exit_code != 0:
            return False, f"the sandbox container does not run programs ({r.describe()}): {r.stderr[-300:]!r}"
        return True, ""

    def limits_in_force(self) -> dict[str, str]:
        oom = self._hello.get("oom_counter")
        cg = self._engine.get("cgroup", "cgroup")
        return {
            "isolation": f"Docker container ({self.runtime or 'runc'}), engine {self._engine.get('version', '?')}; "
                         f"pid, mount, ipc, uts namespaces; no user namespace",
            "namespaces": "pid, net (network_mode=none: loopback only), ipc (private), uts, mount",
            "filesystem": f"read-only root file system of image {self.image}; tmpfs /tmp, {WORKDIR}, /dev/shm "
                          f"(size-capped, emptied after every run); the host's files are not mounted",
            "workdir": f"{WORKDIR} read-only by file mode (0444/0555, the program owns them) unless "
                       f"writable_workdir; private to the run, emptied after it",
            "environment": "cleared (PATH, HOME=/tmp, TMPDIR, LANG only)",
            "user": f"a non-root uid per container (from {self.uid_range[0]}..{self.uid_range[1]}), no groups",
            "capabilities": "none (cap_drop ALL), no-new-privileges",
            "syscall_filter": f"the engine's seccomp profile ({self._engine.get('security') or 'see docker info'})",
            "rlimits": "cpu, as, fsize, nofile, nproc (per-container uid), stack, core=0",
            "wall_clock": "enforced by the in-container agent (SIGKILL of every process of the run) and by the "
                          f"parent as a backstop (+{self.backstop_grace_s:g} s: the container is killed and replaced)",
            "output": "stdout/stderr drained concurrently, capped in bytes; over the stdout cap = killed",
            "memory_cgroup": f"{cg} container memory+swap limit (the run's limit + "
                             f"{self.agent_memory_bytes // MiB} MiB for the agent); "
                             + ("OOM kills detected by the container's counter" if oom is not False
                                else "OOM kills not detectable (no counter)"),
            "pids_cgroup": f"{cg} container pids limit (the run's processes + 4)",
            "cpu_time": "RLIMIT_CPU (whole seconds), measured over every process of the run (reaped by PID 1)",
            "cleanup": "after every run: SIGKILL to every process but the agent, tmpfs emptied, IPC objects "
                       "removed; a container that cannot be reset is killed and replaced",
            "concurrency": f"a warm pool of at most {self.pool_size} containers, one run per container at a time",
        }

    def missing_executables(self, paths: Sequence[str]) -> list[str]:
        """Those of `paths` that are not executable in the image (a language's compiler or
        runtime: the image, not the host, decides what can run). Cached per path."""
        ask = [p for p in paths if p not in self._executables]
        if ask:
            r = self.run({}, ["/bin/sh", "-c", 'for p; do [ -x "$p" ] && echo "$p"; done; exit 0', "sh", *ask], b"",
                         Limits(wall_time_s=10, cpu_time_s=2))
            if r.exit_code != 0:
                raise SandboxError(f"cannot list the image's executables: {r.describe()}")
            found = set(r.stdout.decode(errors="replace").splitlines())
            for p in ask:
                self._executables[p] = p in found
        return [p for p in paths if not self._executables[p]]

    # -- the pool ----------------------------------------------------------------------------

    def warm(self, n: int | None = None, limits: Limits = Limits()) -> int:
        """Start containers until `n` (default: the pool size) are idle or busy; returns how
        many exist. Raises SandboxUnavailableError when the backend is unusable."""
        ok, why = self.available()
        if not ok:
            raise SandboxUnavailableError(why)
        want = min(n or self.pool_size, self.pool_size)
        while True:
            with self._cond:
                if self._count >= want:
                    return self._count
                self._count += 1
            try:
                box = self._start_box(limits)
            except Exception:
                with self._cond:
                    self._count -= 1
                    self._cond.notify()
                raise
            self._release(box)

    def pool_ids(self) -> list[str]:
        """Ids of the idle and busy containers (tests and monitoring)."""
        with self._cond:
            return [b.id for b in self._idle] + sorted(self._busy)

    def _container_limits(self, limits: Limits) -> tuple[int, int]:
        return limits.memory_bytes + self.agent_memory_bytes, limits.processes + 4

    def _start_box(self, limits: Limits) -> _Box:
        api = self._client()
        memory, pids = self._container_limits(limits)
        with self._cond:
            taken = {b.uid for b in self._idle}
        uid = random.randrange(*self.uid_range)
        while uid in taken:
            uid = random.randrange(*self.uid_range)
        name = f"rlvr-sandbox-{os.getpid()}-{secrets.token_hex(4)}"
        common = "rw,exec,nosuid,nodev"
        host_config = api.create_host_config(
            network_mode="none", read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
            mem_limit=memory, memswap_limit=memory, pids_limit=pids, ipc_mode="private",
            shm_size=limits.tmpfs_bytes, auto_remove=True, init=False,
            tmpfs={"/tmp": f"{common},size={limits.tmpfs_bytes},mode=1777",
                   WORKDIR: f"{common},size={self.workdir_bytes},mode=0755,uid={uid},gid={uid}"},
            log_config={"type": "none", "config": {}},
            **({"runtime": self.runtime} if self.runtime else {}),
            **({"nano_cpus": int(self.cpus * 1e9)} if self.cpus else {}))
        try:
            created = api.create_container(
                self.image, entrypoint=[self.python], command=["-I", "-S", "-c", _AGENT], user=f"{uid}:{uid}",
                working_dir=WORKDIR, hostname="sandbox", stdin_open=True, detach=False, network_disabled=True,
                labels={"rlvr.sandbox": "agent", "rlvr.owner": f"{socket.gethostname()}:{os.getpid()}"},
                host_config=host_config, name=name, environment={})
        except Exception as e:
            raise SandboxError(f"cannot create a sandbox container from {self.image}: {e}") from e
        cid = created["Id"]
        sock = sock_io = None
        try:
            sock_io = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            sock = getattr(sock_io, "_sock", sock_io)
            api.start(cid)
            box = _Box(cid, name, uid, sock, sock_io, memory, pids, limits.tmpfs_bytes)
            kind, payload = self._read_frame(box, time.monotonic() + self.start_timeout_s)
            if kind != b"H":
                raise SandboxError(f"the agent did not greet (got {kind!r})")
            hello = json.loads(payload)
            if not hello.get("ok"):
                raise SandboxError("the agent refuses to run programs: " + "; ".join(hello.get("problems", [])))
            if hello.get("protocol") != _PROTOCOL:
                raise SandboxError(f"agent protocol {hello.get('protocol')} != {_PROTOCOL}")
            self._hello = hello
        except BaseException as e:
            state = ""
            try:
                st = api.inspect_container(cid)["State"]
                state = f" (container {st.get('Status')}, exit {st.get('ExitCode')}, {st.get('Error') or 'no error'})"
            except Exception:
                pass
            self._kill_container(cid, sock, sock_io)
            if isinstance(e, SandboxError):
                raise
            if isinstance(e, TimeoutError):
                raise SandboxError(f"the sandbox container did not start within {self.start_timeout_s:g} s"
                                   f"{state}") from e
            if isinstance(e, Exception):
                raise SandboxError(f"the sandbox container stopped at start: {e}{state}") from e
            raise
        self.stats["started"] += 1
        return box

    def _acquire(self, limits: Limits) -> _Box:
        """An idle container for `limits` (the best fit), a new one while the pool has
        room, else wait for one to come back."""
        memory, pids = self._container_limits(limits)
        while True:
            box: _Box | None = None
            stale: _Box | None = None
            with self._cond:
                while True:
                    if self._closed:
                        raise SandboxError("the Docker sandbox backend is closed")
                    fits = [b for b in self._idle if b.tmpfs_bytes == limits.tmpfs_bytes]
                    exact = [b for b in fits if (b.memory_bytes, b.pids) == (memory, pids)]
                    if fits:
                        box = (exact or fits)[-1]
                        self._idle.remove(box)
                        self._busy.add(box.id)
                    elif self._count < self.pool_size:
                        self._count += 1
                    elif self._idle:
                        stale = self._idle.pop(0)  # its /tmp has the wrong size: replace it
                    else:
                        self._cond.wait()
                        continue
                    break
            if stale is not None:
                self._discard(stale, replace=False, count=False)
            if box is None:
                try:
                    box = self._start_box(limits)
                except BaseException:
                    with self._cond:
                        self._count -= 1
                        self._cond.notify()
                    raise
                with self._cond:
                    self._busy.add(box.id)
            if self._alive(box):
                break
            self._discard(box, replace=False)  # died while idle (killed from outside): take another
        if (box.memory_bytes, box.pids) != (memory, pids):
            try:
                self._update(box, memory, pids)
            except Exception as e:
                self._discard(box, replace=True)
                raise SandboxError(f"cannot set the container's limits: {e}") from e
        return box

    def _update(self, box: _Box, memory: int, pids: int) -> None:
        api = self._client()
        res = api._post_json(api._url("/containers/{0}/update", box.id),
                             data={"Memory": memory, "MemorySwap": memory, "PidsLimit": pids})
        api._raise_for_status(res)
        box.memory_bytes, box.pids = memory, pids
        self.stats["updates"] += 1

    def _release(self, box: _Box) -> None:
        """Back to the idle pool (reset by the agent)."""
        if self._closed:
            self._discard(box, replace=False)
            return
        with self._cond:
            self._busy.discard(box.id)
            self._idle.append(box)
            self._cond.notify()

    def _discard(self, box: _Box, *, replace: bool, count: bool = True) -> None:
        """Kill a container now (nothing of it runs once this returns), remove it in the
        background, and start a replacement there when `replace` (and keep_warm)."""
        self._kill_container(box.id, box.sock, box.sock_io)
        with self._cond:
            self._busy.discard(box.id)
            if box in self._idle:
                self._idle.remove(box)
            if count:
                self._count -= 1
            self._cond.notify()
        if replace:
            self.stats["replaced"] += 1
            if self.keep_warm and not self._closed:
                threading.Thread(target=self._replenish, args=(box.tmpfs_bytes,), name="sandbox-replace",
                                 daemon=True).start()

    def _replenish(self, tmpfs_bytes: int) -> None:
        with self._cond:
            if self._closed or self._count >= self.pool_size:
                return
            self._count += 1
        try:
            box = self._start_box(Limits(tmpfs_bytes=tmpfs_bytes))
        except Exception:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            return
        self._release(box)

    def _kill_container(self, cid: str, sock, sock_io) -> None:
        for s in (sock_io, sock):
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass
        api = self._client()
        try:
            api.kill(cid)
        except Exception:
            try:
                api.remove_container(cid, force=True)
            except Exception:
                pass
        threading.Thread(target=self._remove_quietly, args=(cid,), name="sandbox-remove", daemon=True).start()

    def _remove_quietly(self, cid: str) -> None:
        try:
            self._client().remove_container(cid, force=True)
        except Exception:
            pass

    def _after_fork(self) -> None:
        """In a forked child: the parent's containers and API connection are the parent's.
        Forget them (never touch them) and start a pool of this process's own."""
        self._pid = os.getpid()
        self._api = None
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._idle, self._busy, self._count = [], set(), 0
        self._probe = None

    def close(self) -> None:
        """Kill and remove every container of this backend (also done at exit)."""
        if self._pid != os.getpid():
            return  # a forked child: the containers belong to the parent
        with self._cond:
            self._closed = True
            boxes, self._idle = self._idle, []
            self._cond.notify_all()
        for box in boxes:
            self._kill_container(box.id, box.sock, box.sock_io)
        with self._cond:
            self._count -= len(boxes)

    # -- the stream ------------------------------------------------------------------------

    def _alive(self, box: _Box) -> bool:
        """False when the container's stream has closed (it died while idle)."""
        if box.eof:
            return False
        try:
            r, _, _ = select.select([box.sock], [], [], 0)
            if r:
                data = box.sock.recv(1 << 16)
                if not data:
                    box.eof = True
                    return False
                box.mux += data
        except OSError:
            return False
        return True

    def _fill(self, box: _Box, deadline: float) -> None:
        """Read more of the stream into box.buf; _Broken at EOF, TimeoutError at the deadline."""
        while True:
            while len(box.mux) >= 8:
                stream, size = struct.unpack(">BxxxL", box.mux[:8])
                if len(box.mux) < 8 + size:
                    break
                payload = bytes(box.mux[8:8 + size])
                del box.mux[:8 + size]
                if stream == 2:
                    box.diag += payload
                    del box.diag[:-4096]
                else:
                    box.buf += payload
                    return
            if box.eof:
                raise _Broken("the container's stream closed"
                              + (f" (agent: {box.diag.decode(errors='replace')[-300:]})" if box.diag else ""))
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            pending = getattr(box.sock, "pending", None)  # TLS: decrypted bytes select cannot see
            if not (pending and pending()):
                r, _, _ = select.select([box.sock], [], [], left)
                if not r:
                    raise TimeoutError
            try:
                data = box.sock.recv(1 << 18)
            except OSError as e:
                raise _Broken(f"the container's stream failed: {e}") from e
            if not data:
                box.eof = True
            box.mux += data

    def _read_frame(self, box: _Box, deadline: float) -> tuple[bytes, bytes]:
        while True:
            if len(box.buf) >= 5:
                (size,) = struct.unpack(">I", box.buf[1:5])
                if len(box.buf) >= 5 + size:
                    kind = bytes(box.buf[:1])
                    payload = bytes(box.buf[5:5 + size])
                    del box.buf[:5 + size]
                    return kind, payload
            self._fill(box, deadline)

    def _send(self, box: _Box, data: bytes, deadline: float) -> None:
        try:
            box.sock.settimeout(max(0.1, deadline - time.monotonic()))
            box.sock.sendall(data)
        except (TimeoutError, OSError) as e:
            raise _Broken(f"cannot send the run to the container: {e}") from e
        finally:
            try:
                box.sock.settimeout(None)
            except OSError:
                pass

    # -- running ------------------------------------------------------------------------------

    def run(self, files: Mapping[str, bytes | SandboxFile], cmd: Sequence[str], stdin: bytes = b"",
            limits: Limits = Limits(), *, env: Mapping[str, str] | None = None,
            collect: Sequence[str] = ()) -> RunResult:
        if self._pid != os.getpid():
            self._after_fork()
        if self._probe is None:
            self.available()
        ok, why = self._probe  # type: ignore[misc]
        if not ok:
            raise SandboxUnavailableError(why)
        return self._run_unchecked(files, cmd, stdin, limits, env=env, collect=collect)

    def _run_unchecked(self, files: Mapping[str, bytes | SandboxFile], cmd: Sequence[str], stdin: bytes,
                       limits: Limits, *, env: Mapping[str, str] | None = None,
                       collect: Sequence[str] = ()) -> RunResult:
        entries: list[list] = []
        blobs: list[bytes] = []
        for name, content in files.items():
            f = content if isinstance(content, SandboxFile) else SandboxFile(content)
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise ValueError(f"sandbox file name must be relative and stay inside: {name!r}")
            entries.append([str(rel), len(f.data), bool(f.executable)])
            blobs.append(bytes(f.data))
        blobs.append(bytes(stdin))
        if not cmd:
            raise ValueError("empty command")
        aspace = limits.effective_address_space_bytes
        req = {"argv": list(cmd), "env": dict(env or {}), "files": entries, "writable": limits.writable_workdir,
               "collect": list(collect), "sizes": [len(b) for b in blobs],
               "limits": {"wall": limits.wall_time_s, "cpu": max(1, math.ceil(limits.cpu_time_s)),
                          "as": aspace, "fsize": limits.file_size_bytes, "nofile": limits.open_files,
                          "nproc": limits.processes + 1,  # +1: the agent (same uid)
                          "stack": min(aspace, limits.stack_bytes), "out": limits.output_bytes, "err": limits.stderr_bytes}}
        header = json.dumps(req).encode()
        box = self._acquire(limits)
        reuse = False
        try:
            result, reuse = self._exchange(box, header, blobs, limits)
            return result
        finally:
            box.runs += 1
            self.stats["runs"] += 1
            if reuse:
                self._release(box)
            else:  # killed here, before the verdict leaves `run`; a fresh one replaces it
                self._discard(box, replace=True)

    def _exchange(self, box: _Box, header: bytes, blobs: list[bytes], limits: Limits) -> tuple[RunResult, bool]:
        """Send one run, collect its frames: (result, whether the container is reusable)."""
        t0 = time.monotonic()
        deadline = t0 + limits.wall_time_s + self.backstop_grace_s
        out, err = bytearray(), bytearray()
        files: dict[str, bytes] = {}
        try:
            self._send(box, struct.pack(">I", len(header)) + header + b"".join(blobs), deadline)
            while True:
                kind, payload = self._read_frame(box, deadline)
                if kind == b"O":
                    out += payload[:max(0, limits.output_bytes - len(out))]
                elif kind == b"E":
                    err += payload[:max(0, limits.stderr_bytes - len(err))]
                elif kind == b"F":
                    (n,) = struct.unpack(">H", payload[:2])
                    files[payload[2:2 + n].decode()] = payload[2 + n:]
                elif kind == b"R":
                    res = json.loads(payload)
                    break
                else:
                    raise _Broken(f"unexpected frame {kind!r} from the agent")
        except TimeoutError:
            # No answer within the limit plus the grace: the container is wedged (or the
            # host starved). The caller kills it; the run ran out of wall clock.
            return RunResult(exit_code=None, signal=signal.SIGKILL, stdout=bytes(out), stderr=bytes(err),
                             wall_time_s=time.monotonic() - t0, cpu_time_s=0.0, timed_out=True), False
        except _Broken as e:
            if self._oom_killed(box.id):  # the kernel killed the agent at the memory limit: the program's doing
                return RunResult(exit_code=None, signal=signal.SIGKILL, stdout=bytes(out), stderr=bytes(err),
                                 wall_time_s=time.monotonic() - t0, cpu_time_s=0.0, memory_limit_hit=True), False
            raise SandboxError(f"sandbox container {box.name} failed during the run: {e}") from e
        if "error" in res:
            raise SandboxError(f"the sandbox agent failed: {res['error']}")
        code, sig = res["code"], res["signal"]
        if code is not None and code > 128 and (code - 128) in _SIGNALS:
            code, sig = None, code - 128  # as the bubblewrap backend reports it
        if code is None and sig is None:
            sig = signal.SIGKILL  # never reaped (uninterruptible): killed with its container
        cpu = float(res["cpu"])
        timed_out = bool(res["timed_out"])
        cpu_hit = sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= limits.cpu_time_s * 0.98
                                            and not timed_out)
        result = RunResult(exit_code=code, signal=sig, stdout=bytes(out), stderr=bytes(err),
                           wall_time_s=float(res["wall"]), cpu_time_s=cpu, timed_out=timed_out,
                           cpu_limit_hit=cpu_hit, memory_limit_hit=bool(res.get("oom")) and code != 0,
                           output_limit_hit=bool(res["stdout_over"]), stdout_truncated=bool(res["stdout_over"]),
                           stderr_truncated=bool(res["stderr_over"]), peak_memory_bytes=None, files=files)
        return result, bool(res.get("clean"))

    def _oom_killed(self, cid: str) -> bool:
        try:
            return bool(self._client().inspect_container(cid)["State"].get("OOMKilled"))
        except Exception:
            return False


_BACKENDS: weakref.WeakSet[DockerBackend] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for backend in list(_BACKENDS):
        try:
            backend.close()
        except Exception:
            pass
