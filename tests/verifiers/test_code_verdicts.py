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
    assert CODE.version == "1.1.0"
    old = registry.get("code", "1.0.0")
    assert old.version == "1.0.0" and not registry.is_latest(old)
    r = verifiers.verify("code", py("print('1000000005.0')"), MOD, FAST, version="1.0.0")
    assert r.status is Status.OK and r.reward == 1.0, r.reason     # what 1.0.0 scored
    # a float expected token keeps its tolerance in both versions
    ref = {"tests": [{"stdin": "", "stdout": "0.5\n"}]}
    assert verifiers.verify("code", py("print(0.5000001)"), ref, FAST).reward == 1.0
    assert verifiers.verify("code", py("print(0.5001)"), ref, FAST).reward == 0.0
    assert verifiers.verify("code", py("print(0.5001)"), ref, {**FAST, "float_tol": 1e-3}).reward == 1.0
