"""Sandbox side of the pre-forked Python interpreter ("zygote"); standard library only.

Runs inside a long-lived bubblewrap sandbox (its own user, PID, network, IPC, UTS and
mount namespaces; read-only /usr; the seccomp filter) that keeps CAP_SYS_ADMIN,
CAP_SETPCAP and CAP_NET_ADMIN *inside its user namespace* only, so that it can give every
run namespaces of its own. It imports the interpreter and the common modules once; a run
then costs two forks, not an interpreter start. Per run, from the outside in::

    zygote (this loop)  --fork-->  supervisor C: new PID, mount, IPC and network namespaces
        --fork-->  G, PID 1 (init) of the run: fresh size-capped tmpfs at /tmp, /dev/shm and
                   /sandbox (the run's files, read-only unless asked), /dev read-only, a /proc
                   of its own namespace, loopback up, oom_score_adj 1000; drops every
                   capability, then only reaps
            --fork-->  S, PID 2: a new session; fds 0-2 = the run's stdin/stdout/stderr, every
                       other fd closed; rlimits; no_new_privs; every capability dropped
                       (bounding, permitted, effective, inheritable, ambient); the script
                       runs as __main__.

When S exits G reports its wait status and exits, and the kernel kills every process left
in the run's PID namespace, so nothing of a run outlives it. C removes the SysV objects
the run left; its exit tears the run's mounts and network namespace down, and only then
does the zygote acknowledge the run (so the teardown's cost is the run's, not the next
run's). The zygote itself never reads a run's request (only C does, after the fork), so no
run's data is in the memory a later run is forked from.

Control socket (the descriptor number in argv[1]), one run at a time:
    trusted -> zygote: b"R" with SCM_RIGHTS [stdin, stdout, stderr]
    trusted -> C:      4-byte big-endian length + JSON request
                       {"files": {name: [base64, executable]}, "script", "env", "limits"}
    trusted -> C:      b"K" (kill the run now; the trusted side keeps the wall clock)
    C -> trusted:      b"M" + 4-byte length + JSON {"status", "utime", "stime", "killed",
                       "setup_error", "isolation"}  (or {"error"})
    zygote -> trusted: b"D" once C has exited (the run's namespaces are gone); a b"D"
                       with no b"M" before it means the supervisor was lost
"""
import sys

# What a fresh interpreter has imported before the script runs: those modules a run's
# files cannot shadow there either. (Taken before this file's own imports.)
_AT_START = frozenset(name.partition(".")[0] for name in sys.modules)

import base64  # noqa: E402
import ctypes
import gc
import json
import os
import select
import signal
import socket
import struct

# What a typical candidate or harness imports: paid once here instead of once per run.
PRELOAD = ("atexit", "importlib", "types", "traceback", "threading", "json", "math", "re", "signal", "time",
           "typing", "collections", "itertools", "functools", "heapq", "bisect", "string", "random",
           "fractions", "decimal", "copy", "operator", "statistics", "dataclasses", "io")

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x20000000, 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 4, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_RLIMITS = {"cpu": "RLIMIT_CPU", "as": "RLIMIT_AS", "fsize": "RLIMIT_FSIZE", "nofile": "RLIMIT_NOFILE",
            "nproc": "RLIMIT_NPROC", "stack": "RLIMIT_STACK", "core": "RLIMIT_CORE"}

_libc = ctypes.CDLL(None, use_errno=True)
_PRELOADED: set = set()  # top-level modules PRELOAD imported beyond the interpreter's own


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None):
    _check(_libc.mount(source.encode() if source else None, target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None), f"mount {target}")


def _remount_readonly(path):
    """Bind-remount `path` read-only, keeping its other flags (a namespace may not clear
    flags its parent locked, such as nodev)."""
    st = os.statvfs(path).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for st_bit, ms_bit in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                           (os.ST_NOATIME, 1 << 10), (os.ST_NODIRATIME, 1 << 11), (os.ST_RELATIME, 1 << 21)):
        if st & st_bit:
            flags |= ms_bit
    _mount(None, path, None, flags)


def _prctl(option, arg):
    _check(_libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           f"prctl {option}")


def _drop_capabilities():
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    _libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), ctypes.c_ulong(0), ctypes.c_ulong(0),
                ctypes.c_ulong(0))
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("control socket closed")
        buf += chunk
    return bytes(buf)


