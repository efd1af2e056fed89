"""The killable worker pool with real workers: adversarial math input comes back as
TIMEOUT/ERROR/ABSTAIN within its limit, the pool keeps serving, request errors cross
the process boundary with their type."""
import time

import pytest

from verifiers import InvalidReferenceError, Status, UnknownVerifierError, VerifierResult, registry
from verifiers.core import Verifier
from verifiers.pool import VerifierPool

TIMEOUT_S = 2.0
SLACK_S = 0.5  # pebble's watchdog period is ~0.1 s; the rest is the round trip
MEMORY_LIMIT_BYTES = 2 << 30


@pytest.fixture(scope="module")
def pool():
    p = VerifierPool(workers=2, memory_limit_bytes=MEMORY_LIMIT_BYTES)
    p.warm_up()
    yield p
    p.close(wait=False)


def _timed(pool, completion, reference="1", name="math", version="1.0.0", timeout_s=TIMEOUT_S):
    t0 = time.monotonic()
    result, _pid = pool.submit(name, version, completion, reference, {}, timeout_s).result(timeout=60)
    return result, time.monotonic() - t0


# Each is refused by a cheap guard (ABSTAIN) or killed at the limit (TIMEOUT); what must
# not happen is a worker stuck for minutes or the host running out of memory.
PATHOLOGICAL = [
    "\\boxed{9^9^9^9}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{10^(10^10)}",
    "\\boxed{10^{10^{10}}}",
    "\\boxed{" + "(" * 500 + "1" + ")" * 500 + "}",
    "\\boxed{" + "{" * 300 + "x" + "}" * 300 + "}",
    "\\boxed{(10^{8})!}",
    "\\boxed{123456789!}",
    "\\boxed{\\binom{1000000}{500000}}",
    "\\boxed{\\prod_{n=1}^{100000} (1+1/n^2)}",
    "\\boxed{" + "x^2+" * 2000 + "1}",
    "\\boxed{2^(2^(2^(2^(2^(9)))))}",
]
# Passes every guard and SymPy grinds on it: the pool's wall-clock limit ends it.
SLOW_BUT_UNGUARDED = "\\boxed{\\sum_{n=1}^{\\infty} \\frac{\\sin(n^2)}{n}}"


@pytest.mark.parametrize("completion", PATHOLOGICAL, ids=lambda c: c[:40])
def test_pathological_input_is_contained(pool, completion):
    result, elapsed_s = _timed(pool, completion)
    assert result.status in (Status.TIMEOUT, Status.ERROR, Status.ABSTAIN), result
    assert result.reward is None and result.reason
    assert elapsed_s <= TIMEOUT_S + SLACK_S, (elapsed_s, result)


def test_huge_completion_is_scanned_quickly(pool):
    result, elapsed_s = _timed(pool, "step " * 200_000 + "\\boxed{2}", reference="2")  # 1 MB
    assert result.status is Status.OK and result.reward == 1.0
    assert elapsed_s <= TIMEOUT_S + SLACK_S


def test_slow_sympy_input_really_times_out(pool):
    result, elapsed_s = _timed(pool, SLOW_BUT_UNGUARDED)
    assert result.status is Status.TIMEOUT and result.reward is None
    assert "wall-clock limit" in result.reason
    assert TIMEOUT_S - 0.05 <= elapsed_s <= TIMEOUT_S + SLACK_S


def test_pool_still_answers_correctly_afterwards(pool):
    result, _ = pool.submit("math", "1.0.0", "so $\\boxed{\\frac{1}{2}}$", "0.5", {}, TIMEOUT_S).result(timeout=60)
    assert result.status is Status.OK and result.reward == 1.0
    result, _ = pool.submit("math", "1.0.0", "\\boxed{3}", "4", {}, TIMEOUT_S).result(timeout=60)
    assert result.status is Status.OK and result.reward == 0.0


def test_invalid_reference_raises_from_result(pool):
    future = pool.submit("math", "1.0.0", "\\boxed{1}", None, {}, TIMEOUT_S)
    with pytest.raises(InvalidReferenceError):
        future.result(timeout=60)


def test_unknown_verifier_raises_from_result():
    own_pool = VerifierPool(workers=1, memory_limit_bytes=MEMORY_LIMIT_BYTES)
    try:
        future = own_pool.submit("no-such-verifier", "1.0.0", "x", "y", {}, TIMEOUT_S)
        with pytest.raises(UnknownVerifierError, match="no-such-verifier"):
            future.result(timeout=60)
        result, _ = own_pool.submit("math", "1.0.0", "\\boxed{2}", "2", {}, TIMEOUT_S).result(timeout=60)
        assert result.reward == 1.0  # and the pool keeps serving
    finally:
        own_pool.close(wait=False)


# A verifier that only exists in this test. Forkserver workers import `verifiers` alone
# and would not know it, so this test's pool forks from the test process after
# registering it (for this test only: other tests list the registered verifiers).
class _SleepVerifier(Verifier):
    name = "test-sleep"
    version = "0.0.1"
    isolated = True

    def verify(self, completion, reference, params):
        time.sleep(float(completion))
        return VerifierResult.ok(1.0, "woke up")


def test_sleeping_verifier_is_killed_and_replaced(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, _SleepVerifier.name, {_SleepVerifier.version: _SleepVerifier})
    fork_pool = VerifierPool(workers=1, memory_limit_bytes=MEMORY_LIMIT_BYTES, start_method="fork")
    try:
        (first, pid_before) = fork_pool.submit("test-sleep", "0.0.1", "0", None, {}, 5).result(timeout=60)
        assert first.status is Status.OK
        t0 = time.monotonic()
        timed_out, _ = fork_pool.submit("test-sleep", "0.0.1", "30", None, {}, 0.5).result(timeout=60)
        elapsed_s = time.monotonic() - t0
        assert timed_out.status is Status.TIMEOUT and elapsed_s <= 0.5 + SLACK_S
        (after, pid_after) = fork_pool.submit("test-sleep", "0.0.1", "0", None, {}, 5).result(timeout=60)
        assert after.status is Status.OK and pid_after != pid_before  # a fresh worker
    finally:
        fork_pool.close(wait=False)
