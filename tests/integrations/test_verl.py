"""verl's reward-function contract against a real reward server (verl itself is not
installed: these calls are the ones its reward managers make)."""
from __future__ import annotations

import concurrent.futures

import pytest
from rewards.v1 import rewards_pb2 as pb

from rlvr_integrations import verl
from rlvr_integrations.client import RewardServiceUnavailable
from tests.conftest import free_port

R1 = "<think>6*7</think><answer>42</answer>"
# format@1.0.0: its `regex` engine backtracks to a TIMEOUT (2.0.0 matches in linear time with RE2)
SLOW_REGEX = ('[{"name": "format", "version": "1.0.0", '
              '"params": {"kind": "regex", "pattern": "(a|aa)+$", "timeout_s": 0.05}}]')
NO_ANSWER = "I am not sure how to solve this one."   # no final answer for math to grade
KEYS = {"score", "status", "valid", "reason"}


@pytest.fixture(autouse=True)
def fresh_module(monkeypatch):
    for var in ("REWARD_SERVER_ADDRESS", "REWARD_SPEC", "REWARD_API_KEY", "REWARD_TLS_CA", "REWARD_RUN_ID",
                "REWARD_RUN_NAME", "REWARD_ON_FAILURE", "REWARD_FAILURE_SCORE", "REWARD_TIMEOUT_S",
                "REWARD_MAX_RETRIES"):
        monkeypatch.delenv(var, raising=False)
    verl.reset()
    yield
    verl.reset()


def test_per_sample_contract_from_environment(server, stub, monkeypatch):
    monkeypatch.setenv("REWARD_SERVER_ADDRESS", server.address)
    monkeypatch.setenv("REWARD_SPEC", '["math"]')
    monkeypatch.setenv("REWARD_RUN_ID", "verl-run-1")
    # exactly how verl's (naive) reward manager calls it
    out = verl.compute_score(data_source="openai/gsm8k", solution_str=R1, ground_truth="42",
                             extra_info={"index": 7, "split": "train", "question": "6*7?", "num_turns": None,
                                         "rollout_reward_scores": {}})
    assert out == {"score": 1.0, "status": "OK", "valid": True, "reason": out["reason"]}
    wrong = verl.compute_score("openai/gsm8k", "\\boxed{41}", "42", None, reward_router_address=None)
    assert (wrong["score"], wrong["valid"]) == (0.0, True)
    assert len(verl._clients) == 1                    # one cached channel per process and settings

    stub.GetRun(pb.GetRunRequest(run_id="verl-run-1"))
    rows = list(stub.QueryScores(pb.QueryScoresRequest(run_id="verl-run-1", include_texts=True)))
    assert [(r.sample_id, r.reward) for r in rows] == [("7", 1.0), ("0", 0.0)]
    assert rows[0].prompt == "6*7?" and rows[0].completion == R1


def test_non_ok_policy_is_explicit(server):
    kw = dict(address=server.address, spec=SLOW_REGEX, api_key="")
    out = verl.compute_score("synthetic", "a" * 40 + "b", None, **kw)
    assert out["valid"] is False and out["status"] == "TIMEOUT" and out["score"] == 0.0 and out["reason"]
    assert set(out) == KEYS                           # same keys as an OK result: verl collects them per sample
    assert verl.compute_score("synthetic", "a" * 40 + "b", None, failure_score=-1.0, **kw)["score"] == -1.0
    with pytest.raises(verl.RewardNotScored, match="TIMEOUT"):
        verl.compute_score("synthetic", "a" * 40 + "b", None, on_failure="raise", **kw)
    assert verl.status_counts() == {"TIMEOUT": 3}
    abstaining_math = '[{"name": "math", "params": {"unanswered": "abstain"}}]'
    abstain = verl.compute_score("gsm8k", NO_ANSWER, "42", address=server.address, spec=abstaining_math,
                                 api_key="")
    assert (abstain["status"], abstain["valid"], abstain["score"]) == ("ABSTAIN", False, 0.0)
    # math@2.0.0's default (unanswered = "zero"): the same completion is a valid 0, not a failure
    zero = verl.compute_score("gsm8k", NO_ANSWER, "42", address=server.address, spec=["math"], api_key="")
    assert (zero["status"], zero["valid"], zero["score"]) == ("OK", True, 0.0)


def test_batch_variant_one_request_and_routing_by_data_source(server, stub):
    spec = {"components": [], "task_key": "data_source",
            "routes": {"gsm8k": ["math"], "*": [{"name": "format", "params": {"kind": "r1"}}]}}
    outs = verl.compute_score_batch(
        data_sources=["gsm8k", "gsm8k", "chat"], solution_strs=["\\boxed{42}", "\\boxed{1}", R1],
        ground_truths=["42", "42", None], extra_infos=[{"global_step": 5}, {}, {}],
        address=server.address, spec=spec, api_key="", run_id="verl-batch")
    assert [(o["score"], o["valid"]) for o in outs] == [(1.0, True), (0.0, True), (1.0, True)]
    stub.GetRun(pb.GetRunRequest(run_id="verl-batch"))
    rows = list(stub.QueryScores(pb.QueryScoresRequest(run_id="verl-batch")))
    assert sorted(r.verifier for r in rows) == ["format", "math", "math"]
    assert {r.step for r in rows} == {5} and len({r.request_id for r in rows}) == 1


def test_thread_pool_calls_share_the_channel(server):
    # verl's reward loop runs a synchronous compute_score in a thread pool
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda i: verl.compute_score("gsm8k", f"\\boxed{{{i}}}", "3", address=server.address,
                                                          spec=["math"], api_key=""), range(16)))
    assert [o["score"] for o in outs] == [1.0 if i == 3 else 0.0 for i in range(16)]
    assert len(verl._clients) == 1


def test_configuration_errors_are_loud(server):
    with pytest.raises(ValueError, match="REWARD_SERVER_ADDRESS"):
        verl.compute_score("d", "x", "1", spec=["math"])
    with pytest.raises(ValueError, match="REWARD_SPEC"):
        verl.compute_score("d", "x", "1", address=server.address)
    with pytest.raises(ValueError, match="on_failure"):
        verl.compute_score("d", "x", "1", address=server.address, spec=["math"], on_failure="zero")
    with pytest.raises(RewardServiceUnavailable, match="unreachable"):
        verl.compute_score("d", "x", "1", address=f"127.0.0.1:{free_port()}", spec=["math"], api_key="",
                           max_retries=1)
