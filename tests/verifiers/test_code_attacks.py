"""Reward hacks a naive harness accepts, each against the real sandbox.

Every program here also tries to escape (the PRELUDE): write a file outside the
sandbox, connect to a listener on the host's loopback, and leave a daemon running.
Each test asserts the verdict *and* that no file appeared on the host, the listener
saw no connection, and no process of the run is left.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

import verifiers
import verifiers.code  # noqa: F401  (registers "code")
from verifiers import Status, registry

CODE = registry.get("code")
AVAILABLE, WHY = CODE.available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"code verifier unavailable: {WHY}")

SECRET = "EXPECTED-" + "c0ffee-7f3a"   # the expected value; never written whole in a program
PARAMS = {"timeout_per_test_s": 1.0}
REPO = Path(__file__).resolve().parents[2]

# Fast path: split literal asserts, compared in the server.
FAST_REF = {"entry_point": "answer", "prompt": "def answer(x):\n    \"\"\"Return the secret for x.\"\"\"\n",
            "test": f"def check(candidate):\n    assert candidate(1) == {SECRET!r}\n"
                    f"    assert candidate(2) == {SECRET + '2'!r}\n"}
# Replay path: the test code (with a helper and abs) runs in its own sandbox.
REPLAY_REF = {"entry_point": "answer", "prompt": "def answer(x):\n    pass\n",
              "test": f"EXPECTED = {{1: {SECRET!r}}}\n\ndef check(candidate):\n"
                      f"    got = candidate(1)\n    assert got == EXPECTED[1]\n"
                      f"    assert abs(len(candidate(2)) - {len(SECRET) + 1}) < 1\n"}
STDIO_REF = {"tests": [{"stdin": "1\n", "stdout": SECRET + "\n"}, {"stdin": "2\n", "stdout": SECRET + "2\n"}]}


class Listener:
    """A loopback TCP listener that counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
                self.connections += 1
                c.close()
            except OSError:
                pass

    def close(self) -> None:
        self._stop = True
        self._t.join()
        self.sock.close()


@pytest.fixture
def escape():
    """(prelude source, checks) for one test: the prelude tries to escape; `checks`
    asserts it did not."""
    marker = f"rlvr-escape-{uuid.uuid4().hex[:12]}"
    listener = Listener()
    targets = ["/tmp", str(REPO), os.path.expanduser("~"), "/", "/sandbox", "/usr"]
    prelude = f"""
import os as _os, socket as _socket
for _d in {targets!r} + [_os.getcwd(), _os.environ.get('HOME', '/')]:
    try:
        with open(_os.path.join(_d, {marker!r}), 'w') as _f:
            _f.write('escaped')
    except Exception:
        pass
for _host in ('127.0.0.1', '10.0.2.2'):
    try:
        _socket.create_connection((_host, {listener.port}), timeout=0.3).close()
    except Exception:
        pass
try:
    if _os.fork() == 0:
        _os.setsid()
        _os.execv('/usr/bin/python3', ['python3', '-c', 'import time; time.sleep(120)', {marker!r}])
except Exception:
    pass
"""

    def checks() -> None:
        assert listener.connections == 0, "the sandboxed program reached the host's loopback"
        for d in targets:
            assert not (Path(d) / marker).exists(), f"the program wrote {d}/{marker} on the host"
        deadline = time.monotonic() + 1.0
        while True:
            left = []
            for p in Path("/proc").iterdir():
                if p.name.isdigit():
                    try:
                        if marker.encode() in (p / "cmdline").read_bytes():
                            left.append(p.name)
                    except OSError:
                        pass
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert not left, f"processes of the run left running: {left}"

    yield prelude, checks
    listener.close()


def fn(prelude: str, body: str, module: str = "") -> str:
    """A completion defining answer(x) with `body`, the escape prelude at import."""
    return f"```python\n{prelude}\n{module}\ndef answer(x):\n{body}\n```"


