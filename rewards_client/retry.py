"""The one retry policy, and the lines said about an outage.

- UNAVAILABLE (server down, restarting, connection lost, or the service's own outage
  signal): retried with exponential back-off (`backoff_s` · 2^attempt, capped at
  `max_backoff_s`, with jitter: each wait is 50-100 % of that) at least `max_retries`
  times and, with `outage_timeout_s` > 0, for that long after the first failure; never
  past a call's own deadline.
- RESOURCE_EXHAUSTED carrying the server's `retry-after-s` trailer (a team quota): retried
  after the wait the server asked for (negative as 0, capped at `max_retry_after_s`), up to
  `max_retries` times. A trailer that is not a finite number (inf, NaN, text) is a broken
  hint: the refusal is raised at once rather than slept on.
- Everything else (including RESOURCE_EXHAUSTED without the trailer: a request over a size
  limit) is not retried: a retry would be refused again.
"""
from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

_log = logging.getLogger("rewards_client")


def retry_after_s(err: grpc.RpcError) -> float | None:
    """The server's `retry-after-s` trailer of a refused call, in seconds (>= 0); None when
    absent or not a finite number (a broken or hostile hint is no reason to sleep)."""
    try:
        for key, value in err.trailing_metadata() or ():
            if key == "retry-after-s":
                seconds = float(value)
                return max(0.0, seconds) if math.isfinite(seconds) else None
    except (AttributeError, TypeError, ValueError):
        pass
    return None


@dataclass
class RetryPolicy:
    """When and how long to wait before retrying a failed call (see the module docstring).

    `attempt` counts the retries already made (0-based); times are time.monotonic() seconds.
    """

    max_retries: int = 3
    backoff_s: float = 0.25
    max_backoff_s: float = 5.0
    outage_timeout_s: float = 0.0
    max_retry_after_s: float = 60.0   # the longest quota wait honoured (a server may ask for days)
    max_quota_retries: int | None = None  # quota refusals retried; None = max_retries
    jitter: bool = True

    def backoff(self, attempt: int) -> float:
        """The back-off ceiling before retry `attempt`: exponential, capped (no jitter)."""
        return min(self.backoff_s * 2 ** attempt, self.max_backoff_s)

    def sleep_s(self, attempt: int) -> float:
        """The wait before retry `attempt` of an UNAVAILABLE call: backoff() with jitter
        (50-100 % of it), so that many clients of a restarted service do not retry in step."""
        base = self.backoff(attempt)
        return base * (0.5 + random.random() / 2) if self.jitter else base

    def may_retry(self, attempt: int, first_failure: float, deadline: float = float("inf")) -> bool:
        """Retry UNAVAILABLE? At least max_retries times, then while the outage is shorter
        than outage_timeout_s; never past `deadline`."""
        now = time.monotonic()
        if now + self.backoff(attempt) >= deadline:
            return False
        return attempt < self.max_retries or now - first_failure < self.outage_timeout_s

    def give_up_at(self, first_failure: float, deadline: float = float("inf")) -> float:
        """About when retries from `first_failure` end: after the outage window or the
        max_retries back-offs, whichever is longer; by `deadline`."""
        retries_s = sum(self.backoff(i) for i in range(self.max_retries))
        return min(deadline, first_failure + max(self.outage_timeout_s, retries_s))

    def quota_wait_s(self, attempt: int, err: grpc.RpcError) -> float | None:
        """The wait before retrying a RESOURCE_EXHAUSTED call: the server's retry-after-s
        capped at max_retry_after_s (plus up to 50 ms of jitter), or None when it carries none
        (or a broken one) or the retries are spent."""
        hint = retry_after_s(err)
        limit = self.max_retries if self.max_quota_retries is None else self.max_quota_retries
        if hint is None or attempt >= limit:
            return None
        return min(hint, self.max_retry_after_s) + (random.random() * 0.05 if self.jitter else 0.0)


class OutageNotices:
    """The few lines said about one outage, whichever calls retry through it.

    failed() on every UNAVAILABLE that will be retried: the first of an outage says what
    was interrupted and how long the client will keep trying; later ones are silent but
    for a "still waiting" line every `every_s`. recovered() on the next answer: how long
    the service was away and what resumes. gave_up() when the retries are spent.
    Thread-safe (a step's stream retries on its own thread); `log` takes one line
    (default: the `rewards_client` logger's warning).
    """

    def __init__(self, address: str, log: Callable[[str], None] | None = None,
                 every_s: float = 30.0):
        self.address, self.every_s = address, every_s
        self.log: Callable[[str], None] = log or _log.warning
        self._lock = threading.Lock()
        self._since: float | None = None      # time.monotonic() of the outage's first failure
        self._last_notice = 0.0

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    def failed(self, what: str, give_up_at: float, why: str = "unreachable") -> None:
        """`what` was interrupted ("step 5", "LogStep (step 5)"); retries end by `give_up_at`;
        `why` says how ("unreachable", or the service's own outage signal)."""
        now = time.monotonic()
        with self._lock:
            if self._since is None:
                self._since = self._last_notice = now
                line = (f"reward service at {self.address} {why} during {what}; waiting "
                        f"for it (gives up after {max(give_up_at - now, 0.0):.0f} s)")
            elif now - self._last_notice >= self.every_s:
                self._last_notice = now
                line = (f"still waiting for the reward service at {self.address} "
                        f"({now - self._since:.0f} s so far, gives up in "
                        f"{max(give_up_at - now, 0.0):.0f} s)")
            else:
                return
        self.log(line)

    def recovered(self, what: str) -> None:
        with self._lock:
            if self._since is None:
                return
            away, self._since = time.monotonic() - self._since, None
        self.log(f"reward service back after {away:.1f} s; resuming {what}")

    def gave_up(self, what: str) -> None:
        with self._lock:
            if self._since is None:
                return
            away, self._since = time.monotonic() - self._since, None
        self.log(f"reward service at {self.address} still unreachable after {away:.0f} s; "
                 f"giving up on {what}")
