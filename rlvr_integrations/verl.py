"""verl reward functions that score with the shared reward service.

verl's contract for a custom reward function (`reward.custom_reward_function`, older
versions `custom_reward_function` at the top level):

    compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float | dict

a dict carries the reward under "score"; its other keys are collected per sample as
`reward_extra_info` (logged, dumped with generations, averaged in validation). Its batch
reward manager (`reward_manager=batch`) calls instead

    compute_score(data_sources=[...], solution_strs=[...], ground_truths=[...], extra_infos=[...], **kwargs)
        -> list[float | dict]

which is `compute_score_batch` here: the whole batch goes in one `Score` request.

Configuration: keyword arguments (verl passes `custom_reward_function.reward_kwargs` as
keyword arguments) or, when absent, environment variables of every process that scores:

    address     REWARD_SERVER_ADDRESS   HOST:PORT of the service (required)
    spec        REWARD_SPEC             stored spec name ("math-r1", "math-r1@2") or JSON
                                        components/dict (required)
    api_key     REWARD_API_KEY          the team's key
    tls_ca      REWARD_TLS_CA           PEM CA: connect with TLS
    run_id      REWARD_RUN_ID           store the scores under this run (started, or resumed,
                                        once per process; name: run_name / REWARD_RUN_NAME)
    on_failure  REWARD_ON_FAILURE       "score" (default) or "raise"; see below
    failure_score REWARD_FAILURE_SCORE  the float given to a sample that was not scored (0.0)
    timeout_s   REWARD_TIMEOUT_S        deadline of one Score call (300)
    max_retries REWARD_MAX_RETRIES      retries on UNAVAILABLE / quota (5, exponential back-off
                                        from 0.5 s; a quota's retry-after-s is honoured)

Non-OK results — the explicit policy. verl needs a float for every sample; the service
gives none when a verifier abstains, times out or fails. So this function ALWAYS returns a
dict with the same keys, and for a sample that was not scored:

    {"score": failure_score (0.0), "status": "TIMEOUT"|"ABSTAIN"|"ERROR", "valid": False,
     "reason": "<the service's reason>"}

while a scored one is {"score": reward, "status": "OK", "valid": True, "reason": ...}.
`valid` and `status` reach verl's reward_extra_info (so the share of unscored samples is
visible in validation metrics and generation dumps), every non-OK result is logged as a
warning, and `status_counts()` keeps per-process totals. `on_failure="raise"` raises
`RewardNotScored` instead, stopping training. Failures of the call itself (service
unreachable after retries, unknown spec, bad credentials) always raise
`RewardServiceError`: they are never scored as `failure_score`.

What is sent: the completion is `solution_str`; the reference is `ground_truth` (strings
as they are, numbers as decimal strings, dicts/lists as objects); the prompt is
`extra_info["question"]` (or `extra_info["prompt"]`) when it is a string; the metadata is
{"data_source": data_source} plus `extra_info["task"]` when present, so a spec with
`task_key="data_source"` (or routes by "task") can pick verifiers per dataset; the step is
the `step` keyword, else `extra_info["global_step"|"global_steps"]` (of the batch's first
sample), else 0 — verl does not pass its training step to reward functions.

The gRPC channel is created once per process (and per address/credentials) and shared by
all threads: verl's reward loop runs a synchronous `compute_score` in a thread pool.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rewards_client import ENV_API_KEY, ENV_SPEC, ENV_TLS_CA, build_spec, make_sample, resolve_address

from .client import ServiceClient

log = logging.getLogger(__name__)

ENV_RUN_ID = "REWARD_RUN_ID"
ENV_RUN_NAME = "REWARD_RUN_NAME"
ENV_ON_FAILURE = "REWARD_ON_FAILURE"
ENV_FAILURE_SCORE = "REWARD_FAILURE_SCORE"
ENV_TIMEOUT_S = "REWARD_TIMEOUT_S"
ENV_MAX_RETRIES = "REWARD_MAX_RETRIES"

__all__ = ["compute_score", "compute_score_batch", "RewardNotScored", "status_counts", "reset"]


class RewardNotScored(RuntimeError):
    """on_failure="raise": the service returned a non-OK status for a sample."""

    def __init__(self, status: str, reason: str, data_source: Any = None):
        super().__init__(f"reward service did not score a sample of {data_source!r}: {status}: {reason}")
        self.status, self.reason = status, reason


_lock = threading.Lock()
_clients: dict[tuple, ServiceClient] = {}
_started_runs: set[tuple] = set()
_specs: dict[str, Any] = {}    # spec text -> RewardSpec message (build_spec)
_counts: Counter[str] = Counter()
_warned = 0


def status_counts() -> dict[str, int]:
    """Statuses returned in this process so far, e.g. {"OK": 120, "TIMEOUT": 2}."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Close the cached channels and forget started runs and counts (tests, after a fork)."""
    global _warned
    with _lock:
        for c in _clients.values():
            c.close()
        _clients.clear()
        _started_runs.clear()
        _specs.clear()
        _counts.clear()
        _warned = 0


def _setting(value: Any, env: str, default: Any = None) -> Any:
    if value is not None:
        return value
    return os.environ.get(env, default)


def _client(address: str, api_key: str | None, tls_ca: str | None, timeout_s: float,
            max_retries: int) -> ServiceClient:
    key = (os.getpid(), address, api_key or "", tls_ca or "", timeout_s, max_retries)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = ServiceClient(address, api_key=api_key or "", tls_ca=tls_ca or "",
                                                   timeout_s=timeout_s, max_retries=max_retries)
        return client