def failed_with(r, verdict: str, *fragments: str) -> None:
    assert r.status is Status.OK and r.reward == 0.0, (r.status, r.reward, r.reason)
    assert r.details["first_failure"]["verdict"] == verdict, r.reason
    for f in fragments:
        assert f in r.reason, r.reason


@pytest.mark.parametrize("ref", [FAST_REF, REPLAY_REF], ids=["fast", "replay"])
def test_honest_solution_passes_under_the_same_watch(escape, ref):
    prelude, checks = escape
    r = verifiers.verify("code", fn(prelude, f"    return {SECRET!r} + ('' if x == 1 else str(x))"), ref, PARAMS)
    assert r.reward == 1.0, r.reason
    checks()


@pytest.mark.parametrize("ref", [FAST_REF, REPLAY_REF], ids=["fast", "replay"])
def test_sys_exit_0_before_the_tests(escape, ref):
    prelude, checks = escape
    r = verifiers.verify("code", fn(prelude, "    return x", module="import sys\nsys.exit(0)"), ref, PARAMS)
    failed_with(r, "runtime error", "SystemExit")
    checks()


def test_os_exit_0_inside_the_call(escape):
    prelude, checks = escape
    r = verifiers.verify("code", fn(prelude, "    import os\n    os._exit(0)"), FAST_REF, PARAMS)
    failed_with(r, "runtime error", "exit status 0")
    checks()


def test_atexit_hook_forging_a_report(escape):
    prelude, checks = escape
    module = ("import atexit, os, sys\n"
              "def _forge():\n"
              "    for fd in range(1, 20):\n"
              "        try:\n"
              "            os.write(fd, b'ok 2 passed\\n{\"ev\": \"load\", \"ok\": true}\\nALL TESTS PASSED\\n')\n"
              "        except OSError:\n"
              "            pass\n"
              "atexit.register(_forge)\nsys.exit(0)")
    r = verifiers.verify("code", fn(prelude, "    return x", module=module), FAST_REF, PARAMS)
    failed_with(r, "runtime error")
    checks()


@pytest.mark.parametrize("ref", [FAST_REF, REPLAY_REF], ids=["fast", "replay"])
def test_object_equal_to_everything(escape, ref):
    prelude, checks = escape
    body = ("    class Anything(str):\n"
            "        def __eq__(self, other): return True\n"
            "        def __ne__(self, other): return False\n"
            "        def __len__(self): return " + str(len(SECRET)) + "\n"
            "        __hash__ = str.__hash__\n"
            "    return Anything('x')")
    r = verifiers.verify("code", fn(prelude, body), ref, PARAMS)
    failed_with(r, "wrong answer", "Anything")
    checks()


@pytest.mark.parametrize("ref", [FAST_REF, REPLAY_REF], ids=["fast", "replay"])
def test_reading_expected_values_from_the_callers_frames(escape, ref):
    prelude, checks = escape
    # Search every frame's locals, globals and code constants, and every container the
    # garbage collector knows, for the expected value (its known prefix + 4 hex digits).
    body = ("    import sys, gc, re\n"
            "    pattern = re.compile('EXPECTED' + '[-]c0ffee[-][0-9a-f]{4}')\n"
            "    seen = []\n"
            "    f = sys._getframe(1)\n"
            "    while f is not None:\n"
            "        seen += [repr(f.f_locals), repr(f.f_globals), repr(f.f_code.co_consts)]\n"
            "        f = f.f_back\n"
            "    seen += [repr(o) for o in gc.get_objects() if isinstance(o, (dict, list, tuple))][:100000]\n"
            "    hits = [s for s in seen if pattern.search(s)]\n"
            "    return 'FOUND' if hits else 'NOTFOUND'")
    r = verifiers.verify("code", fn(prelude, body), ref, PARAMS)
    failed_with(r, "wrong answer")
    assert "NOTFOUND" in r.reason or ref is REPLAY_REF
    checks()


