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

Where the buckets live (`quotas.backend`): in this process (`memory`, the embedded
default), or in the database every replica shares (`database`: one row per team and
resource, refilled and taken in one locked transaction on the database's clock), so that N
replicas give a team its quota once, not N times. `auto` picks `database` on PostgreSQL.
The two counters (streams, samples in flight) stay per replica: they protect that
replica's own queues.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

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
    backend: Literal["auto", "memory", "database"] = Field("auto", description=(
        "where the token buckets live: this process, or the shared database (replicas share "
        "a team's quota); auto = database on PostgreSQL"))

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


@dataclass(frozen=True)
class BucketRequest:
    """What one admission wants from one bucket: `n` tokens of `kind` (rate per second,
    capacity), or with `debt_only` just that the bucket is not in debt."""

    kind: str
    label: str
    rate: float
    capacity: float
    n: float = 0.0
    debt_only: bool = False


def refilled(tokens: float, stamp: float, now: float, rate: float, capacity: float) -> float:
    """Tokens after refilling at `rate`/s from `stamp` to `now` (seconds), capped at `capacity`."""
    return min(capacity, tokens + max(0.0, now - stamp) * rate)


def first_refusal(tokens: dict[str, float], wanted: list[BucketRequest]) -> tuple[str, float] | None:
    """(label, seconds to wait) of the first bucket that cannot admit, or None when all can.
    A request larger than the capacity is admitted when the bucket is full (and leaves it in
    debt); a debt-only bucket admits once its debt is paid back."""
    for w in wanted:
        t = tokens[w.kind]
        if w.debt_only:
            if t < 0:
                return w.label, -t / w.rate
            continue
        need = min(w.n, w.capacity)
        if t < need:
            return w.label, (need - t) / w.rate
    return None


class MemoryBuckets:
    """Token buckets in this process (one replica)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def _bucket(self, team: str, r: BucketRequest) -> TokenBucket:
        b = self._buckets.get((team, r.kind))
        if b is None:
            b = self._buckets[(team, r.kind)] = TokenBucket(r.rate, r.capacity)
        return b

    def take(self, team: str, wanted: list[BucketRequest]) -> tuple[str, float] | None:
        now = time.monotonic()
        with self._lock:
            buckets = {r.kind: self._bucket(team, r) for r in wanted}
            for b in buckets.values():
                b.refill(now)
            refusal = first_refusal({k: b.tokens for k, b in buckets.items()}, wanted)
            if refusal is None:
                for r in wanted:
                    buckets[r.kind].tokens -= r.n
            return refusal

    def charge(self, team: str, r: BucketRequest, amount: float) -> None:
        with self._lock:
            b = self._bucket(team, r)
            b.refill(time.monotonic())
            b.tokens -= amount


class DatabaseBuckets:
    """Token buckets in the shared database (table `quota_buckets`): every replica on it
    takes from the same buckets. One transaction per admission: insert missing rows full,
    lock the team's rows (in kind order, so two admissions never deadlock), refill them on
    the database's clock, take or refuse."""

    def __init__(self, engine: Engine) -> None:
        from .store.models import QuotaBucket  # the store owns the schema
        self.engine, self.table = engine, QuotaBucket.__table__
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(self.table)

    def _now(self, conn) -> float:
        if self.engine.dialect.name == "postgresql":  # one clock for every replica
            return float(conn.execute(select(func.extract("epoch", func.clock_timestamp()))).scalar_one())
        return time.time()

    def _locked(self, conn, team: str, wanted: list[BucketRequest], now: float) -> dict[str, float]:
        t = self.table
        spec = {r.kind: r for r in wanted}
        conn.execute(self._insert.values([{"team": team, "kind": k, "tokens": spec[k].capacity, "stamp": now}
                                          for k in sorted(spec)]).on_conflict_do_nothing())
        rows = conn.execute(select(t.c.kind, t.c.tokens, t.c.stamp)
                            .where(t.c.team == team, t.c.kind.in_(sorted(spec)))
                            .order_by(t.c.kind).with_for_update()).all()
        return {k: refilled(tok, stamp, now, spec[k].rate, spec[k].capacity) for k, tok, stamp in rows}

    def _write(self, conn, team: str, tokens: dict[str, float], now: float) -> None:
        t = self.table
        for kind, value in tokens.items():
            conn.execute(update(t).where(t.c.team == team, t.c.kind == kind).values(tokens=value, stamp=now))

    def take(self, team: str, wanted: list[BucketRequest]) -> tuple[str, float] | None:
        with self.engine.begin() as conn:
            now = self._now(conn)
            tokens = self._locked(conn, team, wanted, now)
            refusal = first_refusal(tokens, wanted)
            if refusal is None:
                for r in wanted:
                    tokens[r.kind] -= r.n
                self._write(conn, team, tokens, now)
            return refusal

    def charge(self, team: str, r: BucketRequest, amount: float) -> None:
        with self.engine.begin() as conn:
            now = self._now(conn)
            tokens = self._locked(conn, team, [r], now)
            tokens[r.kind] -= amount
            self._write(conn, team, tokens, now)


class QuotaManager:
    """Admission for every team: token buckets in `buckets` (MemoryBuckets by default, or
    DatabaseBuckets shared by the replicas), stream and in-flight counters in this replica."""

    def __init__(self, config: QuotaConfig, buckets: MemoryBuckets | DatabaseBuckets | None = None):
        self.config = config
        self.buckets = buckets or MemoryBuckets()
        self._lock = threading.RLock()  # _reject counts under it, also from inside stream()
        self._streams: dict[str, int] = {}
        self._inflight: dict[str, int] = {}
        self.rejections: dict[str, int] = {}

    def _reject(self, team: str, message: str, retry_after_s: float) -> QuotaExceededError:
        with self._lock:
            self.rejections[team] = self.rejections.get(team, 0) + 1
        return QuotaExceededError(f"team {team}: {message}", retry_after_s)

    @staticmethod
    def _sandbox(q: TeamQuota) -> BucketRequest:
        return BucketRequest("sandbox", f"{q.sandbox_seconds_per_min:g} sandbox s/min",
                             q.sandbox_seconds_per_min / 60, q.sandbox_seconds_per_min, debt_only=True)

    @contextlib.contextmanager
    def admit(self, team: str, samples: int, judge_requests: int = 0, sandbox_components: int = 0) -> Iterator[None]:
        """Admit a batch of samples (raises QuotaExceededError) and hold their in-flight slots."""
        q = self.config.for_team(team)
        wanted: list[BucketRequest] = []
        if q.sandbox_seconds_per_min and sandbox_components:
            wanted.append(self._sandbox(q))  # charged after the run; admission only needs the debt paid back
        if q.samples_per_s:
            wanted.append(BucketRequest("samples", f"{q.samples_per_s:g} samples/s", q.samples_per_s,
                                        q.samples_burst or max(1.0, 2 * q.samples_per_s), samples))
        if q.judge_requests_per_min and judge_requests:
            wanted.append(BucketRequest("judge", f"{q.judge_requests_per_min:g} judge requests/min",
                                        q.judge_requests_per_min / 60, q.judge_requests_per_min, judge_requests))
        # The in-flight slots first (this replica's), so that a refusal there takes no tokens.
        with self._lock:
            inflight = self._inflight.get(team, 0)
            if q.max_inflight_samples and inflight + samples > q.max_inflight_samples and inflight > 0:
                refused = (f"{inflight} samples already in flight (limit {q.max_inflight_samples})", 0.05)
            else:
                refused = None
                self._inflight[team] = inflight + samples
        if refused:
            raise self._reject(team, *refused)
        try:
            refusal = self.buckets.take(team, wanted) if wanted else None
            if refusal is not None:
                label, wait = refusal
                raise self._reject(team, f"over its {label} quota", wait)
            yield
        finally:
            with self._lock:
                self._inflight[team] -= samples

    def charge_sandbox(self, team: str, seconds: float) -> None:
        q = self.config.for_team(team)
        if q.sandbox_seconds_per_min and seconds > 0:
            self.buckets.charge(team, self._sandbox(q), seconds)

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