def _spec(spec: Any) -> Any:
    if spec is None:
        raise ValueError(f"no reward spec: pass spec=... (reward_kwargs) or set ${ENV_SPEC}, e.g. 'math-r1'")
    if isinstance(spec, str):
        with _lock:
            cached = _specs.get(spec)
        if cached is None:
            cached = build_spec(spec)
            with _lock:
                _specs[spec] = cached
        return cached
    return build_spec(spec)


def _ensure_run(client: ServiceClient, run_id: str, run_name: str | None) -> None:
    key = (os.getpid(), client.address, client.api_key or "", run_id)
    with _lock:
        if key in _started_runs:
            return
    client.start_run(run_name or run_id, {"trainer": "verl"}, run_id)
    with _lock:
        _started_runs.add(key)


def _warn_not_scored(data_source: Any, status: str, reason: str, failure_score: float) -> None:
    """Warn for the first 10 unscored samples of a process, then for every 100th."""
    global _warned
    with _lock:
        _warned += 1
        n = _warned
    if n <= 10 or n % 100 == 0:
        log.warning("reward service did not score a sample of %r: %s: %s (score %s, valid False; %d unscored "
                    "in this process so far%s)", data_source, status, reason, failure_score, n,
                    "; further warnings every 100th" if n == 10 else "")


def _step(step: Any, extra_info: Mapping[str, Any] | None) -> int:
    if step is None and isinstance(extra_info, Mapping):
        step = extra_info.get("global_step", extra_info.get("global_steps"))
    try:
        return int(step) if step is not None else 0
    except (TypeError, ValueError):
        return 0


def _sample(i: int, data_source: Any, solution_str: str, ground_truth: Any,
            extra_info: Mapping[str, Any] | None) -> Any:
    extra = extra_info if isinstance(extra_info, Mapping) else {}
    prompt = extra.get("question", extra.get("prompt", ""))
    metadata: dict[str, Any] = {"data_source": data_source if isinstance(data_source, str) else str(data_source)}
    if extra.get("task") is not None:
        metadata["task"] = extra["task"]
    index = extra.get("index")
    return make_sample(str(index) if index is not None else str(i), str(solution_str),
                       prompt=prompt if isinstance(prompt, str) else "", reference=ground_truth, metadata=metadata)


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Sequence[Mapping[str, Any] | None] | None = None, *,
                        address: str | None = None, spec: Any = None, api_key: str | None = None,
                        tls_ca: str | None = None, run_id: str | None = None, run_name: str | None = None,
                        step: int | None = None, on_failure: str | None = None, failure_score: float | None = None,
                        timeout_s: float | None = None, max_retries: int | None = None,
                        **kwargs: Any) -> list[dict[str, Any]]:
    """Score a batch in one request; one dict per sample (see the module docstring)."""
    n = len(solution_strs)
    if len(data_sources) != n or len(ground_truths) != n or (extra_infos is not None and len(extra_infos) != n):
        raise ValueError(f"compute_score_batch: lengths differ: {len(data_sources)} data_sources, {n} "
                         f"solution_strs, {len(ground_truths)} ground_truths, "
                         f"{'-' if extra_infos is None else len(extra_infos)} extra_infos")
    on_failure = str(_setting(on_failure, ENV_ON_FAILURE, "score")).lower()
    if on_failure not in ("score", "raise"):
        raise ValueError(f"on_failure: {on_failure!r} is not one of score, raise (${ENV_ON_FAILURE})")
    failure_score = float(_setting(failure_score, ENV_FAILURE_SCORE, 0.0))
    address = resolve_address(address)
    client = _client(address, _setting(api_key, ENV_API_KEY), _setting(tls_ca, ENV_TLS_CA),
                     float(_setting(timeout_s, ENV_TIMEOUT_S, 300.0)),
                     int(_setting(max_retries, ENV_MAX_RETRIES, 5)))
    reward_spec = _spec(_setting(spec, ENV_SPEC))
    run_id = _setting(run_id, ENV_RUN_ID) or ""
    if run_id:
        _ensure_run(client, run_id, _setting(run_name, ENV_RUN_NAME))
    extras = list(extra_infos) if extra_infos is not None else [None] * n
    samples = [_sample(i, data_sources[i], solution_strs[i], ground_truths[i], extras[i]) for i in range(n)]
    results = client.score(samples, reward_spec, run_id=run_id, step=_step(step, extras[0] if extras else None)) \
        if samples else []

    with _lock:
        _counts.update(r.status for r in results)
    out = []
    for i, r in enumerate(results):
        status, reward = r.status, r.reward    # reward None unless "OK"
        if reward is None:
            _warn_not_scored(data_sources[i], status, r.reason, failure_score)
            if on_failure == "raise":
                raise RewardNotScored(status, r.reason, data_sources[i])
            out.append({"score": failure_score, "status": status, "valid": False, "reason": r.reason})
        else:
            out.append({"score": float(reward), "status": status, "valid": True, "reason": r.reason})
    return out


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  **kwargs: Any) -> dict[str, Any]:
    """verl's per-sample reward function: {"score", "status", "valid", "reason"}.

    Keyword arguments other than the settings above (verl adds e.g. `reward_router_address`)
    are ignored.
    """
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]
