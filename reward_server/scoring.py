"""Scoring: validate a reward spec, dispatch each component to the worker pool (isolated
verifiers) or the inline thread pool (cheap ones), and combine the results.

Combination rule: reward = Σ weight_i · reward_i over the spec's components. The sample's
status is OK only when every component with a non-zero weight is OK; otherwise it takes
the most severe component status (ERROR > TIMEOUT > ABSTAIN) and carries no reward.
Components with weight 0 are logged only: they are scored and stored, never counted.
"""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from verifiers import registry
from verifiers.core import Params, Status, VerifierResult, params_hash
from verifiers.errors import InvalidParamsError, InvalidReferenceError, VerifierError
from verifiers.pool import VerifierPool, run_inline

from .errors import InvalidRequestError

_SEVERITY = {Status.ERROR: 3, Status.TIMEOUT: 2, Status.ABSTAIN: 1, Status.OK: 0}


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


@dataclass(frozen=True)
class SampleInput:
    index: int
    id: str
    prompt: str
    completion: str
    reference: Any
    components: tuple[Component, ...]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ComponentOutcome:
    component: Component
    result: VerifierResult
    latency_ms: float
    worker: str


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


def build_component(raw: dict[str, Any], where: str, timeout_override_s: float | None) -> Component:
    """Validate one raw component `{name, version?, weight?, params?}`.

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
    if weight != weight or weight in (float("inf"), float("-inf")):
        raise InvalidRequestError(f"{where}.weight: must be a finite number")
    dumped = params.model_dump(mode="json")
    return Component(name=cls.name, version=cls.version, weight=weight, params=params, params_json=dumped,
                     params_hash=params_hash(dumped), isolated=cls.isolated, thread_pool=cls.thread_pool,
                     timeout_s=timeout_override_s or cls.timeout_s)


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
    counted = [o for o in outcomes if o.component.weight != 0]
    failed = [o for o in counted if o.result.status is not Status.OK]
    if failed:
        worst = max(failed, key=lambda o: _SEVERITY[o.result.status])
        reason = "; ".join(f"{o.component.name}: {o.result.status.value}: {o.result.reason}" for o in failed)
        return SampleOutcome(sample, worst.result.status, None, reason, tuple(outcomes), latency_ms)
    reward = sum(o.component.weight * (o.result.reward or 0.0) for o in counted)
    reason = "; ".join(f"{o.component.name}={o.result.reward:g}×{o.component.weight:g}" for o in counted)
    return SampleOutcome(sample, Status.OK, reward, reason, tuple(outcomes), latency_ms)


class Scorer:
    """Scores samples concurrently; owns the worker pool and the inline thread pool."""

    def __init__(self, workers: int, memory_limit_bytes: int | None, thread_pools: dict[str, int] | None = None):
        self.pool = VerifierPool(workers=workers, memory_limit_bytes=memory_limit_bytes)
        # One thread pool per kind of waiting (inline checks, sandboxed programs, remote
        # judges, local models), so that a queue of slow work of one kind never delays another.
        sizes = {"inline": 8, "sandbox": 2, "judge": 64, "model": 64, **(thread_pools or {})}
        self.threads = {name: cf.ThreadPoolExecutor(n, thread_name_prefix=f"{name}-verifier")
                        for name, n in sizes.items()}
        self._pid = os.getpid()

    def warm_up(self) -> None:
        self.pool.warm_up()

    async def _score_component(self, sample: SampleInput, c: Component) -> ComponentOutcome:
        t0 = time.perf_counter()
        if c.isolated:
            fut = self.pool.submit(c.name, c.version, sample.completion, sample.reference, c.params_json, c.timeout_s)
        else:
            fut = self.threads.get(c.thread_pool, self.threads["inline"]).submit(
                lambda: (run_inline(c.name, c.version, sample.completion, sample.reference, c.params_json), self._pid))
        try:
            result, pid = await asyncio.wrap_future(fut)
            worker = f"{'pool' if c.isolated else c.thread_pool}:{pid}" if pid > 0 else "pool:killed"
        except InvalidReferenceError as e:
            result, worker = VerifierResult.error(f"invalid reference: {e}"), "-"
        except VerifierError as e:  # validated up front; only a race with a registry change lands here
            result, worker = VerifierResult.error(str(e)), "-"
        except Exception as e:
            result, worker = VerifierResult.error(f"{type(e).__name__}: {e}"), "-"
        return ComponentOutcome(c, result, (time.perf_counter() - t0) * 1000, worker)

    async def score(self, sample: SampleInput) -> SampleOutcome:
        t0 = time.perf_counter()
        outcomes = await asyncio.gather(*(self._score_component(sample, c) for c in sample.components))
        return combine(sample, list(outcomes), (time.perf_counter() - t0) * 1000)

    async def score_many(self, samples: list[SampleInput]) -> list[SampleOutcome]:
        return list(await asyncio.gather(*(self.score(s) for s in samples)))

    def close(self) -> None:
        for ex in self.threads.values():
            ex.shutdown(wait=True)
        self.pool.close()
