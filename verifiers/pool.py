"""A pool of killable worker processes for CPU-heavy or adversarial verifier calls.

Why processes and not `signal.alarm`: an alarm only fires on the main thread, so inside a
threaded server it silently never fires (Math-Verify's users got all-zero rewards that
way). A worker that overruns its wall-clock limit is killed and replaced by the pool
(pebble), and the caller gets a TIMEOUT result; the pool keeps serving.

Each worker caps its own address space with RLIMIT_AS (`memory_limit_bytes`), so SymPy
blowing up on `10^(10^10)` ends as a MemoryError -> ERROR result, not an OOM-killed host.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import resource
import threading
from typing import Any

from pebble import ProcessExpired, ProcessPool

from .core import Status, VerifierResult
from .errors import VerifierError


def _init_worker(memory_limit_bytes: int | None) -> None:
    if memory_limit_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit_bytes, memory_limit_bytes))
    import verifiers  # noqa: F401  (registers the built-in verifiers; pays imports once)


def _warm() -> int:
    return os.getpid()


def _run(name: str, version: str, completion: str, reference: Any, params: dict[str, Any],
         prompt: str | None = None) -> tuple[VerifierResult | VerifierError, int]:
    """Worker side: one verifier call. Request errors are returned, not raised, so they
    keep their type across the process boundary."""
    from . import registry

    def call() -> VerifierResult:
        cls = registry.get(name, version)
        return _call(cls, registry.parse_params(cls, params), completion, reference, prompt)

    return _guarded(call), os.getpid()


def _call(cls: type, parsed: Any, completion: str, reference: Any, prompt: str | None) -> VerifierResult:
    if cls.uses_prompt:
        return cls().verify(completion, reference, parsed, prompt=prompt)
    return cls().verify(completion, reference, parsed)


def _guarded(call: Any) -> VerifierResult | VerifierError:
    """`call()`'s result, with a request error returned and any other failure as an ERROR result."""
    try:
        return call()
    except VerifierError as e:
        return e
    except MemoryError:
        return VerifierResult.error("memory limit exceeded in the verifier worker")
    except RecursionError:
        return VerifierResult.error("input too deeply nested (recursion limit)")
    except Exception as e:  # a verifier bug is an ERROR result with its reason
        return VerifierResult.error(f"verifier raised {type(e).__name__}: {e}")


# One call of a batch: (name, version, completion, reference, params, prompt, params key). Calls
# with the same (name, version, params key) share one registry lookup and one parameter parse.
BatchCall = tuple[str, str, str, Any, dict[str, Any], "str | None", str]


def run_batch(calls: list[BatchCall]) -> tuple[list[VerifierResult | VerifierError], int, int]:
    """Run `calls` one after another in this process: (each call's result, or its request
    error as a value; how many distinct parameter sets were validated; this process's id).
    Each result is what `_run` gives for that call alone."""
    from . import registry

    prepared: dict[tuple[str, str, str], tuple[type, Any]] = {}
    out: list[VerifierResult | VerifierError] = []
    for name, version, completion, reference, params, prompt, key in calls:
        def call() -> VerifierResult:
            ready = prepared.get((name, version, key))
            if ready is None:
                cls = registry.get(name, version)
                ready = prepared[(name, version, key)] = (cls, registry.parse_params(cls, params))
            return _call(*ready, completion, reference, prompt)

        out.append(_guarded(call))
    return out, len(prepared), os.getpid()


def _lost(name: str, timeout_s: float, exc: BaseException) -> VerifierResult:
    """The result of a pool call that returned nothing: killed at its limit, died, cancelled."""
    if isinstance(exc, cf.TimeoutError):
        return VerifierResult.timeout(f"{name} ran past its {timeout_s:g} s wall-clock limit; worker killed")
    if isinstance(exc, ProcessExpired):
        return VerifierResult.error(f"{name} worker died (exit code {exc.exitcode}); likely the memory limit")
    if isinstance(exc, cf.CancelledError):
        return VerifierResult.error(f"{name} call cancelled (pool shutting down)")
    return VerifierResult.error(f"{name} call failed: {type(exc).__name__}: {exc}")  # pickling failures and the like


