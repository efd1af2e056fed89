"""The code verifier through a real server on a loopback port: a code score, a cheat
rejected, a bad reference refused up front, and the service healthy afterwards."""
from __future__ import annotations

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import verifiers.code  # noqa: F401  (registers "code" until verifiers/__init__ imports it)
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from verifiers import registry

AVAILABLE, WHY = registry.get("code").available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"code verifier unavailable: {WHY}")

HE = {"prompt": "def add(a, b):\n", "entry_point": "add",
      "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(5, 7) == 12\n"}
STDIO = {"tests": [{"stdin": "1 2\n", "stdout": "3\n"}, {"stdin": "5 7\n", "stdout": "12\n"}]}
CODE = pb.RewardSpec(components=[pb.VerifierRef(name="code", params={"timeout_per_test_s": 2})])


def sample(completion: str, reference: dict, id: str, as_struct: bool = True) -> pb.Sample:
    s = pb.Sample(id=id, completion=completion, prompt="add two numbers")
    if as_struct:
        s.reference.struct_value.update(reference)
    else:
        s.reference.string_value = json.dumps(reference)
    return s


def test_code_scores_through_the_server_and_it_stays_healthy(tmp_path):
    from reward_server.app import start_server
    from reward_server.config import ServerConfig

    srv = start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/r.db", workers=1))
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.RewardServiceStub(ch)
            info = {v.name: v for v in stub.ListVerifiers(pb.ListVerifiersRequest()).verifiers}["code"]
            assert info.available and {p.name for p in info.params} >= {"language", "comparator", "partial_credit"}

            resp = stub.Score(pb.ScoreRequest(spec=CODE, samples=[
                sample("    return a + b\n", HE, "fn-good"),
                sample("```python\ndef add(a, b):\n    class E:\n        def __eq__(s, o): return True\n"
                       "    return E()\n```", HE, "fn-always-equal"),
                sample("```python\na, b = map(int, input().split())\nprint(a + b)\n```", STDIO, "io-good",
                       as_struct=False),
                sample("```python\nimport sys\nsys.exit(0)\n```", STDIO, "io-exit-0"),
                sample("I don't know.", STDIO, "no-code"),
            ]))
            by_id = {r.id: r for r in resp.results}
            assert by_id["fn-good"].status == pb.STATUS_OK and by_id["fn-good"].reward == 1.0
            assert by_id["io-good"].reward == 1.0
            for cheat in ("fn-always-equal", "io-exit-0"):
                assert by_id[cheat].status == pb.STATUS_OK and by_id[cheat].reward == 0.0
                assert "first failure" in by_id[cheat].components[0].reason
            assert by_id["no-code"].status in (pb.STATUS_OK, pb.STATUS_ABSTAIN)  # prose runs as Python: CE
            assert by_id["fn-good"].components[0].name == "code"

            with pytest.raises(grpc.RpcError) as e:  # a stdin test without stdout: refused before scheduling
                stub.Score(pb.ScoreRequest(spec=CODE, samples=[
                    sample("print(3)", {"tests": [{"stdin": "1 2\n"}]}, "bad-ref")]))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "samples[0].reference" in e.value.details() and "tests[0].stdout" in e.value.details()

            health = health_pb2_grpc.HealthStub(ch)
            assert health.Check(health_pb2.HealthCheckRequest(service="")).status == \
                health_pb2.HealthCheckResponse.SERVING
            fmt = pb.RewardSpec(components=[pb.VerifierRef(name="format")])
            (r,) = stub.Score(pb.ScoreRequest(spec=fmt, samples=[
                pb.Sample(completion="<think>a</think><answer>b</answer>")])).results
            assert r.reward == 1.0
    finally:
        srv.stop()
