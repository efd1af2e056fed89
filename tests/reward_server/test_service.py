"""The service over a real loopback port: scoring, streaming, runs, history, typed errors."""
from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rewards.v1 import rewards_pb2 as pb

GOOD = "<think>2+2=4</think><answer>4</answer>"
BAD = "the answer is 4"
FORMAT = pb.RewardSpec(components=[pb.VerifierRef(name="format")])


def sample(completion: str, id: str = "", reference: str | None = None) -> pb.Sample:
    s = pb.Sample(id=id, completion=completion, prompt="What is 2+2?")
    if reference is not None:
        s.reference.string_value = reference
    return s


def test_score_returns_each_component_and_weighted_total(stub):
    spec = pb.RewardSpec(components=[
        pb.VerifierRef(name="format", weight=0.25),
        pb.VerifierRef(name="format", weight=0.75, params={"kind": "length", "max_chars": 10}),
    ])
    resp = stub.Score(pb.ScoreRequest(samples=[sample(GOOD, "a"), sample(BAD, "b")], spec=spec))
    a, b = resp.results
    assert [a.id, b.id] == ["a", "b"]
    assert a.status == pb.STATUS_OK and a.reward == pytest.approx(0.25)  # format 1×0.25 + length 0×0.75
    assert [c.reward for c in a.components] == [1.0, 0.0]
    assert b.reward == pytest.approx(0.0)
    assert all(c.status == pb.STATUS_OK and c.reason for c in a.components)


def test_logged_only_component_does_not_count(stub):
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="format"),
                                     pb.VerifierRef(name="format", weight=0, weight_set=True,
                                                    params={"kind": "regex", "pattern": "answer"})])
    (r,) = stub.Score(pb.ScoreRequest(samples=[sample(GOOD)], spec=spec)).results
    assert r.reward == 1.0 and len(r.components) == 2 and r.components[1].weight == 0


def test_failure_is_never_reward_zero(stub):
    # A backtracking regex with a tiny time limit makes a TIMEOUT component (format@1.0.0,
    # the `regex` engine; 2.0.0 matches with RE2 in linear time).
    spec = pb.RewardSpec(components=[pb.VerifierRef(
        name="format", version="1.0.0", params={"kind": "regex", "pattern": r"(a|aa)+$", "timeout_s": 0.05})])
    (r,) = stub.Score(pb.ScoreRequest(samples=[sample("a" * 40 + "b")], spec=spec)).results
    assert r.status == pb.STATUS_TIMEOUT
    assert not r.HasField("reward")
    assert "format" in r.reason and r.components[0].status == pb.STATUS_TIMEOUT


def test_unknown_verifier_is_not_found_with_known_list(stub):
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(pb.ScoreRequest(samples=[sample(GOOD)], spec=pb.RewardSpec(components=[pb.VerifierRef(name="mth")])))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'mth'" in e.value.details() and "format@1.0.0" in e.value.details()


@pytest.mark.parametrize("spec, field", [
    (pb.RewardSpec(), "samples[0].spec"),
    (pb.RewardSpec(components=[pb.VerifierRef(name="")]), "components[0].name"),
    (pb.RewardSpec(components=[pb.VerifierRef(name="format", params={"kind": "nope"})]), "params.kind"),
    (pb.RewardSpec(components=[pb.VerifierRef(name="format", params={"colour": 1})]), "params.colour"),
])
def test_malformed_spec_is_invalid_argument_naming_the_field(stub, spec, field):
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(pb.ScoreRequest(samples=[sample(GOOD)], spec=spec))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in e.value.details()


def test_missing_reference_is_invalid_argument(stub):
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="math")])
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(pb.ScoreRequest(samples=[sample("\\boxed{4}", reference="4"), sample("\\boxed{4}")], spec=spec))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "samples[1].reference" in e.value.details()


def test_oversized_message_is_resource_exhausted(tmp_path):
    from reward_server.app import start_server
    from reward_server.config import ServerConfig
    from rewards.v1 import rewards_pb2_grpc as pb_grpc

    with start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/r.db", workers=1,
                                   max_message_bytes=4096, max_samples_per_request=3)) as srv, \
            grpc.insecure_channel(srv.address) as ch:
        stub = pb_grpc.RewardServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.Score(pb.ScoreRequest(samples=[sample("x" * 10_000)], spec=FORMAT))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "4096" in e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            stub.Score(pb.ScoreRequest(samples=[sample(GOOD)] * 4, spec=FORMAT))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit is 3" in e.value.details()


