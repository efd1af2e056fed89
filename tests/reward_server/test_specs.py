"""Reward specs over a real server: gates, logged-only parts, stored versioned specs,
routing by task, the result cache and dry runs."""
from __future__ import annotations

import grpc
import pytest

from reward_server.app import start_server
from reward_server.config import load_config
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

R1_RIGHT = "<think>6*7</think><answer>42</answer>"
R1_WRONG = "<think>6*7</think><answer>41</answer>"
NO_FORMAT = "it is \\boxed{42}"


def ref(name, weight=1.0, **kw):
    params = kw.pop("params", None)
    r = pb.VerifierRef(name=name, weight=weight, weight_set=True, **kw)
    if params:
        r.params.update(params)
    return r


def sample(completion, reference="42", task=None, id=""):
    s = pb.Sample(id=id, completion=completion)
    s.reference.string_value = reference
    if task:
        s.metadata.update({"task": task})
    return s


GATED = pb.RewardSpec(components=[ref("format", 0.0, gate=True), ref("math", 1.0)])


def test_gate_zeroes_the_total_until_it_passes(stub):
    res = stub.Score(pb.ScoreRequest(samples=[sample(R1_RIGHT), sample(R1_WRONG), sample(NO_FORMAT)],
                                     spec=GATED)).results
    assert [r.reward for r in res] == [1.0, 0.0, 0.0]
    assert all(r.status == pb.STATUS_OK for r in res)
    assert "gate format" in res[2].reason
    assert res[2].components[1].reward == 1.0  # math was right; the gate closed the total
    assert res[0].components[0].gate and not res[0].components[1].gate


def test_stored_spec_versions_and_use_by_name(stub):
    v1 = stub.PutSpec(pb.PutSpecRequest(name="math-r1", spec=GATED, description="format gate + math"))
    assert v1.version == 1
    assert stub.PutSpec(pb.PutSpecRequest(name="math-r1", spec=GATED)).version == 1  # same body: same version
    v2_spec = pb.RewardSpec(components=[ref("format", 0.2), ref("math", 0.8)])
    assert stub.PutSpec(pb.PutSpecRequest(name="math-r1", spec=v2_spec)).version == 2
    (r,) = stub.Score(pb.ScoreRequest(samples=[sample(NO_FORMAT)], spec=pb.RewardSpec(name="math-r1"))).results
    assert (r.reward, r.spec_name, r.spec_version) == (pytest.approx(0.8), "math-r1", 2)
    (r,) = stub.Score(pb.ScoreRequest(samples=[sample(NO_FORMAT)], spec=pb.RewardSpec(name="math-r1@1"))).results
    assert (r.reward, r.spec_version) == (0.0, 1)
    assert [s.name for s in stub.ListSpecs(pb.ListSpecsRequest()).specs] == ["math-r1"]
    assert stub.GetSpec(pb.GetSpecRequest(name="math-r1", version=1)).spec == GATED


def test_stored_spec_errors(stub):
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(pb.ScoreRequest(samples=[sample(R1_RIGHT)], spec=pb.RewardSpec(name="nope")))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "'nope'" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        stub.PutSpec(pb.PutSpecRequest(name="Bad Name", spec=GATED))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("name:")
    with pytest.raises(grpc.RpcError) as e:
        stub.PutSpec(pb.PutSpecRequest(name="x", spec=pb.RewardSpec(components=[ref("math", params={"rel_tol": "a"})])))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "params.rel_tol" in e.value.details()


def test_routing_by_task(stub):
    spec = pb.RewardSpec(components=[ref("format", 0.0, gate=True)])
    spec.routes["math"].components.append(ref("math"))
    spec.routes["open"].components.append(ref("format", params={"kind": "length", "max_chars": 30}))
    res = stub.Score(pb.ScoreRequest(samples=[sample(R1_RIGHT, task="math"), sample(R1_WRONG, task="open")],
                                     spec=spec)).results
    assert [[c.name for c in r.components] for r in res] == [["format", "math"], ["format", "format"]]
    assert [r.reward for r in res] == [1.0, 0.0]
    with pytest.raises(grpc.RpcError) as e:
        stub.Score(pb.ScoreRequest(samples=[sample(R1_RIGHT, task="code")], spec=spec))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "samples[0].metadata.task" in e.value.details()
    spec.routes["*"].components.append(ref("math"))
    (r,) = stub.Score(pb.ScoreRequest(samples=[sample(R1_RIGHT, task="code")], spec=spec)).results
    assert r.reward == 1.0


def test_cache_hits_are_marked_stored_and_counted(stub, server):
    spec = pb.RewardSpec(components=[ref("math")])
    run = stub.StartRun(pb.StartRunRequest(name="cache"))
    group = [sample("\\boxed{42}", id=str(i)) for i in range(6)]  # a GRPO group repeating one completion
    (first,) = [g for g in stub.ScoreGroups(iter([pb.GroupRequest(run_id=run.run_id, group_id="g", spec=spec,
                                                                   samples=group[:1])]))]
    (rest,) = [g for g in stub.ScoreGroups(iter([pb.GroupRequest(run_id=run.run_id, group_id="h", spec=spec,
                                                                  samples=group[1:])]))]
    assert not first.results[0].components[0].cached
    assert all(r.components[0].cached and r.reward == 1.0 for r in rest.results)
    stats = stub.GetStats(pb.GetStatsRequest())
    assert stats.cache_hits >= 5 and 0 < stats.cache_hit_rate <= 1
    server.store.flush()
    with server.store.session() as s:
        from sqlalchemy import func, select

        from reward_server.store import ScoreRow
        assert s.scalar(select(func.count()).where(ScoreRow.run_id == run.run_id, ScoreRow.cached)) == 5


def test_dry_run_scores_without_logging(stub, server):
    before = server.store.rows_written + server.store.pending
    resp = stub.DryRun(pb.DryRunRequest(sample=sample(R1_RIGHT), spec=GATED))
    assert resp.result.reward == 1.0 and len(resp.result.components) == 2
    server.store.flush()
    assert server.store.rows_written == before
    with pytest.raises(grpc.RpcError) as e:
        stub.DryRun(pb.DryRunRequest(sample=sample(R1_RIGHT), spec=pb.RewardSpec(components=[ref("maths")])))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_specs_from_the_config_file(tmp_path):
    cfg = tmp_path / "server.toml"
    cfg.write_text(f'''
port = 0
database_url = "sqlite:///{tmp_path}/r.db"
workers = 1
[specs.math-r1-v3]
description = "R1: format gate, then correctness"
[[specs.math-r1-v3.components]]
name = "format"
weight = 0
gate = true
[[specs.math-r1-v3.components]]
name = "math"
''')
    with start_server(load_config(cfg)) as srv, grpc.insecure_channel(srv.address) as ch:
        stub = pb_grpc.RewardServiceStub(ch)
        (r,) = stub.Score(pb.ScoreRequest(samples=[sample(NO_FORMAT)], spec=pb.RewardSpec(name="math-r1-v3"))).results
        assert (r.reward, r.spec_version) == (0.0, 1)
    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text().replace('name = "math"', 'name = "maths"'))
    with pytest.raises(Exception, match="specs.math-r1-v3.*maths"):
        start_server(load_config(bad))
