"""Teams and keys over a real server with auth on: who may call what, and whose history."""
from __future__ import annotations

import subprocess
import sys
import time

import grpc
import pytest

from reward_server.app import start_server
from reward_server.auth import Authenticator, KeyStore
from reward_server.config import ServerConfig
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

SPEC = pb.RewardSpec(components=[pb.VerifierRef(name="format")])


@pytest.fixture
def secured(tmp_path, monkeypatch):
    monkeypatch.setattr(Authenticator, "CACHE_TTL_S", 0.2)
    url = f"sqlite:///{tmp_path}/auth.db"
    with start_server(ServerConfig(port=0, database_url=url, workers=1, auth="on")) as srv:
        keys = KeyStore(srv.store)
        a, _ = keys.create("team-a")
        b, _ = keys.create("team-b")
        admin, _ = keys.create("platform", admin=True)
        with grpc.insecure_channel(srv.address) as ch:
            yield srv, pb_grpc.RewardServiceStub(ch), {"a": a, "b": b, "admin": admin}, keys


def md(key):
    return (("authorization", f"Bearer {key}"),)


def _code(fn):
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def test_missing_unknown_and_revoked_keys_are_unauthenticated(secured):
    srv, stub, k, keys = secured
    req = pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=SPEC)
    code, msg = _code(lambda: stub.Score(req))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "authorization: Bearer" in msg
    code, _ = _code(lambda: stub.Score(req, metadata=md(k["a"][:-2] + "xx")))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert stub.Score(req, metadata=md(k["a"])).results[0].status == pb.STATUS_OK
    keys.revoke(k["a"].split("_")[1])
    time.sleep(0.3)  # the verified-key cache's TTL
    code, msg = _code(lambda: stub.Score(req, metadata=md(k["a"])))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in msg


def test_rotation_issues_a_working_key_and_retires_the_old_one(secured):
    srv, stub, k, keys = secured
    new, row = keys.rotate(k["b"].split("_")[1])
    assert row.team == "team-b"
    time.sleep(0.3)
    stub.ListRuns(pb.ListRunsRequest(), metadata=md(new))
    code, msg = _code(lambda: stub.ListRuns(pb.ListRunsRequest(), metadata=md(k["b"])))
    assert code == grpc.StatusCode.UNAUTHENTICATED and row.prefix in msg


def test_team_b_cannot_see_team_a_run(secured):
    srv, stub, k, _ = secured
    run = stub.StartRun(pb.StartRunRequest(name="a's run"), metadata=md(k["a"]))
    assert run.team == "team-a"
    list(stub.ScoreGroups(iter([pb.GroupRequest(run_id=run.run_id, group_id="g", spec=SPEC,
                                                samples=[pb.Sample(completion="secret answer")])]),
                          metadata=md(k["a"])))
    for call in (lambda: stub.GetRun(pb.GetRunRequest(run_id=run.run_id), metadata=md(k["b"])),
                 lambda: stub.ListSteps(pb.ListStepsRequest(run_id=run.run_id), metadata=md(k["b"])),
                 lambda: stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=1), metadata=md(k["b"])),
                 lambda: stub.Score(pb.ScoreRequest(run_id=run.run_id, samples=[pb.Sample(completion="x")],
                                                    spec=SPEC), metadata=md(k["b"]))):
        code, msg = _code(call)
        assert code == grpc.StatusCode.NOT_FOUND and run.run_id in msg
    # history is scoped: B's query by A's run id streams nothing; B may not name A's team
    assert list(stub.QueryScores(pb.QueryScoresRequest(run_id=run.run_id), metadata=md(k["b"]))) == []
    code, _ = _code(lambda: list(stub.QueryScores(pb.QueryScoresRequest(team="team-a"), metadata=md(k["b"]))))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    rows = list(stub.QueryScores(pb.QueryScoresRequest(run_id=run.run_id), metadata=md(k["a"])))
    assert len(rows) == 1 and rows[0].team == "team-a"
    code, _ = _code(lambda: stub.GetScore(pb.GetScoreRequest(score_id=rows[0].score_id), metadata=md(k["b"])))
    assert code == grpc.StatusCode.NOT_FOUND
    assert stub.GetScore(pb.GetScoreRequest(score_id=rows[0].score_id),
                         metadata=md(k["a"])).completion == "secret answer"
    assert [r.run_id for r in stub.ListRuns(pb.ListRunsRequest(), metadata=md(k["b"])).runs] == []
    # an admin may choose the team
    runs = stub.ListRuns(pb.ListRunsRequest(team="*"), metadata=md(k["admin"])).runs
    assert [r.run_id for r in runs] == [run.run_id]
    # B starting A's run id makes B's own run, as for an id nobody holds: nothing says A has one
    mine = stub.StartRun(pb.StartRunRequest(run_id=run.run_id), metadata=md(k["b"]))
    assert (mine.team, mine.score_count) == ("team-b", 0)


def test_admin_calls_need_an_admin_key(secured):
    srv, stub, k, _ = secured
    put = pb.PutSpecRequest(name="shared", spec=SPEC)
    code, msg = _code(lambda: stub.PutSpec(put, metadata=md(k["a"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "admin" in msg
    assert stub.PutSpec(put, metadata=md(k["admin"])).version == 1


def test_health_needs_no_key(secured):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    srv, *_ = secured
    with grpc.insecure_channel(srv.address) as ch:
        assert health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest()).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_keys_cli_and_rewardctl_with_a_key(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"
    r = subprocess.run([sys.executable, "-m", "reward_server", "keys", "create", "--team", "ops", "--database-url", url],
                       capture_output=True, text=True, check=True)
    key = r.stdout.strip()
    assert key.startswith("rk_") and "shown once" in r.stderr
    listing = subprocess.run([sys.executable, "-m", "reward_server", "keys", "list", "--database-url", url],
                             capture_output=True, text=True, check=True).stdout
    assert key.split("_")[1] in listing and key.split("_")[2] not in listing  # the secret is never shown again
    with start_server(ServerConfig(port=0, database_url=url, workers=1, auth="on")) as srv:
        ctl = [sys.executable, "-m", "rewardctl"]
        ok = subprocess.run([*ctl, "--api-key", key, "runs", "--server", srv.address], capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        bad = subprocess.run([*ctl, "runs", "--server", srv.address], capture_output=True, text=True)
        assert bad.returncode != 0 and "UNAUTHENTICATED" in bad.stderr


def test_auth_defaults(tmp_path):
    assert not ServerConfig(database_url="sqlite:///x.db").auth_enabled
    assert ServerConfig(database_url="postgresql+psycopg://u@h/db").auth_enabled
    assert not ServerConfig(database_url="postgresql+psycopg://u@h/db", auth="off").auth_enabled
    assert ServerConfig(database_url="sqlite:///x.db", auth="on").auth_enabled


def test_spaced_copies_of_a_key_share_one_cache_entry(tmp_path):
    """A key with spaces before or after it (`authorization: Bearer   rk_...  `) is the same
    key, but each spelling was cached apart: a team could fill the verified-key cache
    (10,000 entries) with copies of its own key, and then no other team's key was cached:
    each of their calls was a database lookup, in the one turn all key lookups share."""
    import asyncio

    with start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/k.db", workers=1, auth="on")) as srv:
        key, _ = KeyStore(srv.store).create("team-a")
        auth = Authenticator(KeyStore(srv.store))

        async def spellings() -> set:
            return {await auth.principal_for_key(" " * i + key + " " * j) for i in range(5) for j in range(5)}

        assert {p.team for p in asyncio.run(spellings())} == {"team-a"}
        assert len(auth._cache) == 1
