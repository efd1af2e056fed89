"""What a caller or a program can make the code verifier hold (issue 17.6/17.7): caller
limits are capped, a program's output is compared without copies the size of its token
count, and what the program's own content causes is a verdict (OK, reward 0), never a
TIMEOUT or ERROR (issue 17.11)."""
from __future__ import annotations

import tracemalloc

import pytest

import verifiers
import verifiers.code  # noqa: F401  (registers "code")
from verifiers.code.compare import compare
from verifiers.code.functests import _events
from verifiers.core import Status
from verifiers.errors import InvalidParamsError

AVAILABLE, WHY = verifiers.registry.get("code").available()
needs_sandbox = pytest.mark.skipif(not AVAILABLE, reason=f"code verifier unavailable: {WHY}")
MiB = 1 << 20
REF = {"tests": [{"stdin": "", "stdout": "1\n"}]}


@pytest.mark.parametrize("params, field", [
    ({"timeout_per_test_s": 60}, "timeout_per_test_s"),       # 5x backstop: 300 s of a sandbox
    ({"max_output_bytes": 256 * MiB}, "max_output_bytes"),
    ({"compile_timeout_s": 300}, "compile_timeout_s"),
    ({"time_budget_s": 1800}, "time_budget_s"),
    ({"memory_limit_mb": 16384}, "memory_limit_mb"),
])
def test_caller_limits_past_the_caps_are_refused(params, field):
    with pytest.raises(InvalidParamsError, match=field):
        verifiers.registry.parse_params(verifiers.registry.get("code"), params)


def test_token_comparison_of_huge_output_holds_no_per_token_objects():
    out = "1 " * (16 * MiB)   # 16 Mi tokens: a list of them is ~0.9 GiB of str objects
    want_more = out + "1"
    want = "1 " * (16 * MiB)
    tracemalloc.start()
    try:
        ok = compare(out, want, "tokens").ok
        bad = compare(out, want_more, "tokens")
        lines = compare(out, want, "lines").ok
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ok and lines and not bad.ok and "ends early" in bad.detail
    # (one 32 MiB line: a copy of it per side is the most the lines comparator holds)
    assert peak < 80 * MiB, f"comparing 32 MiB of output allocated {peak / MiB:.0f} MiB"


def test_token_comparison_agrees_with_split_on_unicode_whitespace():
    for got, want in [("1\u20022", "1 2"), ("a\x85b", "a b"), ("x\u3000", "x"), ("1\x1c2", "1 2")]:
        assert compare(got, want, "tokens").ok == (got.split() == want.split()), (got, want)


def test_report_lines_are_found_without_splitting_everything():
    nonce = "ab" * 16
    junk = "\n" * (8 * MiB) + f"{nonce} " + '{"ev": "load", "ok": true}\n' + "\r" * MiB
    data = junk.encode()
    tracemalloc.start()
    try:
        events = _events(data, nonce)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events == [{"ev": "load", "ok": True}]
    assert peak < 40 * MiB, f"finding report lines in 9 MiB allocated {peak / MiB:.0f} MiB"


@needs_sandbox
def test_a_flood_of_output_is_an_output_limit_verdict():
    program = "```python\nimport sys\nsys.stdout.write('1 ' * (40 << 20))\n```"
    r = verifiers.verify("code", program, REF, {"max_output_bytes": 32 * MiB})
    assert r.status is Status.OK and r.reward == 0.0 and "output limit" in r.reason


@needs_sandbox
def test_output_up_to_the_cap_is_compared_not_held_per_token():
    program = "```python\nimport sys\nsys.stdout.write('1 ' * (12 << 20))\n```"
    want = {"tests": [{"stdin": "", "stdout": "1 " * (12 << 20)}]}
    tracemalloc.start()
    try:
        r = verifiers.verify("code", program, want, {"max_output_bytes": 32 * MiB})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status is Status.OK and r.reward == 1.0, r.reason
    # the output (24 MiB), one decoded copy and the drain's buffer, not 12 Mi token objects
    assert peak < 120 * MiB, f"scoring 24 MiB of output allocated {peak / MiB:.0f} MiB"
