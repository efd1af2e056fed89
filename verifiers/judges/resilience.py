"""Protecting a judge endpoint from us, and us from it: a concurrency limit, a rate limit,
retry timing and a circuit breaker. Thread-safe; clocks are injectable for tests.

- `ConcurrencyLimit`: at most `limit` requests in flight; records the most ever seen.
- `RateLimit`: token bucket of `rpm` requests per minute, burst of one second's worth;
  a caller that would wait past its deadline gets False at once instead of waiting.
- `CircuitBreaker`: CLOSED → OPEN after `failure_threshold` consecutive failed attempts;
  OPEN fails fast (no request) for `reset_after_s`; then HALF_OPEN lets one trial request
  through: success → CLOSED, failure → OPEN again.
- `backoff_s` (exponential with jitter) and `parse_retry_after` (seconds or HTTP date).
"""
from __future__ import annotations

import email.utils
import enum
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from .errors import CircuitOpenError

Clock = Callable[[], float]


class ConcurrencyLimit:
    """A counting limit whose size can change while it is in use."""

    def __init__(self, limit: int):
        self._cond = threading.Condition()
        self.limit = max(1, int(limit))
        self.in_flight = 0
        self.max_in_flight = 0

    def set_limit(self, limit: int) -> None:
        with self._cond:
            self.limit = max(1, int(limit))
            self._cond.notify_all()

    def acquire(self, timeout_s: float) -> bool:
        """Take a slot, waiting up to `timeout_s`; False when none came free in time."""
        end = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            while self.in_flight >= self.limit:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return True

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()


class RateLimit:
    """Token bucket: `rpm` requests per minute (None: unlimited), capacity max(1, rpm/60)."""

    def __init__(self, rpm: float | None, *, clock: Clock = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep
        self.rpm: float | None = None
        self._tokens = 0.0
        self._stamp = clock()
        self.set_rpm(rpm)

    def set_rpm(self, rpm: float | None) -> None:
        with self._lock:
            if rpm != self.rpm:
                self.rpm = rpm
                self._tokens = self._capacity()
                self._stamp = self._clock()

    def _capacity(self) -> float:
        return max(1.0, self.rpm / 60.0) if self.rpm else 0.0

    def acquire(self, deadline: float) -> bool:
        """Take one token, sleeping until it is due; False (and no token taken) when it
        would be due after `deadline` (a time on this limiter's clock)."""
        if not self.rpm:
            return True
        with self._lock:
            now = self._clock()
            rate = self.rpm / 60.0
            self._tokens = min(self._capacity(), self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / rate
            if now + wait > deadline:
                return False
            self._tokens -= 1  # a reservation: later callers queue behind it
        if wait > 0:
            self._sleep(wait)
        return True


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Consecutive-failure breaker with a single trial request when half-open."""

    def __init__(self, failure_threshold: int = 5, reset_after_s: float = 30.0, *, clock: Clock = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.times_opened = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    def configure(self, failure_threshold: int, reset_after_s: float) -> None:
        with self._lock:
            self.failure_threshold, self.reset_after_s = failure_threshold, reset_after_s

    def before_request(self) -> None:
        """Raise CircuitOpenError unless a request may be sent now."""
        with self._lock:
            if self.state is BreakerState.CLOSED:
                return
            now = self._clock()
            if self.state is BreakerState.OPEN:
                left = self._opened_at + self.reset_after_s - now
                if left > 0:
                    raise CircuitOpenError(f"circuit open after {self.consecutive_failures} consecutive failures; "
                                           f"next trial in {left:.1f} s")
                self.state = BreakerState.HALF_OPEN
                self._trial_in_flight = False
            if self._trial_in_flight:
                raise CircuitOpenError("circuit half-open: a trial request is in flight")
            self._trial_in_flight = True

    def record_success(self) -> None:
        with self._lock:
            self.state = BreakerState.CLOSED
            self.consecutive_failures = 0
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self.consecutive_failures += 1
            self._trial_in_flight = False
            if self.state is BreakerState.HALF_OPEN or (
                    self.state is BreakerState.CLOSED and self.consecutive_failures >= self.failure_threshold):
                self.state = BreakerState.OPEN
                self._opened_at = self._clock()
                self.times_opened += 1

    def abandon(self) -> None:
        """A request allowed by `before_request` was not sent after all."""
        with self._lock:
            self._trial_in_flight = False


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (0-based): base·2^attempt capped at max, times a
    jitter factor in [0.5, 1)."""
    r = (rng or random).random()
    return min(max_s, base_s * (2 ** attempt)) * (0.5 + r / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent
    or unreadable. Never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


__all__ = ["ConcurrencyLimit", "RateLimit", "CircuitBreaker", "BreakerState", "backoff_s", "parse_retry_after"]
