"""Reward functions for other RL trainers, backed by the shared reward service.

- `rlvr_integrations.trl.RewardServiceFunc`: a reward function for TRL's `GRPOTrainer`
  (`reward_funcs=[...]`), one `Score` request per generation step.
- `rlvr_integrations.verl.compute_score` / `compute_score_batch`: verl's custom reward
  function contract (per sample / batch reward manager).
- `rlvr_integrations.client.ServiceClient`: the client both use: `rewards_client.RewardClient`
  (retries with back-off, `retry-after-s`, API key, TLS) with the integrations' defaults.

Neither module imports its trainer: they need only grpcio and protobuf (TRL's callback
imports transformers when asked for).
"""
from __future__ import annotations

from typing import Any

__all__ = ["RewardServiceFunc", "ServiceClient", "RewardServiceError", "RewardServiceUnavailable",
           "RewardServiceCallError", "compute_score", "compute_score_batch"]

_EXPORTS = {
    "RewardServiceFunc": "trl",
    "ServiceClient": "client",
    "RewardServiceError": "client",
    "RewardServiceUnavailable": "client",
    "RewardServiceCallError": "client",
    "compute_score": "verl",
    "compute_score_batch": "verl",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'integrations' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
