"""The reward client over real gRPC: a clear error when nothing listens, retries on
UNAVAILABLE (against a flaky stand-in servicer), and scoring against the real server."""
from __future__ import annotations

import socket
import time
from concurrent import futures

import grpc
import pytest

from rewards.v1 import rewards_pb2, rewards_pb2_grpc
from trainer_client.config import RewardComponent
from trainer_client.reward_client import (RewardCallError, RewardClient, RewardServiceUnavailable, make_sample,
                                          make_spec)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_service_fails_fast_with_the_address():
    address = f"127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with RewardClient(address) as client, pytest.raises(RewardServiceUnavailable) as e:
        client.wait_ready(timeout_s=1.0)
    assert address in str(e.value) and "unreachable" in str(e.value)
    assert time.monotonic() - t0 < 5


class _Flaky(rewards_pb2_grpc.RewardServiceServicer):
    """Fails the first ScoreGroups stream and the first LogStep with UNAVAILABLE."""

    def __init__(self):
        self.stream_calls = 0
        self.log_calls = 0
        self.groups_seen: list[str] = []

    def ScoreGroups(self, request_iterator, context):
        self.stream_calls += 1
        for req in request_iterator:
            self.groups_seen.append(req.group_id)
            if self.stream_calls == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "flaky: try again")
            yield rewards_pb2.GroupResult(group_id=req.group_id, step=req.step, results=[
                rewards_pb2.SampleResult(id=s.id, status=rewards_pb2.STATUS_OK, reward=1.0,
                                         sample_index=i) for i, s in enumerate(req.samples)])

    def LogStep(self, request, context):
        self.log_calls += 1
        if self.log_calls == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "flaky: try again")
        return rewards_pb2.LogStepResponse()


@pytest.fixture
def flaky():
    servicer = _Flaky()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rewards_pb2_grpc.add_RewardServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


def test_stream_and_unary_calls_retry_unavailable(flaky):
    servicer, address = flaky
    spec = make_spec([RewardComponent(name="math")])
    with RewardClient(address, backoff_s=0.01) as client:
        client.log_step("run", 1, {"x": 1.0})                 # 1st call fails, retried
        assert servicer.log_calls == 2
        stream = client.open_group_stream("run", 1, spec)
        for g in range(3):
            stream.submit(f"g{g}", [make_sample(f"g{g}-{k}", "a", prompt="q", reference="1") for k in range(2)])
        results = stream.collect()
    assert servicer.stream_calls == 2                         # one failed stream, one retry
    assert sorted(results) == ["g0", "g1", "g2"]
    assert all(s.ok and s.reward == 1.0 for r in results.values() for s in r)


def test_unavailable_after_retries_is_reported(flaky):
    servicer, address = flaky
    with RewardClient(address, max_retries=0) as client, \
            pytest.raises(RewardServiceUnavailable, match="unavailable after 0 retries"):
        client.log_step("run", 1, {})


def test_groups_scored_by_the_real_service(server):
    spec = make_spec([RewardComponent(name="math", weight=1.0),
                      RewardComponent(name="format", weight=0.0,
                                      params={"kind": "r1", "strict": True})])
    with RewardClient(server.address) as client:
        client.wait_ready(5.0)
        run_id = client.start_run("client-test", {"k": 1})
        stream = client.open_group_stream(run_id, 1, spec)
        stream.submit("right", [make_sample("r0", "<think>40+2=42</think><answer>42</answer>",
                                            prompt="Calculate 40 + 2.", reference="42")])
        stream.submit("wrong", [make_sample("w0", "<think>40+2=41</think><answer>41</answer>",
                                            prompt="Calculate 40 + 2.", reference="42")])
        results = stream.collect()
        right, wrong = results["right"][0], results["wrong"][0]
        assert right.ok and right.component("math").reward == 1.0
        assert right.component("format").reward == 1.0
        assert wrong.ok and wrong.component("math").reward == 0.0
        assert client.scores_returned == 2 and client.components_returned == 4
        assert len(client.query_scores(run_id)) == 4


def test_a_group_the_service_refuses_is_named_by_collect(server):
    spec = make_spec([RewardComponent(name="math", weight=1.0)])
    with RewardClient(server.address) as client:
        client.wait_ready(5.0)
        run_id = client.start_run("client-test", {})
        stream = client.open_group_stream(run_id, 1, spec)
        stream.submit("fine", [make_sample("f0", "42", prompt="Calculate 40 + 2.", reference="42")])
        bad = make_sample("b0", "42", prompt="Calculate 40 + 2.", reference="42")
        bad.spec.components.add(name="no-such-verifier")  # refused: unknown verifier
        stream.submit("bad", [bad])
        with pytest.raises(RewardCallError) as e:
            stream.collect()
        assert e.value.code == grpc.StatusCode.NOT_FOUND and "bad" in str(e.value)
        assert "no-such-verifier" in str(e.value)
        assert stream.arrival_order == ["fine"]  # the good group was still scored