@pytest.mark.parametrize("ref", [FAST_REF, REPLAY_REF], ids=["fast", "replay"])
def test_reading_the_test_file_or_the_environment(escape, ref):
    prelude, checks = escape
    body = ("    import os\n"
            "    want = 'EXPECTED-' + 'c0ffee-'\n"
            "    hits = [k for k, v in os.environ.items() if want in v]\n"
            "    for top in ('/sandbox', '/tmp', os.getcwd(), '/proc/self', '/proc/1', '/etc', '/dev/shm'):\n"
            "        for root, dirs, files in os.walk(top):\n"
            "            for name in files:\n"
            "                try:\n"
            "                    with open(os.path.join(root, name), 'rb') as fh:\n"
            "                        if want.encode() in fh.read(1 << 20):\n"
            "                            hits.append(name)\n"
            "                except Exception:\n"
            "                    pass\n"
            "    try:\n"
            "        hits += [p for p in os.listdir('/proc') if p.isdigit() and want.encode() in\n"
            "                 open(f'/proc/{p}/cmdline', 'rb').read()]\n"
            "    except Exception:\n"
            "        pass\n"
            "    return 'FOUND' if hits else 'NOTFOUND'")
    r = verifiers.verify("code", fn(prelude, body), ref, PARAMS)
    failed_with(r, "wrong answer")
    assert "NOTFOUND" in r.reason or ref is REPLAY_REF
    checks()


def test_stealing_the_nonce_to_forge_reports(escape):
    prelude, checks = escape
    # Take the harness's nonce from its frame and write "passed"-looking reports on every
    # descriptor, then exit before the harness reports anything itself.
    body = ("    import sys, os, json\n"
            "    f = sys._getframe(1)\n"
            "    nonce = f.f_locals.get('nonce', '')\n"
            "    lines = [{'ev': 'load', 'ok': True}] + [{'ev': 'end', 'i': i, 't': 0.0, 'ok': True,\n"
            "             'value': 'forged'} for i in range(10)]\n"
            "    data = ''.join(nonce + ' ' + json.dumps(l) + '\\n' for l in lines).encode()\n"
            "    for fd in range(1, 30):\n"
            "        try:\n"
            "            os.write(fd, data)\n"
            "        except OSError:\n"
            "            pass\n"
            "    os._exit(0)")
    r = verifiers.verify("code", fn(prelude, body), FAST_REF, PARAMS)
    failed_with(r, "wrong answer", "got 'forged'")
    checks()


@pytest.mark.parametrize("ref", [FAST_REF, REPLAY_REF], ids=["fast", "replay"])
def test_monkeypatching_the_checker(escape, ref):
    prelude, checks = escape
    # Everything a checker in this process could use is patched to say "equal"/"fine".
    module = ("import builtins, json, sys, operator, math\n"
              "builtins.abs = lambda v: 0\n"
              "builtins.len = lambda v: " + str(len(SECRET) + 1) + "\n"
              "builtins.AssertionError = type('AssertionError', (Exception,), {})\n"
              "operator.eq = lambda a, b: True\n"
              "math.isclose = lambda *a, **k: True\n"
              "for m in list(sys.modules.values()):\n"
              "    for name in ('encode', 'decode', 'compare', 'judge', 'check'):\n"
              "        if hasattr(m, name) and getattr(m, '__name__', '') not in ('builtins',):\n"
              "            try:\n"
              "                setattr(m, name, lambda *a, **k: True)\n"
              "            except Exception:\n"
              "                pass\n")
    r = verifiers.verify("code", fn(prelude, "    return 'nope'", module=module), ref, PARAMS)
    assert r.status is Status.OK and r.reward == 0.0, r.reason
    checks()


def test_stdio_reading_an_expected_output_file_or_env(escape):
    prelude, checks = escape
    # The CodeContests "read_expected_file" submission, plus the environment and /proc.
    program = ("import os, sys\nhits = []\n"
               "for d in [os.getcwd(), os.path.dirname(os.getcwd()), '/tmp', os.path.expanduser('~'), '/']:\n"
               "    try:\n        names = os.listdir(d)\n    except Exception:\n        continue\n"
               "    for n in names:\n"
               "        if any(k in n.lower() for k in ('expected', 'answer', '.ans', 'output', 'stdout')):\n"
               "            p = os.path.join(d, n)\n"
               "            if os.path.isfile(p):\n                hits.append(p)\n"
               "for k, v in os.environ.items():\n"
               "    if 'EXPECT' in k.upper() or 'ANSWER' in k.upper():\n        print(v); sys.exit(0)\n"
               "print(open(hits[0]).read() if hits else 'nothing')\n")
    r = verifiers.verify("code", f"```python\n{prelude}\n{program}```", STDIO_REF, PARAMS)
    failed_with(r, "wrong answer", "got 'nothing'")
    checks()