def test_score_groups_streams_each_group_and_stores_every_score(stub, server):
    run = stub.StartRun(pb.StartRunRequest(name="stream-test", config={"lr": 1e-5}))
    groups = [pb.GroupRequest(run_id=run.run_id, step=3, group_id=f"g{i}", spec=FORMAT,
                              samples=[sample(GOOD if j < i else BAD, f"{i}-{j}") for j in range(4)])
              for i in range(5)]
    results = {r.group_id: r for r in stub.ScoreGroups(iter(groups))}
    assert set(results) == {f"g{i}" for i in range(5)}
    for i in range(5):
        assert [s.reward for s in results[f"g{i}"].results] == [1.0] * i + [0.0] * (4 - i)
        assert results[f"g{i}"].step == 3
    stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=3, metrics={"reward_mean": 0.5}))
    finished = stub.FinishRun(pb.FinishRunRequest(run_id=run.run_id))
    assert finished.state == "finished" and finished.last_step == 3 and finished.score_count == 20
    records = list(stub.QueryScores(pb.QueryScoresRequest(run_id=run.run_id)))
    assert len(records) == 20
    assert {r.group_id for r in records} == {f"g{i}" for i in range(5)}
    assert sum(r.reward for r in records) == sum(range(5))
    assert all(len(r.completion_sha256) == 64 and r.verifier == "format" and r.step == 3 for r in records)
    only_bad = list(stub.QueryScores(pb.QueryScoresRequest(run_id=run.run_id, step_min=3, step_max=3, limit=3)))
    assert len(only_bad) == 3


def test_score_groups_a_bad_group_is_refused_alone(stub):
    groups = [pb.GroupRequest(group_id="ok", samples=[sample(GOOD)], spec=FORMAT),
              pb.GroupRequest(group_id="broken", samples=[sample(GOOD)]),                  # no spec
              pb.GroupRequest(group_id="elsewhere", run_id="no-such-run", samples=[sample(GOOD)], spec=FORMAT),
              pb.GroupRequest(group_id="", samples=[sample(GOOD)], spec=FORMAT),
              pb.GroupRequest(group_id="ok-too", samples=[sample(GOOD)], spec=FORMAT)]
    out = {g.group_id: g for g in stub.ScoreGroups(iter(groups))}
    assert set(out) == {"ok", "broken", "elsewhere", "", "ok-too"}          # the stream went on
    for gid in ("ok", "ok-too"):
        assert not out[gid].HasField("error") and out[gid].results[0].reward == 1.0
    assert out["broken"].error.code == "INVALID_ARGUMENT" and "group[broken]" in out["broken"].error.message
    assert not out["broken"].results
    assert out["elsewhere"].error.code == "NOT_FOUND" and "no-such-run" in out["elsewhere"].error.message
    assert out[""].error.code == "INVALID_ARGUMENT" and "group_id: required" in out[""].error.message


def test_scores_for_unknown_run_are_refused(stub):
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(pb.ScoreRequest(run_id="no-such-run", samples=[sample(GOOD)], spec=FORMAT))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "no-such-run" in e.value.details()


def test_health_and_reflection(server):
    with grpc.insecure_channel(server.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", "rewards.v1.RewardService"):
            assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == \
                health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        (resp,) = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for s in resp.list_services_response.service}
        assert {"rewards.v1.RewardService", "grpc.health.v1.Health"} <= names


def test_list_verifiers_has_versions_and_params(stub):
    infos = {v.name: v for v in stub.ListVerifiers(pb.ListVerifiersRequest()).verifiers}
    assert {"format", "math"} <= set(infos)
    fmt = infos["format"]
    assert fmt.version == "2.0.0" and fmt.available
    assert {p.name for p in fmt.params} >= {"kind", "strict", "pattern"}
    assert '"kind"' in fmt.params_schema_json
    # The newest version only by default; older ones on request, kept for pinned specs and replay.
    assert infos["math"].version == "3.0.0" and infos["math"].latest
    every = [v for v in stub.ListVerifiers(pb.ListVerifiersRequest(all_versions=True)).verifiers if v.name == "math"]
    assert [(v.version, v.latest) for v in every] == [("3.0.0", True), ("2.1.0", False), ("2.0.0", False),
                                                      ("1.0.0", False)]
    assert "rounding_sig_digits" in {p.name for p in every[0].params} & {p.name for p in every[2].params}
    assert "decimal_rounding" in {p.name for p in every[3].params}
