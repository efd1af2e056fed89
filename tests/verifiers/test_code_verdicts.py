"""Code verdicts that no trick flips (issue 11), each through the real sandbox: an
integer answer printed as a float, return values the trusted side cannot print or
compare naively, and a program that prints one constant for every test."""
from __future__ import annotations

import pytest

import verifiers
import verifiers.code  # noqa: F401  (registers "code")
from verifiers import Status, registry

CODE = registry.get("code")
AVAILABLE, WHY = CODE.available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"code verifier unavailable: {WHY}")
FAST = {"timeout_per_test_s": 1.0}
MOD = {"tests": [{"stdin": "3\n", "stdout": "1000000006\n"}]}


def py(code: str) -> str:
    return f"```python\n{code}\n```"


# -- 1. an integer expected token is matched exactly ---------------------------------------

@pytest.mark.parametrize("printed, reward", [
    ("1000000005.0", 0.0),     # within rel 1e-6 of 1000000006, but a wrong answer
    ("1.0000000e9", 0.0),
    ("1" * 5000, 0.0),         # longer than int()'s 4300 digits: a verdict, not a crash
    ("1000000006", 1.0),
    ("1000000006.0", 1.0),     # the same value: accepted (documented in compare.py)
])
def test_integer_answer_printed_as_a_float_is_compared_exactly(printed, reward):
    r = verifiers.verify("code", py(f"print({printed!r})"), MOD, FAST)
    assert r.status is Status.OK and r.reward == reward, r.reason
    if reward == 0.0:
        assert r.details["first_failure"]["verdict"] == "wrong answer", r.reason


def test_code_1_0_0_stays_registered_with_its_old_rule():
    assert CODE.version == "1.2.0"
    old = registry.get("code", "1.0.0")
    assert old.version == "1.0.0" and not registry.is_latest(old)
    r = verifiers.verify("code", py("print('1000000005.0')"), MOD, FAST, version="1.0.0")
    assert r.status is Status.OK and r.reward == 1.0, r.reason     # what 1.0.0 scored
    # a float expected token keeps its tolerance in both versions
    ref = {"tests": [{"stdin": "", "stdout": "0.5\n"}]}
    assert verifiers.verify("code", py("print(0.5000001)"), ref, FAST).reward == 1.0
    assert verifiers.verify("code", py("print(0.5001)"), ref, FAST).reward == 0.0
    assert verifiers.verify("code", py("print(0.5001)"), ref, {**FAST, "float_tol": 1e-3}).reward == 1.0


# -- 2. whatever the candidate returns ends in a verdict, never ERROR ----------------------

FAST_REF = {"entry_point": "f", "prompt": "def f(x):\n    pass\n",
            "test": "def check(candidate):\n    assert candidate(1) == 7\n    assert candidate(2) == 8\n"}
REPLAY_REF = {"entry_point": "f", "prompt": "def f(x):\n    pass\n",
              "test": "def check(candidate):\n    for i, want in ((1, 7), (2, 8)):\n"
                      "        assert candidate(i) == want, f'f({i}) = {candidate(i)!r}'\n"}
TRUTHY_REF = {"entry_point": "f", "prompt": "def f(x):\n    pass\n",
              "test": "def check(candidate):\n    assert candidate(1)\n    assert not candidate(2)\n"}
HOSTILE = {
    "huge int": "return 10 ** 5000",
    "huge negative int": "return -(10 ** 20000) - 1",
    "list of huge ints": "return [10 ** 5000] * 3",
    "huge float-ish str": "return '9' * 1_000_000",
    "recursive list": "a = []\n    a.append(a)\n    return a",
    "deep list": "a = []\n    for _ in range(100000):\n        a = [a]\n    return a",
    "generator": "return (i for i in range(3))",
    "object whose eq raises": "class E:\n        def __eq__(s, o): raise ValueError('no')\n"
                              "        def __repr__(s): raise ValueError('no repr')\n    return E()",
    "object whose repr loops": "class L:\n        def __repr__(s):\n            while True: pass\n    return L()",
    "int subclass": "class I(int):\n        def __eq__(s, o): return True\n    return I(7)",
    "function": "return f",
    "module": "import os\n    return os",
    "huge dict keys": "return {10 ** 5000: 10 ** 6000}",
    "nan": "return float('nan')",
    "huge set": "return {10 ** 5000 + i for i in range(3)}",
    "huge complex tuple": "return (complex(1e308, 1e308), 10 ** 9000)",
    "bytes": "return b'\\xff' * 100000",
}


@pytest.mark.parametrize("ref", [FAST_REF, REPLAY_REF, TRUTHY_REF], ids=["fast", "replay", "truthy"])
@pytest.mark.parametrize("what", list(HOSTILE))
def test_any_return_value_ends_in_a_verdict(ref, what):
    completion = py(f"def f(x):\n    {HOSTILE[what]}\n")
    r = verifiers.verify("code", completion, ref, FAST)
    assert r.status is Status.OK, (what, r.status, r.reason)
    assert r.reward == 0.0, (what, r.reason)
    assert r.details["first_failure"]["verdict"] in ("wrong answer", "runtime error", "time limit",
                                                     "memory limit"), r.reason
    assert len(r.reason) < 2000


def test_huge_wrong_int_is_a_wrong_answer_naming_its_size():
    r = verifiers.verify("code", py("def f(x):\n    return 10 ** 5000\n"), FAST_REF, FAST)
    assert r.status is Status.OK and r.reward == 0.0, r.reason
    assert r.details["first_failure"]["verdict"] == "wrong answer" and "5001 digits" in r.reason, r.reason
    # and a huge *right* answer passes
    big = {"entry_point": "f", "prompt": "def f(x):\n    pass\n",
           "test": "def check(candidate):\n    assert candidate(5000) == 10 ** 5000\n"}
    assert verifiers.verify("code", py("def f(x):\n    return 10 ** x\n"), big, FAST).reward == 1.0


