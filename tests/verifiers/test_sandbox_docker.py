"""The Docker backend with a real engine and a real runner image: the bubblewrap backend's
behaviours (stdin, no network, read-only file system, private /tmp, time / memory /
process / output / file-size limits), nothing surviving a run, the warm pool (reused,
reset, a broken container replaced), and the `code` verifier on this backend.

The engine and the image are set up lazily, once per session, by
scripts/docker-runner-image.sh (it reuses a running engine and an existing image; else it
starts dockerd and builds the image from debootstrap, no registry). Where it cannot, every
test here that needs Docker is skipped with the script's reason (pytest -ra prints it).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

import verifiers
import verifiers.code  # noqa: F401  (registers "code")
from verifiers import Status
from verifiers.sandbox import (DockerBackend, Limits, SandboxFile, SandboxUnavailableError, default_backend,
                               make_backend, set_default_backend)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "docker-runner-image.sh"
IMAGE = os.environ.get("RLVR_SANDBOX_IMAGE", "rlvr-sandbox:latest")
SETUP_TIMEOUT_S = 1500
PY = "/usr/bin/python3"
FAST = Limits(wall_time_s=5, cpu_time_s=2, memory_bytes=256 << 20)

# The fixture's first use may build the image (debootstrap: minutes); the per-test
# limits below stay small, this only covers that set-up.
pytestmark = pytest.mark.timeout(SETUP_TIMEOUT_S + 300)


@pytest.fixture(scope="session")
def docker_image(request) -> str:
    """Engine up and runner image present, or skip with the reason."""
    try:
        import docker  # noqa: F401
    except ImportError:
        pytest.skip("the docker SDK is not installed (pip install 'docker>=7')")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(["bash", str(SCRIPT), "--image", IMAGE], capture_output=True, text=True,
                              timeout=SETUP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.skip(f"no Docker sandbox: {SCRIPT.name} ran past {SETUP_TIMEOUT_S} s")
    took = time.monotonic() - t0
    lines = (proc.stderr.strip().splitlines() or ["(no message)"])
    if proc.returncode == 3:
        pytest.skip(f"no Docker sandbox on this host: {lines[-1]}")
    if proc.returncode != 0:
        pytest.fail(f"{SCRIPT.name} failed (status {proc.returncode}):\n{proc.stderr[-3000:]}")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\n[docker sandbox] engine and image {IMAGE} ready in {took:.1f} s: {lines[-1]}")
    return IMAGE


@pytest.fixture(scope="session")
def backend(docker_image):
    b = DockerBackend(image=docker_image, pool_size=2)
    ok, why = b.available()
    if not ok:
        pytest.skip(f"Docker sandbox unavailable: {why}")
    yield b
    b.close()


@pytest.fixture
def solo(docker_image):
    """A backend of its own with one container: which container serves is known."""
    b = DockerBackend(image=docker_image, pool_size=1, backstop_grace_s=1.5)
    ok, why = b.available()
    if not ok:
        pytest.skip(f"Docker sandbox unavailable: {why}")
    yield b
    b.close()


def run_py(backend, code: str, stdin: bytes = b"", limits: Limits = FAST, **kw):
    return backend.run({"main.py": code.encode()}, [PY, "-B", "main.py"], stdin, limits, **kw)


def container_processes(backend: DockerBackend, cid: str) -> list[str]:
    """The command lines running in a container, as the engine sees them."""
    top = backend._client().top(cid, ps_args="-eo pid,args")
    return [p[-1] for p in top.get("Processes") or []]


def host_processes_with(marker: str) -> list[str]:
    left = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker.encode() in (p / "cmdline").read_bytes():
                    left.append(p.name)
            except OSError:
                pass
    return left


# -- the bubblewrap backend's behaviours ---------------------------------------------------

def test_runs_a_program_with_stdin(backend):
    r = run_py(backend, "import sys; print(sys.stdin.read().upper())", b"hello")
    assert r.ok and r.stdout == b"HELLO\n" and r.exit_code == 0 and r.signal is None
    assert 0 < r.wall_time_s < 5 and r.cpu_time_s > 0


def test_view_of_the_host_is_minimal(backend, monkeypatch):
    monkeypatch.setenv("RLVR_SECRET_TOKEN", "s3cr3t")
    r = run_py(backend,
               "import os, json, socket\n"
               "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
               "print(json.dumps({'env': dict(os.environ), 'root': sorted(os.listdir('/')), 'cwd': os.getcwd(),\n"
               "  'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups(), 'host_cwd': os.path.exists(%r),\n"
               "  'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), 'me': os.getpid(),\n"
               "  'tmp': os.listdir('/tmp'), 'sandbox': os.listdir('/sandbox'), 'host': socket.gethostname(),\n"
               "  'cap': status['CapEff'].strip(), 'nnp': status['NoNewPrivs'].strip(),\n"
               "  'seccomp': status['Seccomp'].strip()}))" % str(REPO))
    assert r.ok, r.stderr
    seen = json.loads(r.stdout)
    assert "RLVR_SECRET_TOKEN" not in seen["env"] and set(seen["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "PWD",
                                                                           "LC_CTYPE"}
    assert seen["cwd"] == "/sandbox" and seen["tmp"] == [] and seen["sandbox"] == ["main.py"]
    assert not seen["host_cwd"] and "work" not in seen["root"]
    assert seen["pids"] == sorted({1, seen["me"]})     # a PID namespace: the agent and the program
    assert seen["uid"] >= 1000 and seen["gid"] == seen["uid"] and set(seen["groups"]) <= {seen["gid"]}
    assert int(seen["cap"], 16) == 0 and seen["nnp"] == "1" and seen["seccomp"] == "2"
    assert seen["host"] == "sandbox"


def test_file_system_is_read_only_except_private_tmp(backend):
    r = run_py(backend,
               "import os\n"
               "for p in ('/sandbox/x', '/sandbox/main.py', '/usr/x', '/x', '/etc/x', '/var/tmp/x', '/root/x'):\n"
               "    try:\n        open(p, 'w'); print('WROTE', p)\n    except OSError as e:\n        print('no', p)\n"
               "open('/tmp/ok', 'w').write('fine'); print(open('/tmp/ok').read())")
    assert b"WROTE" not in r.stdout and r.stdout.strip().endswith(b"fine"), r.stdout
    # ... and /tmp is private to the run: the next one starts with it empty.
    r = run_py(backend, "import os; print(os.listdir('/tmp'))")
    assert r.stdout.strip() == b"[]"


def test_no_network(backend):
    r = run_py(backend,
               "import socket\n"
               "for host in ('127.0.0.1', '1.1.1.1', '172.17.0.1'):\n"
               "    try:\n        socket.create_connection((host, 80), timeout=1); print('CONNECTED')\n"
               "    except OSError as e:\n        print(type(e).__name__)\n"
               "print(sorted(n for _, n in socket.if_nameindex()))")
    assert b"CONNECTED" not in r.stdout and r.stdout.strip().endswith(b"['lo']"), r.stdout


def test_wall_clock_limit_kills_sleepers(backend):
    r = run_py(backend, "import time; time.sleep(30)", limits=Limits(wall_time_s=0.5, cpu_time_s=2))
    assert r.timed_out and not r.ok and r.wall_time_s < 3 and "wall-clock" in r.describe()


def test_cpu_limit(backend):
    r = run_py(backend, "while True: pass", limits=Limits(wall_time_s=10, cpu_time_s=1))
    assert r.cpu_limit_hit and not r.timed_out and "CPU-time limit" in r.describe()


def test_address_space_limit_gives_memory_error(backend):
    r = run_py(backend, "x = bytearray(400 << 20)", limits=Limits(wall_time_s=5, cpu_time_s=2, memory_bytes=128 << 20))
    assert r.exit_code == 1 and b"MemoryError" in r.stderr


def test_memory_cgroup_oom_kill(backend):
    # RLIMIT_AS is generous, so the container's memory cgroup is what stops the program.
    r = run_py(backend, "x = bytearray(400 << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\nprint('survived')",
               limits=Limits(wall_time_s=10, cpu_time_s=5, memory_bytes=64 << 20, address_space_bytes=2 << 30))
    assert r.memory_limit_hit and b"survived" not in r.stdout and r.signal == 9
    assert run_py(backend, "print('after')").stdout == b"after\n"  # the pool survives an OOM kill


def test_process_limit_stops_a_fork_bomb(backend):
    r = run_py(backend, "import os\nn = 0\nwhile True:\n    try:\n"
               "        pid = os.fork()\n        if pid == 0:\n            import time; time.sleep(5); os._exit(0)\n"
               "        n += 1\n    except OSError:\n        break\nprint(n)",
               limits=Limits(wall_time_s=10, cpu_time_s=5, processes=8))
    assert r.exit_code == 0 and 0 < int(r.stdout) <= 8, (r.stdout, r.stderr)


def test_output_cap_kills_and_flags(backend):
    r = run_py(backend, "import sys\nwhile True: sys.stdout.write('x' * 65536)",
               limits=Limits(wall_time_s=10, cpu_time_s=5, output_bytes=100_000))
    assert r.output_limit_hit and r.stdout_truncated and len(r.stdout) == 100_000 and not r.ok


def test_stderr_is_drained_and_capped_without_deadlock(backend):
    r = run_py(backend, "import sys\nfor _ in range(64):\n    sys.stderr.write('e' * 65536); sys.stdout.write('o' * 65536)\n"
               "print('end')", limits=Limits(wall_time_s=10, cpu_time_s=5, stderr_bytes=1000))
    assert r.ok and r.stdout.endswith(b"end\n") and len(r.stdout) == 64 * 65536 + 4
    assert len(r.stderr) == 1000 and r.stderr_truncated


def test_file_size_limit(backend):
    r = run_py(backend, "open('/tmp/big', 'wb').write(b'x' * (8 << 20))",
               limits=Limits(wall_time_s=5, cpu_time_s=2, file_size_bytes=1 << 20))
    assert not r.ok and (b"File too large" in r.stderr or r.signal is not None)


def test_collect_and_executable_files(backend):
    r = backend.run({"run.sh": SandboxFile(b"#!/bin/sh\necho hi > out.txt\n", executable=True)},
                    ["/bin/sh", "-c", "./run.sh && ln -s /etc/hostname link"], b"",
                    Limits(writable_workdir=True), collect=["out.txt", "link", "../escape"])
    assert r.ok and r.files == {"out.txt": b"hi\n"}, (r.stderr, r.files)  # never links or paths outside
    r = backend.run({"./lib/util.py": b"X = 7\n", "main.py": b"from lib.util import X; print(X)"},
                    [PY, "-B", "main.py"], b"", FAST)
    assert r.stdout == b"7\n", r.stderr
    for bad in ("/etc/x", "../x", "a/../../x", ""):
        with pytest.raises(ValueError):
            backend.run({bad: b""}, ["/bin/true"], b"", FAST)


def test_reopening_its_own_output_channels_neither_hangs_nor_helps(backend):
    # Under bubblewrap the output pipes belong to another uid; here the program's uid
    # owns the descriptors, so they are sockets: /proc/self/fd/1 cannot be reopened.
    r = run_py(backend, "import os\n"
                        "for fd in (1, 2):\n"
                        "    try:\n        open('/proc/self/fd/%d' % fd, 'rb').read(1); print('REOPENED', fd)\n"
                        "    except OSError as e:\n        print('no', fd)\n"
                        "print(os.read(0, 100))", b"in", limits=Limits(wall_time_s=3, cpu_time_s=2))
    assert r.ok and r.stdout == b"no 1\nno 2\nb'in'\n", (r.describe(), r.stdout)


def test_exit_statuses_and_signals_as_bubblewrap_reports_them(backend):
    assert run_py(backend, "import sys; sys.exit(3)").exit_code == 3
    r = run_py(backend, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert r.exit_code is None and r.signal == 11 and "SIGSEGV" in r.describe()
    r = backend.run({}, ["./missing"], b"", FAST)
    assert r.exit_code == 127 and b"missing" in r.stderr


def test_limits_in_force_report_names_each_measure(backend):
    report = backend.limits_in_force()
    for key in ("namespaces", "filesystem", "environment", "rlimits", "wall_clock", "output", "memory_cgroup",
                "pids_cgroup", "capabilities", "user", "cleanup"):
        assert report[key]
    assert "net" in report["namespaces"] and "cap_drop ALL" in report["capabilities"]
    ok, why = backend.available()
    assert ok and why.startswith("docker sandbox")


def test_missing_executables_are_those_of_the_image(backend):
    assert backend.missing_executables(["/usr/bin/python3", "/bin/sh", "/usr/bin/no-such-compiler"]) == [
        "/usr/bin/no-such-compiler"]


def test_unreachable_engine_is_unavailable_and_never_runs_unsandboxed(tmp_path):
    b = DockerBackend(base_url=f"unix://{tmp_path}/no-docker.sock")
    ok, why = b.available()
    assert not ok and ("no Docker engine" in why or "docker SDK" in why), why
    with pytest.raises(SandboxUnavailableError):
        b.run({"main.py": b"print(1)"}, [PY, "main.py"])


def test_missing_image_is_unavailable(docker_image):
    b = DockerBackend(image="rlvr-sandbox:no-such-tag")
    ok, why = b.available()
    assert not ok and "not found" in why and "docker-runner-image.sh" in why


def test_backend_selection_by_name(docker_image, monkeypatch):
    assert make_backend("bubblewrap").name == "bubblewrap"
    monkeypatch.setenv("RLVR_SANDBOX_BACKEND", "docker")
    monkeypatch.setenv("RLVR_SANDBOX_IMAGE", docker_image)
    b = make_backend()
    assert isinstance(b, DockerBackend) and b.image == docker_image
    with pytest.raises(ValueError):
        make_backend("chroot")


# -- nothing survives a run; the warm pool ---------------------------------------------------

def test_fork_bomb_sleeper_and_daemon_are_all_killed(solo):
    marker = f"rlvr-left-{uuid.uuid4().hex[:12]}"
    code = (f"import os, sys, time\n"
            f"if os.fork() == 0:\n"                      # a daemon: new session, detached
            f"    os.setsid()\n"
            f"    if os.fork() == 0:\n"
            f"        os.execv({PY!r}, ['python3', '-c', 'import time; time.sleep(120)', {marker!r}])\n"
            f"    os._exit(0)\n"
            f"for _ in range(3):\n"                      # sleepers holding stdout open
            f"    if os.fork() == 0:\n"
            f"        os.execv({PY!r}, ['python3', '-c', 'import time; time.sleep(120)', {marker!r}])\n"
            f"n = 0\n"                                   # a fork bomb, stopped by the process limit
            f"while True:\n"
            f"    try:\n"
            f"        if os.fork() == 0:\n"
            f"            time.sleep(120); os._exit(0)\n"
            f"        n += 1\n"
            f"    except OSError:\n"
            f"        break\n"
            f"print('forked', n, flush=True)\n")
    t0 = time.monotonic()
    r = run_py(solo, code, limits=Limits(wall_time_s=10, cpu_time_s=5, processes=12))
    assert r.ok and r.stdout.startswith(b"forked"), (r.stdout, r.stderr)
    assert time.monotonic() - t0 < 5  # the sleepers held stdout, yet the run ended when the program did
    (cid,) = solo.pool_ids()
    procs = container_processes(solo, cid)
    assert len(procs) == 1 and procs[0].startswith(PY), procs  # the agent alone
    assert host_processes_with(marker) == []  # as the host sees it: nothing of the run is left
    r = run_py(solo, "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and p != str(os.getpid())))")
    assert r.stdout.strip() == b"[1]" and solo.pool_ids() == [cid]  # the same container, reset


def test_detached_and_spinning_daemons_are_gone_when_run_returns(solo):
    # issue 11: new session, new process group, closed stdio, plain background child,
    # and daemons spinning on the CPU; checked the moment `run` returns, then again
    # after the survivors would have re-executed themselves under the marker.
    from tests.verifiers.test_sandbox_lingering import assert_nothing_left, daemons, hogs
    from tests.verifiers.test_sandbox_lingering import host_processes_with as with_marker
    for program in (daemons, hogs):
        marker = f"lg{uuid.uuid4().hex[:12]}"
        r = run_py(solo, program(marker), limits=Limits(wall_time_s=10, cpu_time_s=5, processes=32))
        assert r.ok and r.stdout == b"spawned\n", (r.describe(), r.stderr)
        assert with_marker(marker[:15]) == []
        assert_nothing_left(marker)


def test_the_pool_reuses_containers_and_resets_them(solo):
    dirty = ("import ctypes, os\n"
             "open('/tmp/left-in-tmp', 'w').write('x')\n"
             "os.makedirs('/tmp/deep/er', exist_ok=True); os.chmod('/tmp/deep', 0)\n"
             "open('/sandbox/left-in-work', 'w').write('x')\n"
             "open('/dev/shm/left-in-shm', 'w').write('x')\n"
             "libc = ctypes.CDLL(None)\n"
             "print(libc.shmget(0x1234, 4096, 0o1600))\n")  # IPC_CREAT | 0600: a System V segment
    r = solo.run({"main.py": dirty.encode()}, [PY, "main.py"], b"",
                 Limits(wall_time_s=5, cpu_time_s=2, writable_workdir=True))
    assert r.ok and int(r.stdout) >= 0, r.stderr
    (cid,) = solo.pool_ids()
    look = ("import os\n"
            "print(os.listdir('/tmp'), os.listdir('/sandbox'), os.listdir('/dev/shm'),\n"
            "      open('/proc/sysvipc/shm').read().splitlines()[1:])")
    r = run_py(solo, look)
    assert r.stdout.strip() == b"[] ['main.py'] [] []", r.stdout
    assert solo.pool_ids() == [cid] and solo.stats["started"] == 1 and solo.stats["replaced"] == 0
    t0 = time.perf_counter()
    for _ in range(5):
        assert solo.run({}, ["/bin/true"], b"", FAST).ok
    assert solo.pool_ids() == [cid] and (time.perf_counter() - t0) / 5 < 1.0  # no container start per run


def test_the_program_cannot_reach_or_stop_the_agent(solo):
    # PID 1 (the agent) reports results; the program runs as the same uid. It must not be
    # able to read the agent's descriptors or memory, attach to it, or signal it.
    attack = ("import ctypes, os, signal\n"
              "for what in ('/proc/1/fd', '/proc/1/environ', '/proc/1/mem', '/proc/1/root/tmp'):\n"
              "    try:\n"
              "        (os.listdir if what.endswith(('fd', 'tmp')) else lambda p: open(p, 'rb').read(1))(what)\n"
              "        print('READ', what)\n"
              "    except OSError:\n"
              "        pass\n"
              "print('ptrace', ctypes.CDLL(None, use_errno=True).ptrace(16, 1, 0, 0))\n"  # PTRACE_ATTACH
              "for s in (signal.SIGSTOP, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL):\n"
              "    os.kill(1, s)\n"
              "try:\n"
              "    os.kill(-1, signal.SIGKILL)\n"  # every process but PID 1 and the caller
              "except ProcessLookupError:\n"
              "    print('nothing to kill')\n")
    r = run_py(solo, attack)
    assert b"READ" not in r.stdout and b"ptrace -1" in r.stdout, r.stdout
    assert r.ok and b"nothing to kill" in r.stdout, r.stderr  # PID 1 is no target
    (cid,) = solo.pool_ids()
    r = run_py(solo, "print('agent alive')")
    assert r.ok and r.stdout == b"agent alive\n" and solo.pool_ids() == [cid] and solo.stats["replaced"] == 0


def test_a_container_killed_from_outside_is_replaced(solo):
    (cid,) = solo.pool_ids()
    solo._client().kill(cid)
    time.sleep(0.2)
    r = run_py(solo, "print('still served')")
    assert r.ok and r.stdout == b"still served\n"
    (new,) = solo.pool_ids()
    assert new != cid


def test_a_wedged_container_is_killed_and_replaced(solo):
    (cid,) = solo.pool_ids()
    api = solo._client()
    api.pause(cid)  # the agent cannot answer: the parent's backstop clock must act
    try:
        t0 = time.monotonic()
        r = run_py(solo, "print('never')", limits=Limits(wall_time_s=0.5, cpu_time_s=1))
        assert r.timed_out and not r.ok and time.monotonic() - t0 < 10
    finally:
        try:
            api.unpause(cid)
        except Exception:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = api.inspect_container(cid)["State"]
        except Exception:
            break
        if not state.get("Running"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the wedged container is still running")
    r = run_py(solo, "print('fresh')")
    assert r.ok and r.stdout == b"fresh\n" and solo.pool_ids() != [cid] and solo.stats["replaced"] >= 1


def test_a_forked_child_leaves_the_parents_pool_alone(solo):
    import atexit
    (cid,) = solo.pool_ids()
    pid = os.fork()
    if pid == 0:  # a worker process exiting normally runs the atexit hooks
        try:
            atexit._run_exitfuncs()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    r = run_py(solo, "print('parent pool intact')")
    assert r.ok and solo.pool_ids() == [cid] and solo.stats["replaced"] == 0


def test_runs_in_parallel_use_separate_containers(backend):
    backend.warm(2)
    results: list = [None, None]

    def one(i: int) -> None:
        results[i] = run_py(backend, "import os, time; time.sleep(0.5); print(open('/proc/1/cmdline').read()[:6])")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None and r.ok for r in results)
    assert time.monotonic() - t0 < 0.5 * 2 + 0.4  # overlapped, not one after the other
    assert len(backend.pool_ids()) == 2


# -- the code verifier on this backend --------------------------------------------------------

@pytest.fixture
def on_docker(backend):
    before = default_backend()
    set_default_backend(backend)
    yield backend
    set_default_backend(before)


HUMANEVAL_REF = {"entry_point": "add", "prompt": "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n",
                 "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"
                         "    for i in range(5):\n        assert candidate(i, i) == 2 * i\n"}


def test_code_verifier_function_tests_on_docker(on_docker):
    marker = f"rlvr-escape-{uuid.uuid4().hex[:12]}"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    prelude = (f"import os as _os, socket as _s\n"
               f"for _d in ('/tmp', {str(REPO)!r}, '/', '/sandbox'):\n"
               f"    try:\n        open(_os.path.join(_d, {marker!r}), 'w').write('x')\n"
               f"    except Exception:\n        pass\n"
               f"try:\n    _s.create_connection(('127.0.0.1', {port}), timeout=0.3)\nexcept Exception:\n    pass\n"
               f"try:\n    if _os.fork() == 0:\n        _os.setsid()\n"
               f"        _os.execv('/usr/bin/python3', ['python3', '-c', 'import time; time.sleep(60)', {marker!r}])\n"
               f"except Exception:\n    pass\n")
    honest = f"```python\n{prelude}\ndef add(a, b):\n    return a + b\n```"
    r = verifiers.verify("code", honest, HUMANEVAL_REF, {"timeout_per_test_s": 1.0})
    assert r.status is Status.OK and r.reward == 1.0, r.reason
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    r = verifiers.verify("code", wrong, HUMANEVAL_REF, {"timeout_per_test_s": 1.0})
    assert r.status is Status.OK and r.reward == 0.0 and r.details["first_failure"]["verdict"] == "wrong answer"
    try:
        listener.accept()
        connected = True
    except OSError:
        connected = False
    listener.close()
    assert not connected, "the sandboxed program reached the host's loopback"
    assert not (REPO / marker).exists() and not (Path("/tmp") / marker).exists()
    assert host_processes_with(marker) == []


STDIO_REF = {"tests": [{"stdin": "3\n1 2 3\n", "stdout": "6\n"}, {"stdin": "2\n10 -4\n", "stdout": "6\n"}]}


def test_code_verifier_stdio_tests_on_docker(on_docker):
    good = "```python\ninput()\nprint(sum(map(int, input().split())))\n```"
    r = verifiers.verify("code", good, STDIO_REF, {"timeout_per_test_s": 1.0})
    assert r.status is Status.OK and r.reward == 1.0, r.reason
    slow = "```python\nwhile True:\n    pass\n```"
    r = verifiers.verify("code", slow, STDIO_REF, {"timeout_per_test_s": 1.0})
    assert r.status is Status.OK and r.reward == 0.0 and r.details["first_failure"]["verdict"] == "time limit"


@pytest.mark.parametrize("lang, program", [
    ("cpp", "```cpp\n#include <iostream>\nint main() { int n; long long s = 0, x; std::cin >> n;\n"
            "  while (n--) { std::cin >> x; s += x; } std::cout << s << \"\\n\"; }\n```"),
    ("javascript", "```javascript\nconst l = require('fs').readFileSync(0, 'utf8').split('\\n');\n"
                   "console.log(l[1].split(' ').map(Number).reduce((a, b) => a + b, 0));\n```"),
])
def test_code_verifier_compiled_and_node_programs_on_docker(on_docker, lang, program):
    exe = {"cpp": "/usr/bin/g++", "javascript": "/usr/bin/node"}[lang]
    if on_docker.missing_executables([exe]):
        pytest.skip(f"image {on_docker.image} has no {exe}: build it with scripts/docker-runner-image.sh "
                    f"--with-cpp --with-node (and set RLVR_SANDBOX_IMAGE)")
    r = verifiers.verify("code", program, STDIO_REF, {"timeout_per_test_s": 2.0})
    if r.status is Status.ABSTAIN:
        pytest.skip(f"the verifier abstains on this host: {r.reason}")
    assert r.status is Status.OK and r.reward == 1.0, r.reason


def test_server_configured_for_docker_scores_code_in_containers(docker_image, tmp_path):
    """`sandbox_backend = "docker"` in the server config: programs run in the warm pool."""
    import grpc

    from reward_server.app import start_server
    from reward_server.config import ServerConfig
    from rewards.v1 import rewards_pb2 as pb
    from rewards.v1 import rewards_pb2_grpc as pb_grpc
    from verifiers.sandbox import default_backend, set_default_backend

    cfg = ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/d.db", workers=1, sandbox_backend="docker",
                       sandbox_image=docker_image, sandbox_pool_size=1)
    try:
        with start_server(cfg) as srv, grpc.insecure_channel(srv.address) as ch:
            assert isinstance(default_backend(), DockerBackend)
            sample = pb.Sample(completion="```python\nprint(sum(map(int, input().split())))\n```")
            sample.reference.struct_value.update({"tests": [{"stdin": "2 3\n", "stdout": "5\n"}]})
            spec = pb.RewardSpec(components=[pb.VerifierRef(name="code")])
            (r,) = pb_grpc.RewardServiceStub(ch).Score(pb.ScoreRequest(samples=[sample], spec=spec)).results
            assert r.status == pb.STATUS_OK and r.reward == 1.0, r
    finally:
        default_backend().close()
        set_default_backend(None)
