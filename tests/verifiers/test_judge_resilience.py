"""Concurrency limit, token-bucket rate limit and circuit breaker, on a fake clock where time matters."""
from __future__ import annotations

import threading
import time

import pytest

from verifiers.judges.errors import CircuitOpenError
from verifiers.judges.resilience import BreakerState, CircuitBreaker, ConcurrencyLimit, RateLimit


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_breaker_opens_after_threshold_then_half_open_trial_closes_it():
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=clock)
    for _ in range(2):
        b.before_request()
        b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.before_request()
    b.record_failure()                                   # third consecutive failure
    assert b.state is BreakerState.OPEN and b.times_opened == 1
    with pytest.raises(CircuitOpenError, match="next trial in 10.0 s"):
        b.before_request()
    clock.t += 10                                        # reset_after_s later: one trial allowed
    b.before_request()
    assert b.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpenError, match="trial request is in flight"):
        b.before_request()                               # a second caller does not pile on
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.consecutive_failures == 0
    b.before_request()


def test_failed_trial_reopens_and_success_resets_the_count():
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=2, reset_after_s=5, clock=clock)
    b.record_failure()
    b.record_success()                                   # consecutive failures only
    b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN
    clock.t += 5
    b.before_request()
    b.record_failure()                                   # the trial failed: open again for 5 s
    assert b.state is BreakerState.OPEN and b.times_opened == 2
    with pytest.raises(CircuitOpenError):
        b.before_request()
    clock.t += 5
    b.before_request()
    b.abandon()                                          # trial not sent after all: the next caller may try
    b.before_request()


def test_rate_limit_spaces_requests_and_refuses_past_deadline():
    clock = FakeClock()
    r = RateLimit(60, clock=clock, sleep=clock.sleep)   # 1 per second, burst 1
    assert r.acquire(deadline=clock.t + 10) and clock.slept == []
    assert r.acquire(deadline=clock.t + 10) and clock.slept == [pytest.approx(1.0)]
    # The next token is due 1 s from now; a deadline 0.5 s away gets False at once, no sleep, no token.
    assert not r.acquire(deadline=clock.t + 0.5) and len(clock.slept) == 1
    clock.t += 3                                         # idle time refills at most the burst (1 token)
    assert r.acquire(deadline=clock.t) and len(clock.slept) == 1
    assert r.acquire(deadline=clock.t + 2) and clock.slept[-1] == pytest.approx(1.0)
    assert RateLimit(None).acquire(deadline=0)           # unlimited


def test_rate_limit_burst_is_one_second_of_rate():
    clock = FakeClock()
    r = RateLimit(600, clock=clock, sleep=clock.sleep)  # 10 per second: 10 at once, then 0.1 s apart
    for _ in range(10):
        assert r.acquire(deadline=clock.t)
    assert not r.acquire(deadline=clock.t)
    assert r.acquire(deadline=clock.t + 1) and clock.slept == [pytest.approx(0.1)]


def test_concurrency_limit_is_never_exceeded_and_can_shrink():
    lim = ConcurrencyLimit(3)
    seen, lock = [], threading.Lock()

    def work():
        assert lim.acquire(5)
        with lock:
            seen.append(lim.in_flight)
        time.sleep(0.01)
        lim.release()

    threads = [threading.Thread(target=work) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(seen) <= 3 and lim.max_in_flight == 3 and lim.in_flight == 0
    lim.set_limit(1)
    assert lim.acquire(0.1) and not lim.acquire(0.05)    # full: times out instead of waiting forever
    lim.release()
