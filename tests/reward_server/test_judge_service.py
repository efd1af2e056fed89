"""Judges through the real server on a loopback port, against a loopback OpenAI-compatible stub:
scores, statuses and reasons come back per component, and the server stays healthy (health
check, rule-based scores) while the judge misbehaves."""
from __future__ import annotations

import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import verifiers.judges  # noqa: F401  (registers judge, local_judge, reward_model, embedding_similarity)
from reward_server.app import start_server
from reward_server.config import ServerConfig
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.helpers.openai_stub import OpenAIStub
from verifiers.judges.openai_judge import reset_endpoints

GOOD = "<think>2+2=4</think><answer>4</answer>"


@pytest.fixture
def judge_stub():
    reset_endpoints()
    with OpenAIStub() as s:
        yield s
    reset_endpoints()


@pytest.fixture(scope="module")
def channel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("judge-service")
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, database_url=f"sqlite:///{tmp}/r.db",
                                    workers=1, grace_s=2))
    with grpc.insecure_channel(srv.address) as ch:
        yield ch
    srv.stop()


def sample(completion: str = GOOD, id: str = "", prompt: str = "What is 2+2?") -> pb.Sample:
    s = pb.Sample(id=id, prompt=prompt, completion=completion)  # the server hands the prompt to the judge
    s.reference.string_value = "4"
    return s


def judge_ref(stub: OpenAIStub, weight: float = 1.0, **params) -> pb.VerifierRef:
    p = {"base_url": stub.base_url, "model": "stub-judge", "backoff_base_s": 0.01, "backoff_max_s": 0.02, **params}
    ref = pb.VerifierRef(name="judge", weight=weight, params=p)
    if weight == 0:
        ref.weight_set = True
    return ref


def test_judge_scores_through_the_service(channel, judge_stub):
    rpc = pb_grpc.RewardServiceStub(channel)
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="format", weight=0.5), judge_ref(judge_stub, 0.5)])
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample()], spec=spec)).results
    assert r.status == pb.STATUS_OK
    assert r.reward == pytest.approx(0.5 * 1.0 + 0.5 * 6 / 9)        # format 1, judge 7 on [1, 10] → 6/9
    judge = r.components[1]
    assert judge.name == "judge" and judge.status == pb.STATUS_OK and "score 7" in judge.reason
    assert "What is 2+2?" in judge_stub.bodies[0]["messages"][0]["content"]
    # the prompt is part of the cache key for verifiers that read it: another prompt is judged anew
    (again,) = rpc.Score(pb.ScoreRequest(samples=[sample(prompt="What is 3+1?")], spec=spec)).results
    assert not again.components[1].cached and "What is 3+1?" in judge_stub.bodies[-1]["messages"][0]["content"]
    names = {v.name: v for v in rpc.ListVerifiers(pb.ListVerifiersRequest()).verifiers}
    assert {"judge", "local_judge", "reward_model", "embedding_similarity"} <= names.keys()
    assert "base_url" in {p.name for p in names["judge"].params}


@pytest.mark.parametrize("behaviour, params, status, fragment", [
    ("500", {"max_retries": 1}, pb.STATUS_ERROR, "HTTP 500 after 2 attempts"),
    ("slow", {"deadline_s": 0.3}, pb.STATUS_TIMEOUT, "deadline"),
    ("refusal", {}, pb.STATUS_ABSTAIN, "judge refused"),
    ("garbage", {}, pb.STATUS_ERROR, "not a JSON object"),
])
def test_judge_failure_is_a_status_never_zero(channel, judge_stub, behaviour, params, status, fragment):
    judge_stub.behaviour = behaviour
    rpc = pb_grpc.RewardServiceStub(channel)
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="format"), judge_ref(judge_stub, **params)])
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample()], spec=spec)).results
    assert r.status == status and not r.HasField("reward")
    assert r.components[0].status == pb.STATUS_OK and r.components[0].reward == 1.0   # format still scored
    assert r.components[1].status == status and fragment in r.components[1].reason
    assert "judge" in r.reason
    # Logged only (weight 0): the failure is stored and shown, the sample's reward stands.
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="format"), judge_ref(judge_stub, 0, **params)])
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample()], spec=spec)).results
    assert r.status == pb.STATUS_OK and r.reward == 1.0 and r.components[1].status == status


def test_server_stays_healthy_while_the_judge_hangs_and_the_breaker_opens(channel, judge_stub):
    judge_stub.behaviour, judge_stub.slow_s = "slow", 5.0
    rpc = pb_grpc.RewardServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    slow_spec = pb.RewardSpec(components=[judge_ref(judge_stub, deadline_s=1.5, max_retries=0)])
    out: dict = {}

    def slow_batch():  # 32 judge calls stuck on a hanging endpoint
        out["resp"] = rpc.Score(pb.ScoreRequest(samples=[sample(id=str(i)) for i in range(32)], spec=slow_spec))

    t = threading.Thread(target=slow_batch)
    t.start()
    time.sleep(0.3)
    assert judge_stub.in_flight > 0                                   # the judge calls are hanging now
    t0 = time.perf_counter()
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    (f,) = rpc.Score(pb.ScoreRequest(samples=[sample()], spec=pb.RewardSpec(
        components=[pb.VerifierRef(name="format")]))).results
    assert f.status == pb.STATUS_OK and f.reward == 1.0
    assert time.perf_counter() - t0 < 1.0                            # rule-based scoring is not queued behind it
    t.join(10)
    results = out["resp"].results
    assert len(results) == 32 and all(r.status == pb.STATUS_TIMEOUT for r in results)
    # 32 timeouts in a row opened the endpoint's breaker: the next call fails fast, sends nothing.
    sent = judge_stub.requests
    t0 = time.perf_counter()
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample()], spec=slow_spec)).results
    assert r.status == pb.STATUS_ERROR and "circuit open" in r.reason
    assert judge_stub.requests == sent and time.perf_counter() - t0 < 0.5


def test_mixed_spec_format_gate_math_and_judge_stores_every_component(channel, judge_stub):
    """The R1 hybrid: a format gate, rule-based correctness and a judge, end to end."""
    rpc = pb_grpc.RewardServiceStub(channel)
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="format", weight=0, weight_set=True, gate=True),
                                     pb.VerifierRef(name="math", weight=0.7), judge_ref(judge_stub, 0.3)])
    run = rpc.StartRun(pb.StartRunRequest(name="hybrid"))
    group = [sample(GOOD, "right"), sample("<think>2+2=5</think><answer>5</answer>", "wrong"),
             sample("4", "unformatted")]
    (res,) = list(rpc.ScoreGroups(iter([pb.GroupRequest(run_id=run.run_id, step=7, group_id="g", spec=spec,
                                                         samples=group)])))
    by_id = {r.id: r for r in res.results}
    assert by_id["right"].reward == pytest.approx(0.7 + 0.3 * 6 / 9)   # judge 7 on [1, 10]
    assert by_id["wrong"].reward == pytest.approx(0.3 * 6 / 9)          # math 0, the judge still counts
    assert by_id["unformatted"].reward == 0.0 and "gate format" in by_id["unformatted"].reason
    rows = list(rpc.QueryScores(pb.QueryScoresRequest(run_id=run.run_id)))
    assert len(rows) == 9 and {r.step for r in rows} == {7}
    assert sorted((r.sample_id, r.verifier) for r in rows) == sorted(
        (s, v) for s in ("right", "wrong", "unformatted") for v in ("format", "math", "judge"))
    assert all(r.gate == (r.verifier == "format") for r in rows)
