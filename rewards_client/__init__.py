"""rewards_client: the one client library of the reward service's contract (rewards.v1).

    from rewards_client import RewardClient, make_sample
    with RewardClient("127.0.0.1:50051") as client:          # or $REWARD_SERVER_ADDRESS
        client.wait_ready()
        run_id = client.start_run("demo", config={"lr": 1e-6})
        scores = client.score([make_sample("0", r"\\boxed{4}", reference=4)],
                              [{"name": "math", "version": "2.0.0"}], run_id=run_id, step=1)
        scores[0].status, scores[0].reward                     # ("OK", 1.0)

Modules: errors (the exception tree), channel (TLS, API key, env vars), retry (RetryPolicy,
OutageNotices), convert (samples, specs, results, status names), client (RewardClient:
every RPC), stream (GroupStream: the trainer's ScoreGroups stream).

Exceptions::

    RewardServiceError                 any failure talking to the service
    ├── RewardServiceUnavailable       not reachable / not SERVING (after the retries)
    └── RewardCallError                another failure (`.code`: grpc.StatusCode, `.details`)
        (also named RewardServiceCallError)
"""
from __future__ import annotations

from .channel import (ENV_ADDRESS, ENV_API_KEY, ENV_SPEC, ENV_TLS_CA, SERVICE_NAME, channel_options,
                      make_channel, resolve_address, resolve_api_key, resolve_tls_ca)
from .client import RewardClient
from .convert import (STATUS_NAMES, STATUS_VALUES, ComponentScore, SampleScore, as_sample, build_spec,
                      from_value, make_sample, make_spec, message_to_dict, plain, sample_score,
                      sample_score_from_proto, status_name, status_value, stored_spec_ref, to_struct,
                      to_value, verifier_ref)
from .errors import RewardCallError, RewardServiceCallError, RewardServiceError, RewardServiceUnavailable
from .retry import OutageNotices, RetryPolicy, retry_after_s
from .stream import GroupStream

__all__ = [
    # errors
    "RewardServiceError", "RewardServiceUnavailable", "RewardCallError", "RewardServiceCallError",
    # channel
    "ENV_ADDRESS", "ENV_API_KEY", "ENV_TLS_CA", "ENV_SPEC", "SERVICE_NAME", "channel_options",
    "make_channel", "resolve_address", "resolve_api_key", "resolve_tls_ca",
    # retry
    "RetryPolicy", "OutageNotices", "retry_after_s",
    # conversions
    "STATUS_NAMES", "STATUS_VALUES", "status_name", "status_value", "plain", "to_value", "to_struct",
    "from_value", "message_to_dict", "verifier_ref", "build_spec", "make_spec", "stored_spec_ref",
    "make_sample", "as_sample", "ComponentScore", "SampleScore", "sample_score", "sample_score_from_proto",
    # calls
    "RewardClient", "GroupStream",
]