def _send_msg(sock, obj):
    data = json.dumps(obj).encode()
    sock.sendall(b"M" + struct.pack(">I", len(data)) + data)


def _isolate(req):
    """In G, still privileged in the zygote's user namespace: the run's own mounts,
    loopback and OOM preference. A failure here means this host cannot run zygotes."""
    lim = req["limits"]
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={lim['tmpfs_bytes']},mode=1777")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"size={lim['tmpfs_bytes']},mode=1777")
    _remount_readonly("/dev")
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _loopback_up()
    # The run's processes are the OOM killer's first choice in the zygote's cgroup (cgroup v1
    # has no oom.group): memory a run hides in tmpfs or memfds must not cost the zygote.
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")


def _place_files(req):
    """In G: the run's files on a fresh tmpfs at /sandbox (read-only unless asked)."""
    lim = req["limits"]
    files = req["files"]
    page = 4096
    data = {name: base64.b64decode(b64) for name, (b64, _) in files.items()}
    dirs = {os.path.dirname(n) for n in files}
    size = ((lim["tmpfs_bytes"] if lim["writable_workdir"] else 0) + (1 << 20)
            + sum(-(-len(d) // page) * page for d in data.values()) + page * (len(files) + len(dirs)))
    _mount("tmpfs", "/sandbox", "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0755")
    for name, (_, executable) in files.items():
        path = os.path.join("/sandbox", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data[name])
        os.chmod(path, 0o755 if executable else 0o644)
    if not lim["writable_workdir"]:
        _remount_readonly("/sandbox")


def _loopback_up():
    """Bring up `lo` in the run's new network namespace (as bwrap does for a fresh sandbox)."""
    import fcntl
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sk:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sk, siocgifflags, req))[1]
        fcntl.ioctl(sk, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def _become_script(req, stdio):
    """S, PID 2 of the run: descriptors, limits and (no) privileges, then the script."""
    os.chdir("/sandbox")
    os.setsid()  # its own process group: kill(0, ...) reaches nothing outside the run
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    os.closerange(3, 1 << 16)
    import resource
    lim = req["limits"]
    for key, name in _RLIMITS.items():
        if key in lim:
            v = int(lim[key])
            resource.setrlimit(getattr(resource, name), (v, v + 1 if key == "cpu" else v))
    _drop_capabilities()
    _run_script(req)


def _init(req, stdio, status_w):
    """G, PID 1 of the run's namespaces: set them up, fork the script as PID 2, reap every
    orphan until the script exits, report its wait status, and exit (the kernel then kills
    whatever the script left behind)."""
    def report(obj):
        os.write(status_w, json.dumps(obj).encode()[:4000])

    try:
        _isolate(req)
    except BaseException as e:
        report({"setup_error": f"{type(e).__name__}: {e}", "isolation": True})
        os._exit(125)
    try:
        _place_files(req)
    except BaseException as e:
        report({"setup_error": f"{type(e).__name__}: {e}", "isolation": False})
        os._exit(125)
    script = os.fork()
    if script == 0:
        try:
            os.close(status_w)
            _become_script(req, stdio)
        except BaseException:
            os._exit(125)
    for fd in stdio:  # only the script's processes hold the output pipes
        os.close(fd)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Python's handler would let a run end its init
    _prctl(PR_SET_DUMPABLE, 0)
    _drop_capabilities()
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == script:
            report({"status": status})
            os._exit(0)


def _remove_ipc_objects():
    """In C (inside the run's IPC namespace): remove the SysV objects the run left, now,
    so that their memory is not still charged when the next run starts."""
    for table, call, rmid_args in (("shm", "shmctl", 3), ("msg", "msgctl", 3), ("sem", "semctl", 4)):
        try:
            lines = open(f"/proc/sysvipc/{table}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            ident = int(line.split()[1])
            args = [ident, 0, 0] if rmid_args == 4 else [ident, 0, None]  # IPC_RMID = 0
            getattr(_libc, call)(*args)


def _run_script(req):
    """In G, unprivileged: run the script as a fresh interpreter would, then exit."""
    import atexit
    import builtins
    import importlib
    import io
    import threading
    import types

    os.environ.clear()
    os.environ.update({"PWD": "/sandbox", **req["env"]})
    script = req["script"]
    sys.argv = [script]
    sys.path[0] = "/sandbox"
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    _forget_shadowed_modules("/sandbox")
    gc.unfreeze()
    code = 0
    path = os.path.join("/sandbox", script)
    main = types.ModuleType("__main__")  # what `python script` runs the file in
    main.__file__, main.__cached__, main.__builtins__ = path, None, builtins
    sys.modules["__main__"] = main
    try:
        with io.open_code(path) as f:
            source = f.read()
        exec(compile(source, path, "exec", dont_inherit=True), main.__dict__)
    except SystemExit as e:
        code = _exit_status(e.code)
    except BaseException:
        etype, value, tb = sys.exc_info()
        interrupted = etype is KeyboardInterrupt
        tb = tb.tb_next if tb is not None else None  # from the script's frame on, as `python script`
        sys.excepthook(etype, value.with_traceback(tb), tb)
        code = 1
        if interrupted:  # as CPython: an uncaught KeyboardInterrupt ends the process by SIGINT
            code = -signal.SIGINT
    try:
        threading._shutdown()  # like interpreter exit: wait for non-daemon threads
        atexit._run_exitfuncs()
    except BaseException:
        code = code or 1
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            code = code or 120
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def _forget_shadowed_modules(directory):
    """A preloaded module that the run's own files shadow (`json.py`, `typing/`) is
    dropped, so that `import` finds the run's file as a fresh interpreter would."""
    for name in list(sys.modules):
        top = name.partition(".")[0]
        if top in _PRELOADED and (os.path.exists(os.path.join(directory, top + ".py"))
                                  or os.path.isdir(os.path.join(directory, top))):
            del sys.modules[name]


def _exit_status(value):
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF if -(1 << 31) <= value < (1 << 31) else 255  # CPython: overflow -> -1
    try:
        print(value, file=sys.stderr)
    except BaseException:
        pass
    return 1


def _supervise(sock, stdio):
    """C: read the request, start G in new namespaces, wait for it or a kill, report."""
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")  # under memory pressure the run's side goes, never the zygote
        (n,) = struct.unpack(">I", _recv_exact(sock, 4))
        req = json.loads(_recv_exact(sock, n))
        status_r, status_w = os.pipe()
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET), "unshare")
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                os.close(status_r)
                _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                _init(req, stdio, status_w)
            finally:
                os._exit(125)
        os.close(status_w)
        for fd in stdio:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        killed = False
        while True:
            ready, _, _ = select.select([pidfd, sock], [], [])
            if pidfd in ready:
                break
            data = sock.recv(1)
            if not killed and (data == b"K" or not data):
                os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: the namespace dies with it
                killed = True
            if not data:
                break
        _, status, usage = os.wait4(pid, 0)
        report = os.read(status_r, 8192).decode(errors="replace")
        info = json.loads(report) if report else {}
        _remove_ipc_objects()
        _send_msg(sock, {"status": info.get("status", status), "utime": usage.ru_utime, "stime": usage.ru_stime,
                         "killed": killed, "setup_error": info.get("setup_error", ""),
                         "isolation": bool(info.get("isolation"))})
    except BaseException as e:  # report, never hang the trusted side
        try:
            _send_msg(sock, {"error": f"{type(e).__name__}: {e}"})
        except BaseException:
            pass
    os._exit(0)


def main():
    for name in PRELOAD:
        __import__(name)
    _PRELOADED.update({name.partition(".")[0] for name in sys.modules} - _AT_START)
    sock = socket.socket(fileno=int(sys.argv[1]))
    gc.collect()
    gc.freeze()  # keep the preloaded objects' pages shared with the runs (copy-on-write)
    sock.sendall(b"READY\n")
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 3)
        except OSError:
            return
        if not msg:
            return  # the trusted side closed the socket
        if msg != b"R" or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue  # a late b"K" for a run that already ended
        pid = os.fork()
        if pid == 0:
            _supervise(sock, fds)
        for fd in fds:
            os.close(fd)
        os.waitpid(pid, 0)
        # C's exit tore the run's mount, network and IPC namespaces down; only now is the
        # run over (its teardown is charged to it, not to the next run).
        try:
            sock.sendall(b"D")
        except OSError:
            return


if __name__ == "__main__":
    main()
