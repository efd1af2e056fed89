"""Per-team quotas and rate limits, enforced at admission with a retry hint.

Each limited resource is a token bucket per team (rate r per second, capacity `burst`):
- samples per second (a request of n samples takes n tokens);
- judge requests per minute (one per judge component of each sample);
- sandbox seconds per minute (charged after the programs ran, so the bucket can go into
  debt; the next request waits until it is paid back);
- components per second (every verification a sample's spec asks for, DryRun included);
- stored bytes per minute (texts × components: what a batch adds to the database);
- run bookkeeping calls per second (StartRun, LogStep, FinishRun);
- concurrent ScoreGroups streams and samples in flight (counters, not buckets): these keep
  one team's flood from filling the shared worker queues ahead of another team's work.

A request that does not fit raises QuotaExceededError (RESOURCE_EXHAUSTED) with
`retry_after_s`; nothing is taken from any bucket or counter unless every one admits it.

Where the state lives (`quotas.backend`): in this process (`memory`, the embedded
default), or in the database every replica shares (`database`), so that N replicas give a
team its quota once, not N times; `auto` picks `database` on PostgreSQL. In the database a
bucket or counter is a row of `quota_buckets`, refilled and taken in one locked transaction
on the database's clock, and each held counter slot is also a lease row in `quota_leases`.
A replica renews its own leases every `lease_ttl_s / 3`; the leases of a replica that
crashed lapse after `lease_ttl_s` and stop counting against its team.
"""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, bindparam, create_engine, delete, func, insert, literal, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite

from .errors import QuotaExceededError
from .fairness import FairGate

log = logging.getLogger(__name__)


