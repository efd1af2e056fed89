"""The bubblewrap backend itself, with real processes: isolation, limits, output caps,
and refusing to run when it cannot sandbox. Every Python program runs both ways: in a
fresh sandbox (`run`) and forked from the pre-started interpreter (`run_python`)."""
from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from verifiers.sandbox import (BubblewrapBackend, Limits, SandboxFile, SandboxUnavailableError,
                               default_backend)

BACKEND = default_backend()
AVAILABLE, WHY = BACKEND.available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox on this host: {WHY}")
PY = "/usr/bin/python3"
FAST = Limits(wall_time_s=5, cpu_time_s=2, memory_bytes=256 << 20)


@pytest.fixture(params=["fresh", "prefork"])
def run_py(request):
    """Runs a Python program one way: a fresh sandbox, or forked from the pre-started
    interpreter (asserting that it really was: no silent fallback)."""

    def fresh(code: str, stdin: bytes = b"", limits: Limits = FAST, **kw):
        return BACKEND.run({"main.py": code.encode()}, [PY, "-B", "main.py"], stdin, limits, **kw)

    def prefork(code: str, stdin: bytes = b"", limits: Limits = FAST, **kw):
        before = dict(BACKEND.stats)
        r = BACKEND.run_python({"main.py": code.encode()}, "main.py", stdin, limits, **kw)
        assert BACKEND.stats["prefork_runs"] == before["prefork_runs"] + 1, BACKEND.limits_in_force()["python_runs"]
        return r

    return fresh if request.param == "fresh" else prefork


def test_runs_a_program_with_stdin(run_py):
    r = run_py("import sys; print(sys.stdin.read().upper())", b"hello")
    assert r.ok and r.stdout == b"HELLO\n" and r.exit_code == 0 and r.signal is None