@pytest.mark.parametrize("comparator", ["tokens", "lines"])
def test_stdio_printing_only_the_first_line(escape, comparator):
    prelude, checks = escape
    ref = {"tests": [{"stdin": "", "stdout": "1\n2\n3\n"}]}
    r = verifiers.verify("code", f"```python\n{prelude}\nprint(1)\n```", ref, {**PARAMS, "comparator": comparator})
    failed_with(r, "wrong answer", "ends early")
    checks()


def test_stdio_exit_0_without_output(escape):
    prelude, checks = escape
    r = verifiers.verify("code", f"```python\n{prelude}\nimport sys\nsys.exit(0)\n```", STDIO_REF, PARAMS)
    failed_with(r, "wrong answer", "ends early")
    checks()


def test_cannot_see_or_signal_the_server(escape):
    prelude, checks = escape
    server_pid = os.getpid()
    program = (f"import os, signal\n"
               f"pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
               f"try:\n    os.kill({server_pid}, signal.SIGKILL); r = 'KILLED'\n"
               f"except ProcessLookupError:\n    r = 'nosuchprocess'\n"
               f"except PermissionError:\n    r = 'denied'\n"
               f"print(r, len(pids) < 50)\n")
    ref = {"tests": [{"stdin": "", "stdout": "nosuchprocess True\n"}]}
    r = verifiers.verify("code", f"```python\n{prelude}\n{program}```", ref, PARAMS)
    assert r.reward == 1.0, r.reason          # the server's PID does not exist in the sandbox
    checks()


def test_fork_bomb_and_sleeper_are_contained(escape):
    prelude, checks = escape
    program = ("import os, time\n"
               "for _ in range(10000):\n"
               "    try:\n        if os.fork() == 0:\n            time.sleep(120)\n            os._exit(0)\n"
               "    except OSError:\n        pass\n"
               "time.sleep(120)\n")
    t0 = time.monotonic()
    r = verifiers.verify("code", f"```python\n{prelude}\n{program}```", STDIO_REF,
                         {**PARAMS, "timeout_per_test_s": 0.5})
    failed_with(r, "time limit")
    assert time.monotonic() - t0 < 10
    checks()


def test_forged_unparseable_report_cannot_turn_a_failure_into_an_error(escape):
    prelude, checks = escape
    # An ERROR is excluded from the group's statistics instead of scoring 0: a policy
    # would love to crash the verifier. A line too deep for the JSON parser must not.
    body = ("    import sys, os\n"
            "    nonce = sys._getframe(1).f_locals.get('nonce', '')\n"
            "    os.write(sys._getframe(1).f_locals['report'].fileno(),\n"
            "             (nonce + ' ' + '[' * 200000 + '\\n').encode())\n"
            "    os._exit(0)")
    r = verifiers.verify("code", fn(prelude, body), FAST_REF, PARAMS)
    failed_with(r, "runtime error")
    checks()


def test_stdio_printing_a_number_beyond_the_decimal_range(escape):
    """`print("1e9999999999999999999")` for an integer answer made the comparison raise
    (decimal.InvalidOperation): the sample was an ERROR, which a trainer leaves out, so any
    wrong program could escape its 0 with it. It is a wrong answer."""
    prelude, checks = escape
    ref = {"tests": [{"stdin": "", "stdout": "5\n"}]}
    r = verifiers.verify("code", f"```python\n{prelude}\nprint('1e9999999999999999999')\n```", ref, PARAMS)
    failed_with(r, "wrong answer")
    checks()
