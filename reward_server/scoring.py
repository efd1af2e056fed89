"""Scoring: validate a reward spec, dispatch each component to the worker pool (isolated
verifiers) or a thread pool (the others), and combine the results.

Combination rule: reward = Σ weight_i · reward_i over the sample's components.
- The sample's status is OK only when every counted component (weight ≠ 0, or a gate) is
  OK; otherwise it takes the most severe component status (ERROR > TIMEOUT > ABSTAIN) and
  carries no reward. Components with weight 0 that are not gates are logged only.
- Gates: when any gate component is OK but below its `gate_min` (default 1.0), the total
  is 0 ("format must be right before correctness counts").

Routing: a spec's `routes` map a task type (the sample's `metadata[task_key]`) to extra
components; "*" is the fallback.

Cache (per replica, per team): identical (team, verifier, version, params hash, completion,
reference, and the prompt for verifiers that read it) within
`cache_ttl_s` returns the stored result (OK and ABSTAIN only: a TIMEOUT or ERROR is
worth retrying), marked `cached`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cachetools import TTLCache

from verifiers import registry
from verifiers.core import Params, Status, VerifierResult, params_hash
from verifiers.errors import InvalidParamsError, InvalidReferenceError, VerifierError
from verifiers.pool import BatchCall, VerifierPool, run_batch, run_inline
from verifiers.sandbox.admission import tenant as sandbox_tenant

from .errors import InvalidRequestError
from .fairness import FairGate

_SEVERITY = {Status.ERROR: 3, Status.TIMEOUT: 2, Status.ABSTAIN: 1, Status.OK: 0}
FALLBACK_ROUTE = "*"


@dataclass(frozen=True)
class Component:
    """One validated component of a reward spec."""

    name: str
    version: str
    weight: float
    params: Params
    params_json: dict[str, Any]
    params_hash: str
    isolated: bool
    thread_pool: str
    timeout_s: float
    gate: bool = False
    gate_min: float = 1.0
    uses_prompt: bool = False

    @property
    def counted(self) -> bool:
        return self.weight != 0 or self.gate


@dataclass(frozen=True)
class Spec:
    """A validated reward spec: common components, routes by task, and where it came from."""

    components: tuple[Component, ...] = ()
    routes: dict[str, tuple[Component, ...]] = field(default_factory=dict)
    task_key: str = "task"
    name: str = ""
    version: int = 0

    def for_sample(self, metadata: dict[str, Any], where: str) -> tuple[Component, ...]:
        if not self.routes:
            return self.components
        task = metadata.get(self.task_key)
        route = self.routes.get(str(task)) if task is not None else None
        if route is None:
            route = self.routes.get(FALLBACK_ROUTE)
        if route is None:
            raise InvalidRequestError(
                f"{where}.metadata.{self.task_key}: {task!r} has no route in the spec "
                f"(routes: {', '.join(sorted(self.routes))}); add a '*' route or set the task")
        return self.components + route


@dataclass(frozen=True)
class SampleInput:
    index: int
    id: str
    prompt: str
    completion: str
    reference: Any
    components: tuple[Component, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    spec_name: str = ""
    spec_version: int = 0


@dataclass(frozen=True)
class ComponentOutcome:
    component: Component
    result: VerifierResult
    latency_ms: float
    worker: str
    cached: bool = False


@dataclass(frozen=True)
class SampleOutcome:
    sample: SampleInput
    status: Status
    reward: float | None
    reason: str
    components: tuple[ComponentOutcome, ...]
    latency_ms: float


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def reference_text(reference: Any) -> str:
    return reference if isinstance(reference, str) else json.dumps(reference, sort_keys=True, default=str)


MAX_ABS_WEIGHT = 1e6  # a component's weight; with at most a few dozen components the total stays finite


def build_component(raw: dict[str, Any], where: str, timeout_override_s: float | None) -> Component:
    """Validate one raw component `{name, version?, weight?, params?, gate?, gate_min?}`.

    Raises UnknownVerifierError (NOT_FOUND) or InvalidRequestError naming `where`.
    """
    name = raw.get("name") or ""
    if not name:
        raise InvalidRequestError(f"{where}.name: a verifier name is required; known: {', '.join(registry.known())}")
    cls = registry.get(name, raw.get("version") or None)
    try:
        params = registry.parse_params(cls, raw.get("params"))
    except InvalidParamsError as e:
        raise InvalidRequestError(f"{where}.{e}") from None
    weight = float(raw.get("weight", 1.0))
    # Bounded, not only finite: two weights of 1e308 sum to an infinite reward reported as OK.
    if not math.isfinite(weight) or abs(weight) > MAX_ABS_WEIGHT:
        raise InvalidRequestError(f"{where}.weight: must be a finite number within ±{MAX_ABS_WEIGHT:g}")
    gate_min = raw.get("gate_min")
    gate_min = 1.0 if gate_min is None else float(gate_min)
    if not math.isfinite(gate_min):
        raise InvalidRequestError(f"{where}.gate_min: must be a finite number")
    dumped = params.model_dump(mode="json")
    return Component(name=cls.name, version=cls.version, weight=weight, params=params, params_json=dumped,
                     params_hash=params_hash(dumped), isolated=cls.isolated, thread_pool=cls.thread_pool,
                     timeout_s=timeout_override_s or cls.timeout_s, gate=bool(raw.get("gate", False)),
                     gate_min=gate_min, uses_prompt=cls.uses_prompt)


def check_sample(sample: SampleInput, where: str) -> None:
    """Up-front checks that need the sample: the spec is non-empty and references fit."""
    if not sample.components:
        raise InvalidRequestError(f"{where}.spec: no reward spec (give the sample or the request a spec with "
                                  f"at least one component)")
    for c in sample.components:
        try:
            registry.get(c.name, c.version).check_reference(sample.reference)
        except InvalidReferenceError as e:
            raise InvalidRequestError(f"{where}.reference: {e}") from None


def combine(sample: SampleInput, outcomes: list[ComponentOutcome], latency_ms: float) -> SampleOutcome:
    """The sample's status and total reward from its components' outcomes (rule: module doc)."""
    counted = [o for o in outcomes if o.component.counted]
    failed = [o for o in counted if o.result.status is not Status.OK]
    if failed:
        worst = max(failed, key=lambda o: _SEVERITY[o.result.status])
        reason = "; ".join(f"{o.component.name}: {o.result.status.value}: {o.result.reason}" for o in failed)
        return SampleOutcome(sample, worst.result.status, None, reason, tuple(outcomes), latency_ms)
    closed = [o for o in counted if o.component.gate and (o.result.reward or 0.0) < o.component.gate_min]
    if closed:
        reason = "; ".join(f"gate {o.component.name}={o.result.reward:g} < {o.component.gate_min:g}: "
                           f"{o.result.reason}" for o in closed)
        return SampleOutcome(sample, Status.OK, 0.0, reason, tuple(outcomes), latency_ms)
    reward = sum(o.component.weight * (o.result.reward or 0.0) for o in counted)
    reason = "; ".join(f"{o.component.name}={o.result.reward:g}×{o.component.weight:g}" for o in counted)
    return SampleOutcome(sample, Status.OK, reward, reason, tuple(outcomes), latency_ms)


def _failed(e: Exception) -> VerifierResult:
    """The ERROR result of a verifier call that raised `e`."""
    if isinstance(e, InvalidReferenceError):
        return VerifierResult.error(f"invalid reference: {e}")
    if isinstance(e, VerifierError):  # validated up front; only a race with a registry change lands here
        return VerifierResult.error(str(e))
    return VerifierResult.error(f"{type(e).__name__}: {e}")


class ResultCache:
    """Thread-safe TTL cache of verifier results; counts hits and misses."""

    def __init__(self, ttl_s: float, max_entries: int):
        self.enabled = ttl_s > 0 and max_entries > 0
        self._cache: TTLCache = TTLCache(maxsize=max(1, max_entries), ttl=max(ttl_s, 1e-9))
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(c: Component, sample: SampleInput, team: str) -> tuple[str, ...]:
        # The team is part of the key: a hit is reported (`cached`), so a shared entry would
        # tell one team that another scored the same text.
        ref = "" if sample.reference is None else reference_text(sample.reference)
        key = (team, c.name, c.version, c.params_hash, sha256(sample.completion), sha256(ref))
        return key + (sha256(sample.prompt),) if c.uses_prompt else key

    def get(self, key: tuple[str, ...]) -> VerifierResult | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                self.misses += 1
            else:
                self.hits += 1
            return hit

    def put(self, key: tuple[str, ...], result: VerifierResult) -> None:
        if result.status in (Status.OK, Status.ABSTAIN):
            with self._lock:
                self._cache[key] = result

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class Scorer:
    """Scores samples concurrently; owns the worker pool, the thread pools and the cache."""

    def __init__(self, workers: int, memory_limit_bytes: int | None, thread_pools: dict[str, int] | None = None,
                 cache_ttl_s: float = 0.0, cache_max_entries: int = 100_000):
        self.pool = VerifierPool(workers=workers, memory_limit_bytes=memory_limit_bytes)
        # One thread pool per kind of waiting (inline checks, sandboxed programs, remote
        # judges, local models), so that a queue of slow work of one kind never delays another.
        sizes = {"inline": 4, "sandbox": 2, "judge": 64, "model": 64, **(thread_pools or {})}
        # Teams take turns at the sandbox's threads, one team holding at most the configured
        # number (a sleeping program holds its thread for its wall-clock backstop): a
        # quarter more threads are there for the other teams' calls. The sandbox itself
        # admits runs in turns per team too (verifiers.sandbox.tenant).
        n = sizes["sandbox"]
        sizes["sandbox"] = n + max(1, n // 4)
        self.sandbox_gate = FairGate(sizes["sandbox"], per_team=n)
        self.threads = {name: cf.ThreadPoolExecutor(n, thread_name_prefix=f"{name}-verifier")
                        for name, n in sizes.items()}
        self.cache = ResultCache(cache_ttl_s, cache_max_entries)
        # Teams take turns at the worker pool (FIFO inside it would let one team's backlog
        # delay everyone); four calls per worker keep the workers fed between turns.
        self.pool_gate = FairGate(4 * workers)
        # Bulk inline checks sent to the workers (see OFFLOAD_INLINE_ABOVE): at most one batch
        # per two workers at once, so they take at most about the one core they took on the
        # GIL-bound inline threads, and another team's verifier call waits for one batch (a
        # few ms) at most, never for a queue of them.
        self.offload_gate = FairGate(max(1, workers // 2))
        # The same at each thread pool: a team's thousands of queued inline checks (or sandboxed
        # programs, or judge calls) never sit ahead of another team's next one.
        self.thread_gates = {name: FairGate(n) for name, n in sizes.items()}
        self._pid = os.getpid()
        # Inline batches sent to the threads, and the parameter sets they validated (event loop only).
        self.inline_batches = self.params_parsed = 0

    def warm_up(self) -> None:
        self.pool.warm_up()

    def _is_inline(self, c: Component) -> bool:
        """Runs on the "inline" threads (cheap checks such as format or length)."""
        return not c.isolated and c.thread_pool != "sandbox" and (c.thread_pool == "inline"
                                                                    or c.thread_pool not in self.threads)

    async def _run(self, sample: SampleInput, c: Component, team: str) -> tuple[VerifierResult, int]:
        if c.isolated:
            async with self.pool_gate.slot(team):
                return await asyncio.wrap_future(self.pool.submit(
                    c.name, c.version, sample.completion, sample.reference, c.params_json, c.timeout_s,
                    sample.prompt))
        if c.thread_pool == "sandbox":  # its own gate: a team holds at most the configured share
            async with self.sandbox_gate.slot(team):
                return await asyncio.wrap_future(
                    self.threads["sandbox"].submit(self._in_sandbox_turn, sample, c, team))
        pool = c.thread_pool if c.thread_pool in self.threads else "inline"
        async with self.thread_gates[pool].slot(team):
            return await asyncio.wrap_future(self.threads[pool].submit(
                lambda: (run_inline(c.name, c.version, sample.completion, sample.reference, c.params_json,
                                    sample.prompt), self._pid)))

    def _in_sandbox_turn(self, sample: SampleInput, c: Component, team: str) -> tuple[VerifierResult, int]:
        with sandbox_tenant(team):
            return run_inline(c.name, c.version, sample.completion, sample.reference, c.params_json,
                              sample.prompt), self._pid

    async def _score_component(self, sample: SampleInput, c: Component, use_cache: bool,
                               team: str) -> ComponentOutcome:
        t0 = time.perf_counter()
        key = ResultCache.key(c, sample, team) if use_cache and self.cache.enabled else None
        if key is not None and (hit := self.cache.get(key)) is not None:
            return ComponentOutcome(c, hit, (time.perf_counter() - t0) * 1000, "cache", cached=True)
        try:
            result, pid = await self._run(sample, c, team)
            worker = f"{'pool' if c.isolated else c.thread_pool}:{pid}" if pid > 0 else "pool:killed"
        except Exception as e:
            result, worker = _failed(e), "-"
        if key is not None:
            self.cache.put(key, result)
        return ComponentOutcome(c, result, (time.perf_counter() - t0) * 1000, worker)

    async def _inline_calls(self, samples: list[SampleInput], items: list[tuple[int, Component]], use_cache: bool,
                            team: str, t0: float, offload: bool) -> list[ComponentOutcome]:
        """Run the inline components `items` ((sample position, component)) as one call
        (`verifiers.pool.run_batch`): on an inline thread, or with `offload` in a worker
        process, so that a big batch's checks do not hold this process's GIL against the
        event loop. Latency is counted from `t0`, the unit's start. Outcomes in order."""
        out: list[ComponentOutcome | None] = [None] * len(items)
        keys = [ResultCache.key(c, samples[k], team) if use_cache and self.cache.enabled else None
                for k, c in items]
        todo = []
        for n, ((k, c), key) in enumerate(zip(items, keys)):
            if key is not None and (hit := self.cache.get(key)) is not None:
                out[n] = ComponentOutcome(c, hit, (time.perf_counter() - t0) * 1000, "cache", cached=True)
            else:
                todo.append(n)
        if not todo:  # all cached: still one turn of the event loop per unit, as a call would take
            await asyncio.sleep(0)
            return out  # type: ignore[return-value]
        calls: list[BatchCall] = [(c.name, c.version, s.completion, s.reference, c.params_json, s.prompt, c.params_hash)
                                  for c, s in ((items[n][1], samples[items[n][0]]) for n in todo)]
        try:
            if offload:
                async with self.offload_gate.slot(team), self.pool_gate.slot(team):
                    results, parsed, pid = await asyncio.wrap_future(self.pool.submit_batch(
                        calls, sum(items[n][1].timeout_s for n in todo)))
            else:
                async with self.thread_gates["inline"].slot(team):
                    results, parsed, pid = await asyncio.wrap_future(self.threads["inline"].submit(run_batch, calls))
        except Exception as e:  # the threads or the pool are shutting down
            results, parsed, pid = [_failed(e)] * len(todo), 0, 0
        self.inline_batches += 1
        self.params_parsed += parsed
        for n, value in zip(todo, results):
            c = items[n][1]
            if isinstance(value, VerifierError) or not pid:
                result, worker = (_failed(value) if isinstance(value, VerifierError) else value), "-"
            elif offload:
                result, worker = value, f"pool:{pid}" if pid > 0 else "pool:killed"
            else:
                result, worker = value, f"{c.thread_pool}:{pid}"
            if keys[n] is not None:
                self.cache.put(keys[n], result)
            out[n] = ComponentOutcome(c, result, (time.perf_counter() - t0) * 1000, worker)
        return out  # type: ignore[return-value]

    async def _score_unit(self, samples: list[SampleInput], use_cache: bool, team: str,
                          offload: bool = False) -> list[SampleOutcome]:
        """Score a few samples together: their inline components in one call to an inline
        thread (one turn at its gate, one wake-up of the event loop), every other component
        as its own call."""
        t0 = time.perf_counter()
        slots: list[list[ComponentOutcome | None]] = [[None] * len(s.components) for s in samples]
        inline = [(k, j) for k, s in enumerate(samples) for j, c in enumerate(s.components) if self._is_inline(c)]
        inline_set = set(inline)

        async def one(k: int, j: int) -> None:
            slots[k][j] = await self._score_component(samples[k], samples[k].components[j], use_cache, team)

        async def batch() -> None:
            items = [(k, samples[k].components[j]) for k, j in inline]
            for (k, j), o in zip(inline, await self._inline_calls(samples, items, use_cache, team, t0, offload)):
                slots[k][j] = o

        calls = [one(k, j) for k, s in enumerate(samples) for j in range(len(s.components))
                 if (k, j) not in inline_set]
        if inline:
            calls.append(batch())
        if len(calls) == 1:
            await calls[0]
        else:
            await asyncio.gather(*calls)
        return [combine(s, slots[k], (time.perf_counter() - t0) * 1000)  # type: ignore[arg-type]
                for k, s in enumerate(samples)]

    async def score(self, sample: SampleInput, use_cache: bool = True, team: str = "default") -> SampleOutcome:
        (outcome,) = await self._score_unit([sample], use_cache, team)
        return outcome

    SAMPLES_IN_FLIGHT = 128  # per call: enough to keep every pool busy
    # Inline verifications per call when samples have only inline components. Small enough
    # that one call of another team's bulk checks (on a thread or a worker) is a short wait:
    # at 64, team B's p99 under issue #17's 1,024 x 8 attack was 540-770 ms; at 16, 157-215 ms
    # (benchmarks/team_fairness.py, bound 244 ms), with the event loop's savings kept.
    INLINE_BATCH = 16
    # A call with more inline verifications than this runs them in the worker processes (in
    # turns by team at the pool) rather than on this process's threads: thousands of cheap
    # checks on threads would hold the GIL against the event loop that every team shares.
    OFFLOAD_INLINE_ABOVE = 256

    def units(self, samples: list[SampleInput]) -> list[list[int]]:
        """`samples`' positions in scoring units: runs of consecutive samples whose components
        are all inline, up to INLINE_BATCH components a unit; every other sample alone."""
        out: list[list[int]] = []
        run: list[int] = []
        size = 0
        for i, s in enumerate(samples):
            if not all(self._is_inline(c) for c in s.components):
                if run:
                    out.append(run)
                    run, size = [], 0
                out.append([i])
                continue
            if run and size + len(s.components) > self.INLINE_BATCH:
                out.append(run)
                run, size = [], 0
            run.append(i)
            size += len(s.components)
        if run:
            out.append(run)
        return out

    async def score_many(self, samples: list[SampleInput], use_cache: bool = True,
                         team: str = "default") -> list[SampleOutcome]:
        """Score `samples` concurrently (at most SAMPLES_IN_FLIGHT units at a time, so a batch of
        thousands does not flood the event loop with tasks ahead of other teams' calls);
        `team` takes its turn at the worker pool and the thread pools. Cheap inline checks go
        in batches (`units`): one call per INLINE_BATCH verifications, not one each, so a large batch
        of them costs the event loop (which every team's calls share) a few wake-ups rather
        than thousands; above OFFLOAD_INLINE_ABOVE of them those calls go to the worker
        processes instead of the inline threads. Results in order."""
        out: list[SampleOutcome | None] = [None] * len(samples)
        units = self.units(samples)
        todo = iter(units)
        offload = sum(self._is_inline(c) for s in samples for c in s.components) > self.OFFLOAD_INLINE_ABOVE

        async def lane() -> None:
            for unit in todo:
                for i, o in zip(unit, await self._score_unit([samples[i] for i in unit], use_cache, team, offload)):
                    out[i] = o

        await asyncio.gather(*(lane() for _ in range(min(len(units), self.SAMPLES_IN_FLIGHT))))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        for ex in self.threads.values():
            ex.shutdown(wait=True)
        self.pool.close()


__all__ = ["Component", "Spec", "SampleInput", "SampleOutcome", "ComponentOutcome", "Scorer", "ResultCache",
           "build_component", "check_sample", "combine"]
