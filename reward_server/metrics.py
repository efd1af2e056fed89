"""Prometheus metrics of one server process, served at `/metrics` on `metrics_port`.

Counted as things happen (hooks):
    reward_component_results_total{verifier,version,status,team}   one per verifier result
    reward_samples_total{status,team}                             one per scored sample
    reward_verifier_latency_seconds{verifier,version}             histogram, cache hits excluded
    reward_cache_lookups_total{verifier,result="hit"|"miss"}     result cache (when enabled)
    reward_sandbox_runs_total{backend,outcome}                    each sandboxed program run
    reward_sandbox_run_seconds{backend}                           histogram of their wall time
    reward_http_requests_total{route,code}                        the HTTP/JSON face
Read from the live objects at each scrape (no hook, never stale):
    reward_pool_queue_depth{pool}            calls waiting for the worker processes or a thread pool
    reward_pool_waiting_calls{team}          of those for the worker processes, per team (fairness)
    reward_store_rows_pending                score rows queued for the writer, not yet committed
    reward_store_writer_lag_seconds          age of the oldest uncommitted row (0 when none)
    reward_store_rows_written_total, reward_store_write_errors_total
    reward_quota_refusals_total{team}        admissions refused by a quota (a throttled stream
                                             counts each wait)

Every server owns its own `CollectorRegistry` (several servers may share a test process).
Label values are bounded: verifier names/versions come from the registry, teams from the
key store, statuses and outcomes from fixed sets.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from verifiers.sandbox.base import Limits, RunResult, SandboxBackend, SandboxFile

if TYPE_CHECKING:
    from .quotas import QuotaManager
    from .scoring import SampleOutcome, Scorer
    from .store import ScoreStore

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def sandbox_outcome(r: RunResult) -> str:
    """One word for how a sandboxed run ended: ok, exit_nonzero, timeout, cpu_limit,
    memory_limit, output_limit, signal."""
    if r.timed_out:
        return "timeout"
    if r.cpu_limit_hit:
        return "cpu_limit"
    if r.memory_limit_hit:
        return "memory_limit"
    if r.output_limit_hit:
        return "output_limit"
    if r.signal is not None:
        return "signal"
    return "ok" if r.exit_code == 0 else "exit_nonzero"


class _LiveState(Collector):
    """Gauges and counters read from the scorer, the store and the quotas at scrape time."""

    def __init__(self, scorer: "Scorer", store: "ScoreStore", quotas: "QuotaManager"):
        self.scorer, self.store, self.quotas = scorer, store, quotas

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily("reward_pool_queue_depth", "Calls waiting for a verifier pool: 'process' is the "
                                  "worker processes (isolated verifiers), the others are thread pools", labels=["pool"])
        gate = self.scorer.pool_gate
        waiting = gate.waiting
        depth.add_metric(["process"], sum(waiting.values()))
        for name, ex in self.scorer.threads.items():
            depth.add_metric([name], ex._work_queue.qsize())  # the executor's own queue: no public size
        yield depth
        by_team = GaugeMetricFamily("reward_pool_waiting_calls", "Calls waiting for the worker processes, per team",
                                    labels=["team"])
        for team, n in waiting.items():
            by_team.add_metric([team], n)
        yield by_team
        busy = GaugeMetricFamily("reward_pool_active_calls", "Calls admitted to the worker processes")
        busy.add_metric([], gate.active)
        yield busy
        yield GaugeMetricFamily("reward_store_rows_pending", "Score rows queued for the writer, not yet committed",
                                value=self.store.pending)
        yield GaugeMetricFamily("reward_store_writer_lag_seconds", "Age of the oldest score row not yet committed "
                                "(0 when the writer is idle)", value=self.store.writer_lag_s)
        yield CounterMetricFamily("reward_store_rows_written", "Score rows committed", value=self.store.rows_written)
        yield CounterMetricFamily("reward_store_write_errors", "Score rows the database refused after retries",
                                  value=self.store.write_errors)
        refused = CounterMetricFamily("reward_quota_refusals", "Admissions refused by a team's quota",
                                      labels=["team"])
        for team, n in dict(self.quotas.rejections).items():
            refused.add_metric([team], n)
        yield refused


class ServiceMetrics:
    """The metrics of one server. `scored` is called by the servicer after each batch;
    `count_sandbox` wraps the process's sandbox backend; `http_request` by the HTTP face."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.results = Counter("reward_component_results", "Verifier results, one per component of a scored sample",
                               ["verifier", "version", "status", "team"], registry=r)
        self.samples = Counter("reward_samples", "Scored samples by total status", ["status", "team"], registry=r)
        self.latency = Histogram("reward_verifier_latency_seconds", "Verifier wall time per call (cache hits "
                                 "excluded)", ["verifier", "version"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.cache = Counter("reward_cache_lookups", "Result cache lookups", ["verifier", "result"], registry=r)
        self.sandbox_runs = Counter("reward_sandbox_runs", "Sandboxed program runs by how they ended (outcome: ok, "
                                    "exit_nonzero, timeout, cpu_limit, memory_limit, output_limit, signal, "
                                    "sandbox_error)", ["backend", "outcome"], registry=r)
        self.sandbox_seconds = Histogram("reward_sandbox_run_seconds", "Wall time of sandboxed runs", ["backend"],
                                         buckets=LATENCY_BUCKETS_S, registry=r)
        self.http = Counter("reward_http_requests", "Requests to the HTTP/JSON face", ["route", "code"], registry=r)

    @classmethod
    def for_server(cls, config: Any, scorer: "Scorer", store: "ScoreStore", servicer: Any) -> "ServiceMetrics":
        """The metrics of a server being built: its servicer reports to them, its live parts
        are read at each scrape, and the process's sandbox backend is counted."""
        from verifiers.sandbox import default_backend, set_default_backend

        m = cls()
        m.registry.register(_LiveState(scorer, store, servicer.quotas))
        servicer.metrics = m
        set_default_backend(m.count_sandbox(default_backend()))
        return m

    def scored(self, outcomes: Sequence["SampleOutcome"], team: str, cache_enabled: bool) -> None:
        for o in outcomes:
            self.samples.labels(o.status.value, team).inc()
            for co in o.components:
                c = co.component
                self.results.labels(c.name, c.version, co.result.status.value, team).inc()
                if cache_enabled:
                    self.cache.labels(c.name, "hit" if co.cached else "miss").inc()
                if not co.cached:
                    self.latency.labels(c.name, c.version).observe(co.latency_ms / 1000)

    def http_request(self, route: str, code: int) -> None:
        self.http.labels(route, str(code)).inc()

    def count_sandbox(self, backend: SandboxBackend) -> SandboxBackend:
        """`backend`, counting each run's outcome and wall time (idempotent)."""
        if isinstance(backend, CountingBackend):
            backend = backend.inner
        return CountingBackend(backend, self)


class CountingBackend(SandboxBackend):
    """A sandbox backend that delegates every call to `inner` and counts its runs."""

    def __init__(self, inner: SandboxBackend, metrics: ServiceMetrics):
        self.inner, self.metrics = inner, metrics
        self.name = inner.name

    def __getattr__(self, attr: str) -> Any:  # backend-specific extras (warm, missing_executables, ...)
        if attr == "inner":  # not yet set (copy, unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def available(self) -> tuple[bool, str]:
        return self.inner.available()

    def _check(self) -> tuple[bool, str]:
        return self.inner._check()

    def label(self) -> str:
        return self.inner.label()

    def limits_in_force(self) -> dict[str, str]:
        return self.inner.limits_in_force()

    def _counted(self, run: Any) -> RunResult:
        t0 = time.perf_counter()
        try:
            result = run()
        except Exception:
            self.metrics.sandbox_runs.labels(self.name, "sandbox_error").inc()
            raise
        self.metrics.sandbox_runs.labels(self.name, sandbox_outcome(result)).inc()
        self.metrics.sandbox_seconds.labels(self.name).observe(time.perf_counter() - t0)
        return result

    def run(self, files: Mapping[str, bytes | SandboxFile], cmd: Sequence[str], stdin: bytes = b"",
            limits: Limits = Limits(), *, env: Mapping[str, str] | None = None,
            collect: Sequence[str] = ()) -> RunResult:
        return self._counted(lambda: self.inner.run(files, cmd, stdin, limits, env=env, collect=collect))

    def run_python(self, files: Mapping[str, bytes | SandboxFile], script: str, stdin: bytes = b"",
                   limits: Limits = Limits(), *, env: Mapping[str, str] | None = None,
                   interpreter: str = "/usr/bin/python3") -> RunResult:
        return self._counted(lambda: self.inner.run_python(files, script, stdin, limits, env=env,
                                                           interpreter=interpreter))


class NoMetrics:
    """Stands in for ServiceMetrics when `metrics_port` is 0."""

    def scored(self, outcomes: Iterable[Any], team: str, cache_enabled: bool) -> None:
        pass

    def http_request(self, route: str, code: int) -> None:
        pass


NO_METRICS = NoMetrics()