def test_view_of_the_host_is_minimal(run_py, tmp_path, monkeypatch):
    monkeypatch.setenv("RLVR_SECRET_TOKEN", "s3cr3t")
    (tmp_path / "expected_output.txt").write_text("42")
    r = run_py(
        "import os, json\n"
        "print(json.dumps({'env': dict(os.environ), 'root': sorted(os.listdir('/')), 'cwd': os.getcwd(),\n"
        "  'uid': os.getuid(), 'pid': os.getpid(), 'host_cwd': os.path.exists(%r),\n"
        "  'tmp': os.listdir('/tmp'), 'work': os.path.exists('/work'), 'etc': sorted(os.listdir('/etc'))}))"
        % os.getcwd())
    seen = json.loads(r.stdout)
    assert "RLVR_SECRET_TOKEN" not in seen["env"] and set(seen["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "PWD",
                                                                           "LC_CTYPE", "MALLOC_ARENA_MAX"}
    assert set(seen["root"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sandbox", "sbin",
                                 "tmp", "usr"}
    assert seen["cwd"] == "/sandbox" and seen["tmp"] == [] and not seen["host_cwd"] and not seen["work"]
    assert seen["pid"] <= 3                      # a fresh PID namespace
    assert seen["uid"] != 0 and set(seen["etc"]) <= {"ld.so.cache", "alternatives"}


def test_file_system_is_read_only_except_private_tmp(run_py):
    r = run_py("import os\n"
               "for p in ('/sandbox/x', '/usr/x', '/x', '/etc/x'):\n"
               "    try:\n        open(p, 'w'); print('WROTE', p)\n    except OSError as e:\n        print('no', p)\n"
               "open('/tmp/ok', 'w').write('fine'); print(open('/tmp/ok').read())")
    assert b"WROTE" not in r.stdout and r.stdout.strip().endswith(b"fine")


def test_no_network(run_py):
    r = run_py("import socket\n"
               "for host in ('127.0.0.1', '1.1.1.1'):\n"
               "    try:\n        socket.create_connection((host, 80), timeout=1); print('CONNECTED')\n"
               "    except OSError as e:\n        print(type(e).__name__)\n"
               "print(sorted(n for _, n in socket.if_nameindex()))")
    assert b"CONNECTED" not in r.stdout and r.stdout.strip().endswith(b"['lo']")


def test_wall_clock_limit_kills_sleepers(run_py):
    r = run_py("import time; time.sleep(30)", limits=Limits(wall_time_s=0.5, cpu_time_s=2))
    assert r.timed_out and not r.ok and r.wall_time_s < 3


def test_cpu_limit(run_py):
    r = run_py("while True: pass", limits=Limits(wall_time_s=10, cpu_time_s=1))
    assert r.cpu_limit_hit and not r.timed_out and "CPU-time limit" in r.describe()


def test_address_space_limit_gives_memory_error(run_py):
    r = run_py("x = bytearray(400 << 20)", limits=Limits(wall_time_s=5, cpu_time_s=2, memory_bytes=128 << 20))
    assert r.exit_code == 1 and b"MemoryError" in r.stderr


def test_memory_cgroup_oom_kill(run_py):
    if "not enforced" in BACKEND.limits_in_force()["memory_cgroup"]:
        pytest.skip("memory cgroup not in force on this host")
    # RLIMIT_AS is generous, so the cgroup is what stops the program touching 400 MiB.
    r = run_py("x = bytearray(400 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\nprint('survived')",
               limits=Limits(wall_time_s=10, cpu_time_s=5, memory_bytes=64 << 20, address_space_bytes=2 << 30))
    assert r.memory_limit_hit and b"survived" not in r.stdout


def test_process_limit_stops_a_fork_bomb(run_py):
    r = run_py("import os\nn = 0\nwhile True:\n    try:\n"
               "        pid = os.fork()\n        if pid == 0:\n            import time; time.sleep(5); os._exit(0)\n"
               "        n += 1\n    except OSError:\n        break\nprint(n)",
               limits=Limits(wall_time_s=10, cpu_time_s=5, processes=8))
    assert r.exit_code == 0 and int(r.stdout) <= 8


def test_output_cap_kills_and_flags(run_py):
    r = run_py("import sys\nwhile True: sys.stdout.write('x' * 65536)",
               limits=Limits(wall_time_s=10, cpu_time_s=5, output_bytes=100_000))
    assert r.output_limit_hit and r.stdout_truncated and len(r.stdout) == 100_000 and not r.ok


def test_stderr_is_drained_and_capped_without_deadlock(run_py):
    # 4 MB to stderr and 4 MB to stdout, interleaved: both pipes must be drained.
    r = run_py("import sys\nfor _ in range(64):\n    sys.stderr.write('e' * 65536); sys.stdout.write('o' * 65536)\n"
               "print('end')", limits=Limits(wall_time_s=10, cpu_time_s=5, stderr_bytes=1000))
    assert r.ok and r.stdout.endswith(b"end\n") and len(r.stderr) == 1000 and r.stderr_truncated


def test_file_size_limit(run_py):
    r = run_py("open('/tmp/big', 'wb').write(b'x' * (8 << 20))",
               limits=Limits(wall_time_s=5, cpu_time_s=2, file_size_bytes=1 << 20))
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of the signal killing it.
    assert not r.ok and (b"File too large" in r.stderr or r.signal is not None)


def test_collect_and_executable_files():
    r = BACKEND.run({"run.sh": SandboxFile(b"#!/bin/sh\necho hi > out.txt\n", executable=True)},
                    ["/bin/sh", "-c", "./run.sh && ln -s /etc/hostname link"], b"",
                    Limits(writable_workdir=True), collect=["out.txt", "link", "../escape"])
    assert r.ok and r.files == {"out.txt": b"hi\n"}  # symlinks and paths outside are never read


def test_limits_in_force_report_names_each_measure():
    report = BACKEND.limits_in_force()
    for key in ("namespaces", "filesystem", "environment", "rlimits", "wall_clock", "output", "memory_cgroup",
                "pids_cgroup"):
        assert report[key]
    assert "net" in report["namespaces"]


def test_missing_bubblewrap_is_unavailable_and_never_runs_unsandboxed():
    b = BubblewrapBackend(bwrap="/nonexistent/bwrap")
    ok, why = b.available()
    assert not ok and "bubblewrap not found" in why
    with pytest.raises(SandboxUnavailableError):
        b.run({"main.py": b"print(1)"}, [PY, "main.py"])


# -- the pre-forked interpreter: runs share a zygote, never each other's traces ----------

def prefork(code: str, stdin: bytes = b"", limits: Limits = FAST):
    before = BACKEND.stats["prefork_runs"]
    r = BACKEND.run_python({"main.py": code.encode()}, "main.py", stdin, limits)
    assert BACKEND.stats["prefork_runs"] == before + 1, BACKEND.limits_in_force()["python_runs"]
    return r


def host_processes_with(marker: str) -> list[str]:
    found = []
    for p in os.scandir("/proc"):
        if p.name.isdigit():
            try:
                with open(f"/proc/{p.name}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(p.name)
            except OSError:
                pass
    return found


def test_a_run_leaves_nothing_for_the_next_one():
    marker = f"rlvr-trace-{uuid.uuid4().hex[:10]}"
    first = prefork(
        "import os, subprocess\n"
        "open('/tmp/left', 'w').write('x'); open('/dev/shm/left', 'w').write('x')\n"
        "try:\n    open('/dev/left', 'w')\nexcept OSError:\n    print('dev read-only')\n"
        "import ctypes\nlibc = ctypes.CDLL(None)\n"
        "print('shm', libc.shmget(0x5151, 4096, 0o1666))\n"   # IPC_CREAT | 0666
        "if os.fork() == 0:\n    os.setsid()\n"
        f"    os.execv('/usr/bin/python3', ['python3', '-c', 'import time; time.sleep(60)', {marker!r}])\n"
        "print('started')\n")
    assert first.ok and b"started" in first.stdout and b"dev read-only" in first.stdout, first.stderr
    assert b"shm -1" not in first.stdout  # the segment was created...
    second = prefork(
        "import os, json\n"
        "print(json.dumps({'tmp': os.listdir('/tmp'), 'shm': os.listdir('/dev/shm'),\n"
        "  'ipc': open('/proc/sysvipc/shm').read().splitlines()[1:],\n"
        "  'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}))")
    seen = json.loads(second.stdout)
    assert seen == {"tmp": [], "shm": [], "ipc": [], "pids": [1, 2]}, seen  # ...and is gone, like the rest
    assert host_processes_with(marker) == []  # the daemon died with its run's PID namespace


def test_runs_hold_no_capabilities_and_cannot_mount():
    r = prefork(
        "import ctypes, os\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status') if l.startswith(('Cap', 'NoNewPrivs')))\n"
        "print({k: v.strip() for k, v in status.items()})\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('mount', libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno())\n"
        "print('unshare', libc.unshare(0x00020000), ctypes.get_errno())\n")
    assert r.ok, r.stderr
    caps = eval(r.stdout.splitlines()[0])  # a dict literal printed by the run
    assert {caps[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == {"0000000000000000"}
    assert caps["NoNewPrivs"] == "1"
    assert b"mount -1 1" in r.stdout and b"unshare -1 1" in r.stdout  # EPERM both


def test_signalling_everything_it_can_reach_leaves_the_zygote_standing():
    prefork("print('warm')")
    started = BACKEND.stats["zygotes_started"]
    for target in ("os.getppid()", "-1", "0"):  # the run's init, every process it sees, its group
        prefork(f"import os, signal\nos.kill({target}, signal.SIGKILL)\nprint('after')")
    for _ in range(3):
        assert prefork("print('next')").stdout == b"next\n"
    assert BACKEND.stats["zygotes_started"] == started  # the same zygotes served every run


def test_a_lost_zygote_is_replaced_and_the_run_still_decided():
    """The OOM killer or an operator may kill a zygote between runs: the next run gets a
    fresh one, never a wrong verdict."""
    prefork("print('warm')")
    with BACKEND._zygote_lock:
        zygotes = [z for v in BACKEND._idle_zygotes.values() for z in v]
    assert zygotes
    for z in zygotes:
        os.killpg(z.proc.pid, 9)
        z.proc.wait()
    lost = BACKEND.stats["zygotes_lost"]
    for _ in range(len(zygotes) + 1):
        r = BACKEND.run_python({"main.py": b"print(6 * 7)"}, "main.py", b"", FAST)
        assert r.ok and r.stdout == b"42\n"
    assert BACKEND.stats["zygotes_lost"] > lost


def test_fork_is_reseeded_and_main_module_is_the_script():
    outs = {prefork("import random, sys\nprint(__name__, sys.argv, random.random())").stdout for _ in range(3)}
    assert len(outs) == 3 and all(o.startswith(b"__main__ ['main.py']") for o in outs)


def test_prefork_can_be_turned_off():
    b = BubblewrapBackend(prefork_python=False)
    r = b.run_python({"main.py": b"print('fresh')"}, "main.py", b"", FAST)
    assert r.ok and r.stdout == b"fresh\n" and b.stats["fresh_python_runs"] == 1 and b.stats["prefork_runs"] == 0
    assert "fresh sandbox per run" in b.limits_in_force()["python_runs"]
    b.close()


@pytest.mark.parametrize("syscall", ["add_key", "keyctl"])
def test_kernel_keyrings_are_closed(run_py, syscall):
    """Keyrings are not namespaced: without the seccomp filter a run could leave a key for
    any later run (or a concurrent sandbox) to read."""
    call = {"add_key": "libc.syscall(248, b'user', b'leak', b'secret', 6, -4)",   # @u
            "keyctl": "libc.syscall(250, 0, -4, 0)"}[syscall]                       # GET_KEYRING_ID
    if BACKEND._seccomp is None:
        pytest.skip("no seccomp filter for this machine's syscall numbers")
    r = run_py(f"import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint({call}, ctypes.get_errno())")
    assert r.ok and r.stdout == b"-1 38\n", r.stdout  # ENOSYS
    assert "keyctl" in BACKEND.limits_in_force()["syscall_filter"]


def test_sockets_of_a_run_do_not_outlive_it():
    first = prefork("import socket, os\n"
                    "a = socket.socket(socket.AF_UNIX); a.bind('\\0rlvr-persist'); a.listen()\n"
                    "t = socket.socket(); t.bind(('127.0.0.1', 4444)); t.listen()\n"
                    "x, y = socket.socketpair(socket.AF_UNIX)\n"
                    "socket.send_fds(x, [b'k'], [a.fileno(), t.fileno(), x.fileno(), y.fileno()])\n"
                    "c = socket.create_connection(('127.0.0.1', 4444)); c.close()\nprint('planted')")
    assert first.stdout == b"planted\n", first.stderr
    second = prefork("import socket\n"
                     "print([l for l in open('/proc/net/unix').read().splitlines()[1:]],"
                     " open('/proc/net/tcp').read().splitlines()[1:])\n"
                     "t = socket.socket(); t.bind(('127.0.0.1', 4444)); print('bound')")
    assert second.stdout == b"[] []\nbound\n", second.stdout  # a network namespace per run


def test_a_runs_teardown_is_charged_to_it_not_to_the_next_run():
    prefork("import os\nos.chdir('/tmp'); open('x', 'w').close()\n"
            "for i in range(60000):\n    os.link('x', f'l{i}')\nprint('done')",
            limits=Limits(wall_time_s=20, cpu_time_s=10))
    after = prefork("print('innocent')")
    assert after.ok and after.cpu_time_s < 0.1 and after.wall_time_s < 0.5, (after.cpu_time_s, after.wall_time_s)


def test_memory_hidden_outside_processes_kills_the_run_not_the_zygote():
    if "not enforced" in BACKEND.limits_in_force()["memory_cgroup"]:
        pytest.skip("memory cgroup not in force on this host")
    before = dict(BACKEND.stats)
    r = BACKEND.run_python({"main.py": (
        b"import os\n"
        b"s = 'for d in /tmp /dev/shm; do for j in 1 2 3 4; do head -c 15M /dev/zero > $d/f$j; done; done'\n"
        b"os.execv('/bin/sh', ['sh', '-c', s])\n")}, "main.py", b"",
        Limits(wall_time_s=10, cpu_time_s=5, memory_bytes=64 << 20))
    assert not r.ok and (r.memory_limit_hit or r.signal == 9), r
    assert BACKEND.stats["fresh_python_runs"] == before["fresh_python_runs"]  # never run a second time
    assert BACKEND.stats["prefork_runs"] == before["prefork_runs"] + 1
    assert prefork("print('next')").stdout == b"next\n"


def test_ipc_left_by_a_run_cannot_break_a_later_run_with_a_lower_limit():
    r = prefork("import ctypes\nlibc = ctypes.CDLL(None)\nlibc.shmat.restype = ctypes.c_void_p\n"
                "for i in range(3):\n"
                "    sid = libc.shmget(0x1000 + i, 60 << 20, 0o1600)\n"
                "    p = libc.shmat(sid, None, 0); ctypes.memset(p, 1, 60 << 20); libc.shmdt(ctypes.c_void_p(p))\n"
                "print('left')", limits=Limits(wall_time_s=10, cpu_time_s=5, memory_bytes=512 << 20))
    assert r.stdout == b"left\n", r.stderr
    after = prefork("print('fine')", limits=Limits(wall_time_s=5, cpu_time_s=2, memory_bytes=96 << 20))
    assert after.ok and after.stdout == b"fine\n"


def test_file_names_are_checked_and_many_small_files_fit():
    for bad in ("/tmp/x", "../x", ""):
        with pytest.raises(ValueError, match="relative"):
            BACKEND.run_python({bad: b"", "main.py": b"pass"}, "main.py")
    files = {f"d{i % 7}/f{i}.txt": b"x" for i in range(400)}
    files["main.py"] = b"import os\nprint(sum(len(fs) for _, _, fs in os.walk('.')))"
    r = prefork_files(files)
    assert r.stdout == b"401\n" and BACKEND.limits_in_force()["python_runs"].startswith("pre-forked")


def prefork_files(files):
    before = BACKEND.stats["prefork_runs"]
    r = BACKEND.run_python(files, "main.py", b"", FAST)
    assert BACKEND.stats["prefork_runs"] == before + 1
    return r


def test_memory_a_run_leaves_in_flight_does_not_shrink_the_next_run():
    """A memfd kept alive only by a cycle of unix sockets is freed by the kernel later,
    not with the run; the zygote that still carries it is retired."""
    if "not enforced" in BACKEND.limits_in_force()["memory_cgroup"]:
        pytest.skip("memory cgroup not in force on this host")
    limits = Limits(wall_time_s=10, cpu_time_s=5, memory_bytes=256 << 20)
    b = BubblewrapBackend(max_concurrent=1)  # one zygote: the runs follow each other on it
    hide = (b"import os, socket\n"
            b"for k in range(4):\n"
            b"    fd = os.memfd_create('h'); os.write(fd, b'x' * (15 << 20))\n"
            b"    x, y = socket.socketpair()\n"
            b"    socket.send_fds(x, [b'k'], [fd, x.fileno(), y.fileno()])\n"
            b"    socket.send_fds(y, [b'k'], [x.fileno(), y.fileno()])\n"
            b"    os.close(fd); x.close(); y.close()\n")
    victim = b"b = bytearray(230 << 20)\nb[::4096] = bytes(len(b[::4096]))\nprint('ok')"
    try:
        assert b.run_python({"main.py": hide}, "main.py", b"", limits).ok
        r = b.run_python({"main.py": victim}, "main.py", b"", limits)
        assert r.ok and r.stdout == b"ok\n" and not r.memory_limit_hit, r
        assert b.stats["zygotes_retired"] >= 1 and b.stats["fresh_python_runs"] == 0
    finally:
        b.close()


def test_threads_get_ordinary_stacks(run_py):
    r = run_py("import threading, concurrent.futures as cf\n"
               "with cf.ThreadPoolExecutor(8) as ex:\n    print(sum(ex.map(lambda x: x, range(100))))",
               limits=Limits(wall_time_s=10, cpu_time_s=5, memory_bytes=256 << 20))
    assert r.ok and r.stdout == b"4950\n", r.stderr[-300:]


def test_the_runs_own_module_shadows_a_preloaded_one():
    files = {"main.py": b"import json, statistics\nprint(json.__file__, statistics.mean)", "json.py": b"",
             "statistics.py": b"mean = 'mine'"}
    fresh = BACKEND.run(files, [PY, "-B", "main.py"], b"", FAST)
    pre = prefork_files(files)
    assert fresh.stdout == pre.stdout == b"/sandbox/json.py mine\n", (fresh.stdout, pre.stdout)


def test_bad_file_names_fail_before_any_zygote_work():
    started = BACKEND.stats["zygotes_started"]
    for files in ({"a/": b""}, {".": b""}, {"sub/./x": b""}, {"a\0b": b""}, {"a": b"", "a/b": b""}):
        with pytest.raises(ValueError):
            BACKEND.run_python({**files, "main.py": b"pass"}, "main.py")
        with pytest.raises(ValueError):
            BACKEND.run({**files, "main.py": b"pass"}, [PY, "main.py"])
    assert BACKEND.stats["zygotes_started"] == started


def test_interrupts_end_the_script_as_in_python(run_py):
    r = run_py("raise KeyboardInterrupt")
    assert r.signal == 2 and b"KeyboardInterrupt" in r.stderr, r
    r = run_py("import os, signal\ntry:\n    os.kill(1, signal.SIGINT)\nexcept OSError:\n    pass\n"
               "import time; time.sleep(0.2); print('init unmoved')")
    assert r.ok and r.stdout == b"init unmoved\n", r


def test_a_forked_child_can_use_the_backend_and_exit():
    prefork("print('parent')")
    pid = os.fork()
    if pid == 0:  # the child: its own slots, scratch, reaper and zygotes
        code = 1
        try:
            r = BACKEND.run_python({"main.py": b"print('child')"}, "main.py", b"", FAST)
            code = 0 if r.stdout == b"child\n" else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    assert os.waitstatus_to_exitcode(status) == 0
    assert prefork("print('parent again')").stdout == b"parent again\n"