# -- 3. a program that prints one constant passes only if every answer is that constant ----

CONST_STDIO = {"tests": [{"stdin": "1 2\n", "stdout": "3\n"}, {"stdin": "2 1\n", "stdout": "3\n"},
                         {"stdin": "5 7\n", "stdout": "12\n"}, {"stdin": "0 3\n", "stdout": "3\n"}]}
SAME_STDIO = {"tests": [{"stdin": "1 2\n", "stdout": "3\n"}, {"stdin": "2 1\n", "stdout": "3\n"},
                        {"stdin": "0 3\n", "stdout": "3\n"}]}
CONST_FAST = {"entry_point": "f", "prompt": "def f(a, b):\n    pass\n",
              "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 1) == 3\n"
                      "    assert candidate(5, 7) == 12\n    assert candidate(0, 3) == 3\n"}
CONST_REPLAY = {"entry_point": "f", "prompt": "def f(a, b):\n    pass\n",
                "test": "CASES = [((1, 2), 3), ((2, 1), 3), ((5, 7), 12), ((0, 3), 3)]\n\n"
                        "def check(candidate):\n    for args, want in CASES[:2]:\n        assert candidate(*args) == want\n"
                        "    assert candidate(*CASES[2][0]) == CASES[2][1]\n"
                        "    assert candidate(*CASES[3][0]) == CASES[3][1]\n"}


@pytest.mark.parametrize("stop", [True, False], ids=["stop-at-first", "run-all"])
def test_a_constant_printer_fails_where_one_answer_differs_and_every_test_runs(stop):
    params = {**FAST, "stop_at_first_failure": stop, "partial_credit": not stop}
    r = verifiers.verify("code", py("print(3)"), CONST_STDIO, params)
    assert r.status is Status.OK and r.details["total"] == 4, r.reason
    assert r.details["first_failure"]["test"] == 3 and r.details["first_failure"]["verdict"] == "wrong answer"
    # stop: tests 1-2 pass, 3 fails, 4 is not run; else all four ran and three passed
    assert (r.reward, r.details["verdicts"]) == ((0.0, "AAW-") if stop else (0.75, "AAWA")), r.details
    # the replay path counts a top-level statement as one test: the loop is test 1
    for ref, full, stopped in ((CONST_FAST, "AAWA", "AAW-"), (CONST_REPLAY, "AWA", "AW-")):
        r = verifiers.verify("code", py("def f(a, b):\n    return 3\n"), ref, params)
        want = stopped if stop else full
        assert r.status is Status.OK and r.details["verdicts"] == want, r.reason
        assert r.reward == (0.0 if stop else want.count("A") / len(want)), r.reason
        assert r.details["first_failure"]["verdict"] == "wrong answer", r.reason


def test_a_constant_printer_passes_where_every_answer_is_that_constant():
    r = verifiers.verify("code", py("print(3)"), SAME_STDIO, FAST)
    assert r.status is Status.OK and r.reward == 1.0 and r.details["verdicts"] == "AAA", r.reason
    same_fast = {**CONST_FAST, "test": CONST_FAST["test"].replace("candidate(5, 7) == 12", "candidate(5, 7) == 3")}
    r = verifiers.verify("code", py("def f(a, b):\n    return 3\n"), same_fast, FAST)
    assert r.reward == 1.0 and r.details["verdicts"] == "AAAA", r.reason


# -- 5. the time limit is CPU time; the wall clock is a generous backstop, and the reason says which

ONE = {"tests": [{"stdin": "", "stdout": "done\n"}]}
ONE_FN = {"entry_point": "f", "test": "def check(candidate):\n    assert candidate() == 'done'\n"}
STRETCHED = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.1:\n    pass\ntime.sleep(1.6)\n"


def test_a_wall_clock_stretched_past_twice_the_limit_is_not_a_time_limit():
    # 0.1 s of CPU against a 0.5 s limit; 1.7 s of wall clock, as on a host so loaded that
    # the program waits for a CPU three times as long as it runs: within the limit.
    params = {"timeout_per_test_s": 0.5}
    r = verifiers.verify("code", py(STRETCHED + "print('done')"), ONE, params)
    assert r.status is Status.OK and r.reward == 1.0, r.reason
    fn = "def f():\n" + "".join(f"    {ln}\n" for ln in STRETCHED.splitlines()) + "    return 'done'\n"
    r = verifiers.verify("code", py(fn), ONE_FN, params)
    assert r.status is Status.OK and r.reward == 1.0, r.reason


@pytest.mark.parametrize("kind", ["stdio", "function"])
def test_the_reason_names_the_limit_that_ended_the_run(kind):
    params = {"timeout_per_test_s": 0.5}
    spin, sleep = "while True:\n    pass", "import time\ntime.sleep(60)"
    for body, limit in ((spin, "CPU-time limit 0.5 s"), (sleep, "wall-clock limit")):
        if kind == "stdio":
            r = verifiers.verify("code", py(body), ONE, params)
        else:
            fn = "def f():\n" + "".join(f"    {ln}\n" for ln in body.splitlines())
            r = verifiers.verify("code", py(fn), ONE_FN, params)
        assert r.status is Status.OK and r.reward == 0.0, r.reason
        assert r.details["first_failure"]["verdict"] == "time limit", r.reason
        assert limit in r.reason, r.reason
        if limit == "wall-clock limit":
            assert "CPU-time limit 0.5 s" not in r.reason and "of CPU" in r.reason, r.reason
