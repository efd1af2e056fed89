"""The trainer's names for the reward service client: re-exported from `rewards_client`,
the one client library of the contract (see its docstrings for shapes and errors)."""
from __future__ import annotations

from rewards_client import (SERVICE_NAME, ComponentScore, GroupStream, OutageNotices, RewardCallError,
                            RewardClient, RewardServiceError, RewardServiceUnavailable, SampleScore,
                            make_sample, make_spec, sample_score_from_proto)

__all__ = ["SERVICE_NAME", "ComponentScore", "GroupStream", "OutageNotices", "RewardCallError", "RewardClient",
           "RewardServiceError", "RewardServiceUnavailable", "SampleScore", "make_sample", "make_spec",
           "sample_score_from_proto"]
