"""Per-team quotas and rate limits, enforced at admission with a retry hint.

Each limited resource is a token bucket per team (rate r per second, capacity `burst`):
- samples per second (a request of n samples takes n tokens);
- judge requests per minute (one per judge component of each sample);
- sandbox seconds per minute (charged after the programs ran, so the bucket can go into
  debt; the next request waits until it is paid back);
- concurrent ScoreGroups streams and samples in flight (counters, not buckets): these keep
  one team's flood from filling the shared worker queues ahead of another team's work.

A request that does not fit raises QuotaExceededError (RESOURCE_EXHAUSTED) with
`retry_after_s`; nothing is taken from any bucket unless every bucket admits it.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from .errors import QuotaExceededError


class TeamQuota(BaseModel):
    """Limits for one team; None = unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    samples_per_s: float | None = Field(None, gt=0)
    samples_burst: int | None = Field(None, ge=1, description="default: 2 s worth of samples_per_s")
    judge_requests_per_min: float | None = Field(None, gt=0)
    sandbox_seconds_per_min: float | None = Field(None, gt=0)
    max_streams: int | None = Field(None, ge=1)
    max_inflight_samples: int | None = Field(None, ge=1)


class QuotaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    default: TeamQuota = TeamQuota()
    teams: dict[str, TeamQuota] = Field(default_factory=dict)

    def for_team(self, team: str) -> TeamQuota:
        return self.teams.get(team, self.default)


@dataclass
class TokenBucket:
    """`rate` tokens per second up to `capacity`. Not thread-safe (QuotaManager locks)."""

    rate: float
    capacity: float
    tokens: float = field(default=-1.0)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, n: float) -> float:
        """Seconds until `n` tokens may be taken (0 = now). A request larger than the
        capacity is admitted when the bucket is full and leaves it in debt."""
        need = min(n, self.capacity)
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate


class QuotaManager:
    def __init__(self, config: QuotaConfig):
        self.config = config
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._streams: dict[str, int] = {}
        self._inflight: dict[str, int] = {}
        self.rejections: dict[str, int] = {}

    def _bucket(self, team: str, kind: str, rate: float, capacity: float) -> TokenBucket:
        b = self._buckets.get((team, kind))
        if b is None:
            b = self._buckets[(team, kind)] = TokenBucket(rate, capacity)
        return b

    def _reject(self, team: str, message: str, retry_after_s: float) -> QuotaExceededError:
        self.rejections[team] = self.rejections.get(team, 0) + 1
        return QuotaExceededError(f"team {team}: {message}", retry_after_s)

    @contextlib.contextmanager
    def admit(self, team: str, samples: int, judge_requests: int = 0, sandbox_components: int = 0) -> Iterator[None]:
        """Admit a batch of samples (raises QuotaExceededError) and hold their in-flight slots."""
        q = self.config.for_team(team)
        now = time.monotonic()
        with self._lock:
            wanted: list[tuple[str, TokenBucket, float]] = []
            if q.samples_per_s:
                wanted.append((f"{q.samples_per_s:g} samples/s", self._bucket(
                    team, "samples", q.samples_per_s, q.samples_burst or max(1.0, 2 * q.samples_per_s)), samples))
            if q.judge_requests_per_min and judge_requests:
                wanted.append((f"{q.judge_requests_per_min:g} judge requests/min", self._bucket(
                    team, "judge", q.judge_requests_per_min / 60, q.judge_requests_per_min), judge_requests))
            if q.sandbox_seconds_per_min and sandbox_components:
                b = self._bucket(team, "sandbox", q.sandbox_seconds_per_min / 60, q.sandbox_seconds_per_min)
                b.refill(now)
                if b.tokens < 0:  # charged after the run; admission only needs the debt paid back
                    raise self._reject(team, f"over its {q.sandbox_seconds_per_min:g} sandbox s/min quota",
                                       -b.tokens / b.rate)
            for _, b, n in wanted:
                b.refill(now)
            for label, b, n in wanted:
                if (wait := b.wait_for(n)) > 0:
                    raise self._reject(team, f"over its {label} quota", wait)
            inflight = self._inflight.get(team, 0)
            if q.max_inflight_samples and inflight + samples > q.max_inflight_samples and inflight > 0:
                raise self._reject(team, f"{inflight} samples already in flight (limit {q.max_inflight_samples})",
                                   0.05)
            for _, b, n in wanted:
                b.tokens -= n
            self._inflight[team] = inflight + samples
        try:
            yield
        finally:
            with self._lock:
                self._inflight[team] -= samples

    def charge_sandbox(self, team: str, seconds: float) -> None:
        q = self.config.for_team(team)
        if q.sandbox_seconds_per_min and seconds > 0:
            with self._lock:
                b = self._bucket(team, "sandbox", q.sandbox_seconds_per_min / 60, q.sandbox_seconds_per_min)
                b.refill(time.monotonic())
                b.tokens -= seconds

    @contextlib.contextmanager
    def stream(self, team: str) -> Iterator[None]:
        """Hold one of the team's concurrent-stream slots (raises QuotaExceededError)."""
        q = self.config.for_team(team)
        with self._lock:
            n = self._streams.get(team, 0)
            if q.max_streams and n >= q.max_streams:
                raise self._reject(team, f"{n} streams open (limit {q.max_streams}); close one", 1.0)
            self._streams[team] = n + 1
        try:
            yield
        finally:
            with self._lock:
                self._streams[team] -= 1
