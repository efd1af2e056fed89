"""The integrations' client: `rewards_client` (the contract's one client library) with the
integrations' defaults, so the TRL and verl adapters need only grpcio and protobuf (not the
trainer client, nor torch).

    client = ServiceClient("127.0.0.1:50051", api_key=None, tls_ca=None)
    results = client.score(samples, spec=build_spec("math-r1"), run_id="", step=0)
    results[0].status, results[0].reward                 # "OK", 1.0 (SampleScore)

Connection settings default to the same environment variables as `rewardctl`
(REWARD_SERVER_ADDRESS, REWARD_API_KEY, REWARD_TLS_CA); retries follow rewards_client's
one policy (UNAVAILABLE with back-off and jitter, RESOURCE_EXHAUSTED with the server's
`retry-after-s`, everything else raised at once). The names below are re-exported for
the integrations' users; new code imports them from `rewards_client`.

Exceptions::

    RewardServiceError                any failure talking to the service
    ├── RewardServiceUnavailable      not reachable (after the retries)
    └── RewardServiceCallError        the call failed for another reason (`.code`)
                                      (= rewards_client.RewardCallError)
"""
from __future__ import annotations

from typing import Any

from rewards_client import (ENV_ADDRESS, ENV_API_KEY, ENV_SPEC, ENV_TLS_CA, STATUS_NAMES, RewardCallError,
                            RewardClient, RewardServiceCallError, RewardServiceError, RewardServiceUnavailable,
                            SampleScore, build_spec, make_channel, make_sample, plain, resolve_address,
                            retry_after_s, sample_score, status_name, to_struct, to_value)

__all__ = ["ENV_ADDRESS", "ENV_API_KEY", "ENV_SPEC", "ENV_TLS_CA", "STATUS_NAMES", "RewardCallError",
           "RewardServiceCallError", "RewardServiceError", "RewardServiceUnavailable", "SampleScore",
           "ServiceClient", "build_spec", "make_channel", "make_sample", "plain", "resolve_address",
           "retry_after_s", "reward_or_none", "status_name", "to_struct", "to_value"]


class ServiceClient(RewardClient):
    """A RewardClient with the integrations' defaults: a 300 s deadline (`timeout_s`, for
    slow verifiers and judges), 5 retries from 0.5 s back-off up to 30 s. `score()` returns
    SampleScore (status name, reward only when "OK")."""

    def __init__(self, address: str | None = None, *, api_key: str | None = None, tls_ca: str | None = None,
                 timeout_s: float = 300.0, max_retries: int = 5, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0):
        super().__init__(address, api_key=api_key, tls_ca=tls_ca, rpc_timeout_s=timeout_s,
                         max_retries=max_retries, backoff_s=backoff_s, max_backoff_s=max_backoff_s)

    @property
    def timeout_s(self) -> float:
        return self.rpc_timeout_s


def reward_or_none(result: Any) -> float | None:
    """The sample's reward when the service decided it (status OK), else None (never 0):
    of a SampleScore, or of a SampleResult message."""
    return result.reward if isinstance(result, SampleScore) else sample_score(result).reward