class VerifierPool:
    """Runs `verify` calls in `workers` processes with a hard wall-clock limit each.

    `submit` returns a future of `(VerifierResult, worker_pid)`; it raises the
    request's VerifierError (unknown verifier, bad params, bad reference) from
    `future.result()`. A call that overruns `timeout_s` resolves to TIMEOUT within
    about 0.1 s of the limit (pebble's watchdog period) and its worker is replaced.
    """

    def __init__(self, workers: int = 2, memory_limit_bytes: int | None = 2 << 30,
                 start_method: str = "forkserver"):
        self.workers = workers
        self.memory_limit_bytes = memory_limit_bytes
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            # Workers fork from a server that has paid the verifiers' imports (SymPy: ~0.5 s of
            # CPU) once, instead of each worker and each replacement of a killed one paying them.
            # Effective when this is the process's first forkserver use; "__main__" is the default.
            self._context.set_forkserver_preload(["__main__", "verifiers"])
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPool:
        return ProcessPool(max_workers=self.workers, initializer=_init_worker,
                           initargs=(self.memory_limit_bytes,), context=self._context)

    def _schedule(self, fn: Any, args: tuple = (), timeout: float | None = None) -> cf.Future:
        try:
            return self._pool.schedule(fn, args=args, timeout=timeout)
        except RuntimeError:
            # pebble puts a pool in ERROR state after an internal failure (for instance a
            # result that cannot be unpickled); replace it rather than fail every later call.
            with self._lock:
                if not self._pool.active:
                    self._pool.stop()
                    self._pool = self._new_pool()
            return self._pool.schedule(fn, args=args, timeout=timeout)

    def warm_up(self, timeout_s: float = 120.0) -> None:
        """Start every worker and pay its imports now rather than on the first request."""
        futs = [self._schedule(_warm) for _ in range(self.workers * 2)]
        for f in futs:
            f.result(timeout=timeout_s)

    def submit(self, name: str, version: str, completion: str, reference: Any,
               params: dict[str, Any], timeout_s: float,
               prompt: str | None = None) -> "cf.Future[tuple[VerifierResult, int]]":
        out: cf.Future = cf.Future()
        inner = self._schedule(_run, (name, version, completion, reference, params, prompt), timeout_s)

        def done(f: cf.Future) -> None:
            try:
                value, pid = f.result()
            except (Exception, cf.CancelledError) as e:
                out.set_result((_lost(name, timeout_s, e), -1))
                return
            if isinstance(value, VerifierError):
                out.set_exception(value)
            else:
                out.set_result((value, pid))

        inner.add_done_callback(done)
        return out

    def submit_batch(self, calls: list[BatchCall], timeout_s: float
                     ) -> "cf.Future[tuple[list[VerifierResult | VerifierError], int, int]]":
        """`run_batch(calls)` in one worker, killed after `timeout_s` for the whole batch (every
        call then TIMEOUT). The future never fails: (results, parameter sets validated, pid or -1)."""
        out: cf.Future = cf.Future()
        inner = self._schedule(run_batch, (calls,), timeout_s)
        label = f"a batch of {len(calls)} calls ({', '.join(sorted({c[0] for c in calls}))})"

        def done(f: cf.Future) -> None:
            try:
                out.set_result(f.result())
            except (Exception, cf.CancelledError) as e:
                out.set_result(([_lost(label, timeout_s, e)] * len(calls), 0, -1))

        inner.add_done_callback(done)
        return out

    def close(self, wait: bool = True) -> None:
        self._pool.close() if wait else self._pool.stop()
        self._pool.join()


def run_inline(name: str, version: str, completion: str, reference: Any,
               params: dict[str, Any], prompt: str | None = None) -> VerifierResult:
    """Run a (non-isolated) verifier call in this thread; request errors propagate."""
    value, _ = _run(name, version, completion, reference, params, prompt)
    if isinstance(value, VerifierError):
        raise value
    return value


__all__ = ["VerifierPool", "run_batch", "run_inline", "Status"]