class TeamQuota(BaseModel):
    """Limits for one team; None = unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    samples_per_s: float | None = Field(None, gt=0)
    samples_burst: int | None = Field(None, ge=1, description="default: 2 s worth of samples_per_s")
    judge_requests_per_min: float | None = Field(None, gt=0)
    sandbox_seconds_per_min: float | None = Field(None, gt=0)
    components_per_s: float | None = Field(None, gt=0, description="verifications (samples × components)")
    components_burst: int | None = Field(None, ge=1, description="default: 2 s worth of components_per_s")
    stored_bytes_per_min: float | None = Field(None, gt=0, description="text bytes stored (× components)")
    stored_bytes_burst: int | None = Field(None, ge=1, description="default: 1 min worth")
    bookkeeping_calls_per_s: float | None = Field(None, gt=0, description="StartRun, LogStep, FinishRun")
    bookkeeping_burst: int | None = Field(None, ge=1, description="default: 10 s worth")
    max_streams: int | None = Field(None, ge=1)
    max_inflight_samples: int | None = Field(None, ge=1)


class QuotaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    default: TeamQuota = TeamQuota()
    teams: dict[str, TeamQuota] = Field(default_factory=dict)
    backend: Literal["auto", "memory", "database"] = Field("auto", description=(
        "where the buckets and counters live: this process, or the shared database (replicas share "
        "a team's quota); auto = database on PostgreSQL"))
    lease_ttl_s: float = Field(30.0, ge=1, description=(
        "database backend: a stream's or request's slot lapses this long after its replica last "
        "renewed it (a crashed replica's slots are freed within it)"))

    def for_team(self, team: str) -> TeamQuota:
        return self.teams.get(team, self.default)


@dataclass
class TokenBucket:
    """`rate` tokens per second up to `capacity`. Not thread-safe (MemoryBackend locks)."""

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


@dataclass(frozen=True)
class Hold:
    """`amount` of the team's `kind` counter held until released, at most `limit` in all.
    A batch bigger than the limit is admitted when nothing is held (it could never fit)."""

    kind: str            # "streams" | "inflight"
    amount: int
    limit: int
    what: str            # how the message names what is held
    retry_after_s: float
    hint: str = ""

    def refusal(self, held: int) -> tuple[str, float] | None:
        if held and held + self.amount > self.limit:
            return f"{held} {self.what} (limit {self.limit}){self.hint}", self.retry_after_s
        return None


def refilled(tokens: float, stamp: float, now: float, rate: float, capacity: float) -> float:
    """Tokens after refilling at `rate`/s from `stamp` to `now` (seconds), capped at `capacity`."""
    return min(capacity, tokens + max(0.0, now - stamp) * rate)


def first_refusal(tokens: dict[str, float], wanted: list[BucketRequest], hold: Hold | None = None,
                  held: int = 0) -> tuple[str, float] | None:
    """(message, seconds to wait) of the first limit that cannot admit, or None when all can.
    The counter is checked first. A request larger than a bucket's capacity is admitted when
    the bucket is full (and leaves it in debt); a debt-only bucket admits once its debt is
    paid back."""
    if hold is not None and (r := hold.refusal(held)):
        return r
    for w in wanted:
        t = tokens[w.kind]
        if w.debt_only:
            if t < 0:
                return f"over its {w.label} quota", -t / w.rate
            continue
        need = min(w.n, w.capacity)
        if t < need:
            return f"over its {w.label} quota", (need - t) / w.rate
    return None


class QuotaBackend(Protocol):
    blocking: bool  # True: calls do I/O, so the servicer makes them off the event loop

    def admit(self, team: str, wanted: list[BucketRequest], hold: Hold | None
              ) -> tuple[tuple[str, float] | None, Any]:
        """Take every wanted token and the hold, or nothing: (refusal or None, lease for release)."""

    def release(self, team: str, hold: Hold, lease: Any) -> None: ...

    def charge(self, team: str, r: BucketRequest, amount: float) -> None: ...

    def close(self) -> None: ...


class MemoryBackend:
    """Buckets and counters in this process (one replica)."""

    blocking = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._held: dict[tuple[str, str], int] = {}

    def _bucket(self, team: str, r: BucketRequest) -> TokenBucket:
        b = self._buckets.get((team, r.kind))
        if b is None:
            b = self._buckets[(team, r.kind)] = TokenBucket(r.rate, r.capacity)
        return b

    def admit(self, team: str, wanted: list[BucketRequest], hold: Hold | None
              ) -> tuple[tuple[str, float] | None, Any]:
        now = time.monotonic()
        with self._lock:
            buckets = {r.kind: self._bucket(team, r) for r in wanted}
            for b in buckets.values():
                b.refill(now)
            held = self._held.get((team, hold.kind), 0) if hold else 0
            refusal = first_refusal({k: b.tokens for k, b in buckets.items()}, wanted, hold, held)
            if refusal is None:
                for r in wanted:
                    buckets[r.kind].tokens -= r.n
                if hold:
                    self._held[(team, hold.kind)] = held + hold.amount
            return refusal, None

    def release(self, team: str, hold: Hold, lease: Any) -> None:
        with self._lock:
            self._held[(team, hold.kind)] -= hold.amount

    def charge(self, team: str, r: BucketRequest, amount: float) -> None:
        with self._lock:
            b = self._bucket(team, r)
            b.refill(time.monotonic())
            b.tokens -= amount

    def close(self) -> None:
        pass


class DatabaseBackend:
    """Buckets and counters in the shared database: every replica on it takes from the same
    rows of `quota_buckets` (a bucket's row holds its tokens; a counter's row, kind `streams`
    or `inflight`, holds the amount its leases hold).

    An admission is one transaction: lock the team's rows in kind order (so two admissions
    never deadlock) and read the database's clock in the same statement; refill; decide;
    then write the rows back and insert the lease in one more statement each. The first
    admission of a team inserts its rows (a bucket full, a counter at 0). A lease that its
    replica stopped renewing (it crashed) is removed when it would refuse a request, so it
    stops counting `lease_ttl_s` after the last renewal. Stamps never go backwards: a clock
    read before a lock wait refills nothing rather than twice."""

    blocking = True

    def __init__(self, engine: Engine, lease_ttl_s: float = 30.0, replica: str = "") -> None:
        from .store.models import QuotaBucket, QuotaLease  # the store owns the schema
        self._pg = engine.dialect.name == "postgresql"
        # Its own connections, committing without waiting for the WAL flush (a third of the
        # cost of an admission otherwise): a database crash can lose the last fraction of a
        # second of quota updates, which only hands back a few tokens or slots. Visibility and
        # locks are as with any commit. Scores keep the store's durable commits.
        # No checkout ping (a round trip per admission and per release, a tenth of their
        # cost): a connection the database dropped fails one attempt, which `_in_txn`
        # repeats once on a fresh one.
        self._own_engine = self._pg
        self.engine = (create_engine(engine.url, connect_args={"options": "-c synchronous_commit=off"},
                                     pool_size=4, max_overflow=16) if self._pg else engine)
        self.buckets, self.leases = QuotaBucket.__table__, QuotaLease.__table__
        self.lease_ttl_s, self.replica = lease_ttl_s, replica[:200]
        self._insert = (postgresql.insert if self._pg else sqlite.insert)(self.buckets)
        t, L = self.buckets, self.leases
        # Statements built once: building and keying them per call was a fifth of an admission's CPU.
        self._write_rows = update(t).where(t.c.team == bindparam("b_team"), t.c.kind == bindparam("b_kind")).values(
            tokens=bindparam("b_tokens"), stamp=bindparam("b_stamp"))
        self._lock_query = (select(t.c.kind, t.c.tokens, t.c.stamp, self._now().label("now"))
                            .where(t.c.team == bindparam("q_team"), t.c.kind.in_(bindparam("q_kinds", expanding=True)))
                            .order_by(t.c.kind).with_for_update())
        self._delete_lapsed = delete(L).where(L.c.team == bindparam("q_team"), L.c.kind == bindparam("q_kind"),
                                              L.c.expires_at <= bindparam("q_now")).returning(L.c.amount)
        self._insert_lease = insert(L)
        self._delete_lease = delete(L).where(L.c.id == bindparam("q_lease")).returning(L.c.amount)
        # PostgreSQL: a release is one statement (the lease's delete feeds the counter's update).
        gone = delete(L).where(L.c.id == bindparam("q_lease")).returning(L.c.team, L.c.kind, L.c.amount).cte("gone")
        self._release_one = (update(t).where(t.c.team == gone.c.team, t.c.kind == gone.c.kind)
                             .values(tokens=t.c.tokens - gone.c.amount))
        self._give_back = update(t).where(t.c.team == bindparam("q_team"), t.c.kind == bindparam("q_kind")).values(
            tokens=t.c.tokens - bindparam("q_amount"))
        self._held: set[str] = set()  # this process's leases, renewed by _renew_loop
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _now(self) -> Any:
        """The database's clock (one clock for every replica), as a column expression, epoch s."""
        return func.extract("epoch", func.clock_timestamp()) if self._pg else literal(time.time())

    def _lock_rows(self, conn: Connection, team: str, initial: dict[str, float]
                   ) -> tuple[dict[str, tuple[float, float]], float]:
        """{kind: (tokens, stamp)} of the team's rows for `initial`'s kinds, locked; and now."""
        kinds = sorted(initial)
        args = {"q_team": team, "q_kinds": kinds}
        # SQLite locks the file at its first write: write first there, so admissions queue.
        rows = conn.execute(self._lock_query, args).all() if self._pg else []
        if len(rows) < len(kinds):
            conn.execute(self._insert.values([{"team": team, "kind": k, "tokens": initial[k], "stamp": self._now()}
                                              for k in kinds]).on_conflict_do_nothing())
            rows = conn.execute(self._lock_query, args).all()
        return {r.kind: (r.tokens, r.stamp) for r in rows}, float(rows[0].now)

    def _lapsed(self, conn: Connection, team: str, kind: str, now: float) -> int:
        """Delete the team's leases of `kind` that lapsed; the amount they held."""
        gone = conn.execute(self._delete_lapsed, {"q_team": team, "q_kind": kind, "q_now": now}).scalars().all()
        return int(sum(gone))

    def _in_txn(self, fn: Callable[[Connection], Any]) -> Any:
        """`fn(conn)` in one transaction; once more on a fresh connection when the pooled one
        had been dropped (a database restart, an idle timeout). If the drop hid a commit, the
        first attempt's lease is not this process's to renew, so it lapses after lease_ttl_s."""
        for attempt in (0, 1):
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except sa_exc.DBAPIError as e:
                if attempt or not e.connection_invalidated:
                    raise
                log.info("quota database connection was dropped; retrying on a fresh one")

    def admit(self, team: str, wanted: list[BucketRequest], hold: Hold | None
              ) -> tuple[tuple[str, float] | None, Any]:
        spec = {r.kind: r for r in wanted}
        initial = {k: r.capacity for k, r in spec.items()} | ({hold.kind: 0.0} if hold else {})
        refusal, lease = self._in_txn(lambda conn: self._admit(conn, team, spec, initial, wanted, hold))
        if lease:
            with self._lock:
                self._held.add(lease)
                if self._renewer is None:
                    self._renewer = threading.Thread(target=self._renew_loop, name="quota-leases", daemon=True)
                    self._renewer.start()
        return refusal, lease

    def _admit(self, conn: Connection, team: str, spec: dict[str, BucketRequest], initial: dict[str, float],
               wanted: list[BucketRequest], hold: Hold | None) -> tuple[tuple[str, float] | None, Any]:
        rows, now = self._lock_rows(conn, team, initial)
        tokens = {k: refilled(*rows[k], now, r.rate, r.capacity) for k, r in spec.items()}
        held = int(rows[hold.kind][0]) if hold else 0
        refusal = first_refusal(tokens, wanted, hold, held)
        if refusal is not None and hold is not None and hold.refusal(held) and (freed := self._lapsed(
                conn, team, hold.kind, now)):
            held -= freed
            refusal = first_refusal(tokens, wanted, hold, held)
        if refusal is not None:
            if hold is not None and held != rows[hold.kind][0]:  # keep what the lapsed leases freed
                conn.execute(self._write_rows, [{"b_team": team, "b_kind": hold.kind, "b_tokens": held,
                                                 "b_stamp": rows[hold.kind][1]}])
            return refusal, None
        values = [{"b_team": team, "b_kind": k, "b_tokens": tokens[k] - spec[k].n,
                   "b_stamp": max(now, rows[k][1])} for k in spec]
        if hold is not None:
            values.append({"b_team": team, "b_kind": hold.kind, "b_tokens": held + hold.amount,
                           "b_stamp": rows[hold.kind][1]})
        conn.execute(self._write_rows, values)
        lease = None
        if hold is not None:
            lease = uuid.uuid4().hex
            conn.execute(self._insert_lease, {"id": lease, "team": team, "kind": hold.kind, "amount": hold.amount,
                                              "replica": self.replica, "expires_at": now + self.lease_ttl_s})
        return None, lease

    def release(self, team: str, hold: Hold, lease: Any) -> None:
        with self._lock:
            self._held.discard(lease)

        def give_back(conn: Connection) -> None:
            # Only a lease still there gives its amount back (one that lapsed was already taken off).
            if self._pg:
                conn.execute(self._release_one, {"q_lease": lease})
                return
            gone = conn.execute(self._delete_lease, {"q_lease": lease}).scalars().all()
            if gone:
                conn.execute(self._give_back, {"q_team": team, "q_kind": hold.kind, "q_amount": gone[0]})

        try:
            self._in_txn(give_back)
        except Exception:  # the answer is computed; the slot lapses within lease_ttl_s instead
            log.warning("could not release quota lease %s; it lapses in %.0f s", lease, self.lease_ttl_s,
                        exc_info=True)

    def renew(self) -> None:
        """Extend this process's leases by `lease_ttl_s` from now."""
        with self._lock:
            ids = list(self._held)
        if ids:
            L = self.leases
            self._in_txn(lambda conn: conn.execute(update(L).where(L.c.id.in_(ids))
                                                   .values(expires_at=self._now() + self.lease_ttl_s)))

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_ttl_s / 3):
            try:
                self.renew()
            except Exception:
                log.warning("could not renew quota leases (they lapse after %.0f s)", self.lease_ttl_s,
                            exc_info=True)

    def charge(self, team: str, r: BucketRequest, amount: float) -> None:
        # Retried like an admission (without a checkout ping, a dropped connection would fail
        # a request already scored and stored); a drop that hid the commit charges it twice.
        def debit(conn: Connection) -> None:
            rows, now = self._lock_rows(conn, team, {r.kind: r.capacity})
            tokens = refilled(*rows[r.kind], now, r.rate, r.capacity) - amount
            conn.execute(self._write_rows, [{"b_team": team, "b_kind": r.kind, "b_tokens": tokens,
                                             "b_stamp": max(now, rows[r.kind][1])}])

        self._in_txn(debit)

    def close(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        if self._own_engine:
            self.engine.dispose()


class QuotaManager:
    """Admission for every team, against `backend` (MemoryBackend by default, or a
    DatabaseBackend shared by the replicas). The `*_async` forms run a blocking backend off
    the event loop."""

    def __init__(self, config: QuotaConfig, backend: QuotaBackend | None = None):
        self.config = config
        self.backend: QuotaBackend = backend or MemoryBackend()
        self._lock = threading.Lock()
        self.rejections: dict[str, int] = {}
        self._refused_until: dict[str, tuple[float, str]] = {}  # team -> (monotonic deadline, why)
        self._gate: FairGate | None = None  # made at first use: a blocking backend's calls
        self._threads: cf.ThreadPoolExecutor | None = None
        self._per_team: dict[str, asyncio.Semaphore] = {}

    def _reject(self, team: str, message: str, retry_after_s: float) -> QuotaExceededError:
        with self._lock:
            self.rejections[team] = self.rejections.get(team, 0) + 1
            self._refused_until[team] = (time.monotonic() + retry_after_s, message)
        return QuotaExceededError(f"team {team}: {message}", retry_after_s)

    def precheck(self, team: str) -> None:
        """Before any work on a request: refuse it at once (QuotaExceededError) while the
        team's last refusal's retry hint has not passed, so an over-quota team's requests
        cost no validation. An O(1) look at this replica's memory; admission still decides."""
        with self._lock:
            hit = self._refused_until.get(team)
            if hit is None:
                return
            wait_s = hit[0] - time.monotonic()
            if wait_s <= 0:
                del self._refused_until[team]
                return
            self.rejections[team] = self.rejections.get(team, 0) + 1
        raise QuotaExceededError(f"team {team}: {hit[1]}", wait_s)

    @staticmethod
    def _sandbox(q: TeamQuota) -> BucketRequest:
        return BucketRequest("sandbox", f"{q.sandbox_seconds_per_min:g} sandbox s/min",
                             q.sandbox_seconds_per_min / 60, q.sandbox_seconds_per_min, debt_only=True)

    @contextlib.contextmanager
    def _held(self, team: str, wanted: list[BucketRequest], hold: Hold | None) -> Iterator[None]:
        if not wanted and hold is None:
            yield
            return
        refusal, lease = self.backend.admit(team, wanted, hold)
        if refusal is not None:
            raise self._reject(team, *refusal)
        try:
            yield
        finally:
            if hold is not None:
                self.backend.release(team, hold, lease)

    def admit(self, team: str, samples: int, judge_requests: int = 0,
              sandbox_components: int = 0, components: int = 0,
              stored_bytes: int = 0) -> contextlib.AbstractContextManager[None]:
        """Admit a batch of samples (raises QuotaExceededError) and hold their in-flight slots."""
        q = self.config.for_team(team)
        wanted: list[BucketRequest] = []
        if q.components_per_s and components:
            wanted.append(BucketRequest("components", f"{q.components_per_s:g} components/s", q.components_per_s,
                                        q.components_burst or max(1.0, 2 * q.components_per_s), components))
        if q.stored_bytes_per_min and stored_bytes:
            wanted.append(BucketRequest("stored_bytes", f"{q.stored_bytes_per_min:g} stored bytes/min",
                                        q.stored_bytes_per_min / 60, q.stored_bytes_burst or q.stored_bytes_per_min,
                                        stored_bytes))
        if q.sandbox_seconds_per_min and sandbox_components:
            wanted.append(self._sandbox(q))  # charged after the run; admission only needs the debt paid back
        if q.samples_per_s:
            wanted.append(BucketRequest("samples", f"{q.samples_per_s:g} samples/s", q.samples_per_s,
                                        q.samples_burst or max(1.0, 2 * q.samples_per_s), samples))
        if q.judge_requests_per_min and judge_requests:
            wanted.append(BucketRequest("judge", f"{q.judge_requests_per_min:g} judge requests/min",
                                        q.judge_requests_per_min / 60, q.judge_requests_per_min, judge_requests))
        hold = (Hold("inflight", samples, q.max_inflight_samples, "samples already in flight", 0.05)
                if q.max_inflight_samples else None)
        return self._held(team, wanted, hold)

    def bookkeeping(self, team: str) -> contextlib.AbstractContextManager[None]:
        """Admit one run bookkeeping call: StartRun, LogStep, FinishRun (raises QuotaExceededError)."""
        q = self.config.for_team(team)
        wanted = [BucketRequest("bookkeeping", f"{q.bookkeeping_calls_per_s:g} run bookkeeping calls/s",
                                q.bookkeeping_calls_per_s, q.bookkeeping_burst or max(1.0, 10 * q.bookkeeping_calls_per_s),
                                1)] if q.bookkeeping_calls_per_s else []
        return self._held(team, wanted, None)

    def stream(self, team: str) -> contextlib.AbstractContextManager[None]:
        """Hold one of the team's concurrent-stream slots (raises QuotaExceededError)."""
        q = self.config.for_team(team)
        hold = Hold("streams", 1, q.max_streams, "streams open", 1.0, "; close one") if q.max_streams else None
        return self._held(team, [], hold)

    def charge_sandbox(self, team: str, seconds: float) -> None:
        q = self.config.for_team(team)
        if q.sandbox_seconds_per_min and seconds > 0:
            self.backend.charge(team, self._sandbox(q), seconds)

    # -- the same, for the event loop -------------------------------------------------
    async def _call(self, team: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a backend call; a blocking backend's on its own threads, in turns by team, at
        most two of a team's at once (its admissions wait on the same locked rows anyway),
        so one team's pile of admissions never holds the threads another team needs."""
        if not self.backend.blocking:
            return fn(*args)
        if self._gate is None:
            self._gate = FairGate(8)
            self._threads = cf.ThreadPoolExecutor(8, thread_name_prefix="quota-db")
        per_team = self._per_team.setdefault(team, asyncio.Semaphore(2))
        async with per_team, self._gate.slot(team):
            return await asyncio.get_running_loop().run_in_executor(self._threads, functools.partial(fn, *args))

    @contextlib.asynccontextmanager
    async def _async(self, team: str, cm: contextlib.AbstractContextManager[None]) -> AsyncIterator[None]:
        await self._call(team, cm.__enter__)
        try:
            yield
        finally:
            await self._call(team, cm.__exit__, None, None, None)

    def admit_async(self, team: str, samples: int, judge_requests: int = 0, sandbox_components: int = 0,
                    components: int = 0, stored_bytes: int = 0) -> contextlib.AbstractAsyncContextManager[None]:
        return self._async(team, self.admit(team, samples, judge_requests, sandbox_components, components,
                                            stored_bytes))

    def bookkeeping_async(self, team: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._async(team, self.bookkeeping(team))

    def stream_async(self, team: str) -> contextlib.AbstractAsyncContextManager[None]:
        return self._async(team, self.stream(team))

    async def charge_sandbox_async(self, team: str, seconds: float) -> None:
        await self._call(team, self.charge_sandbox, team, seconds)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        self.backend.close()
