"""Issue #17, the server part: what one team can do to another on a shared server.

Real parts: a server on 127.0.0.1:0 with auth on over SQLite and (where the finding is about
the database) a fresh PostgreSQL database; teams with real keys; the real `reward-server`
command line in a subprocess.
"""
from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
import time

import grpc
import pytest
from sqlalchemy import create_engine, text

from reward_server.app import start_server
from reward_server.auth import Authenticator, KeyStore
from reward_server.config import ServerConfig
from reward_server.quotas import QuotaConfig, TeamQuota
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.reward_server.test_store_postgres import ADMIN_URL, pg_url  # noqa: F401  (fixture)

SPEC = pb.RewardSpec(components=[pb.VerifierRef(name="format")])


def md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def code_of(fn) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details() or ""


class Tenants:
    def __init__(self, srv, stub, keys: dict[str, str], store_keys: KeyStore):
        self.srv, self.stub, self.k, self.keys = srv, stub, keys, store_keys

    def score_b(self, timeout_s: float = 10.0) -> float:
        """Team B's one-sample Score; its latency in seconds."""
        t0 = time.perf_counter()
        res = self.stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="<think>x</think><answer>1</answer>")],
                                              spec=SPEC), metadata=md(self.k["b"]), timeout=timeout_s)
        assert res.results[0].status == pb.STATUS_OK
        return time.perf_counter() - t0


def _tenants(url: str, **config) -> Tenants:
    srv = start_server(ServerConfig(port=0, database_url=url, workers=1, auth="on", grace_s=2, cache_ttl_s=0,
                                    auto_migrate=True, **config))
    ks = KeyStore(srv.store)
    keys = {"a": ks.create("team-a")[0], "b": ks.create("team-b")[0], "ops": ks.create("ops")[0],
            "ops-admin": ks.create("ops", admin=True)[0]}
    ch = grpc.insecure_channel(srv.address)
    t = Tenants(srv, pb_grpc.RewardServiceStub(ch), keys, ks)
    t.channel = ch
    return t


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/iso.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def tenants(db_url):
    t = _tenants(db_url)
    yield t
    t.channel.close()
    t.srv.stop(grace_s=1)


@pytest.fixture
def sqlite_tenants(tmp_path):
    t = _tenants(f"sqlite:///{tmp_path}/iso.db")
    yield t
    t.channel.close()
    t.srv.stop(grace_s=1)


# -- 3: history streams and database connections -----------------------------------------
def test_unread_history_streams_do_not_starve_other_teams(tenants):
    t = tenants
    prompt = "y" * 16_384  # 1,200 rows of 16 KiB: more than the transport buffers ahead of an unread client
    for _ in range(2):
        t.stub.Score(pb.ScoreRequest(samples=[pb.Sample(prompt=prompt, completion=str(i)) for i in range(600)],
                                     spec=SPEC), metadata=md(t.k["a"]))
    req = pb.QueryScoresRequest(include_texts=True)
    held, refused = [], []
    for _ in range(24):  # more than the database pool holds (5 + 10 overflow)
        it = t.stub.QueryScores(req, metadata=md(t.k["a"]), timeout=60)
        try:
            next(it)  # one record read, then the stream is left unread
            held.append(it)
        except grpc.RpcError as e:
            refused.append((e.code(), e.details()))
    assert all(c == grpc.StatusCode.RESOURCE_EXHAUSTED and "history streams" in m for c, m in refused), refused
    assert len(held) >= 1
    worst = max(t.score_b(timeout_s=5) for _ in range(5))
    assert worst < 2.0
    run = t.stub.StartRun(pb.StartRunRequest(name="b"), metadata=md(t.k["b"]), timeout=5)
    t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=1, metrics={"x": 1.0}), metadata=md(t.k["b"]), timeout=5)
    for it in held:
        it.cancel()
    # a stream read to the end returns every row: paging does not lose or repeat any
    rows = list(t.stub.QueryScores(pb.QueryScoresRequest(), metadata=md(t.k["a"])))
    assert [r.score_id for r in rows] == sorted({r.score_id for r in rows}) and len(rows) == 1200


def test_a_cancelled_or_dropped_history_stream_ends_quietly(sqlite_tenants, caplog):
    """A client cancelling a QueryScores stream, or dropping it unread, is no server error:
    grpc logged ERROR tracebacks (ExecuteBatchError) from the handler for each one."""
    t = sqlite_tenants
    for _ in range(2):  # more rows than the transport buffers ahead of a client that stops reading
        t.stub.Score(pb.ScoreRequest(samples=[pb.Sample(prompt="y" * 16_384, completion=str(i)) for i in range(600)],
                                     spec=SPEC), metadata=md(t.k["a"]))
    caplog.set_level(logging.DEBUG)
    req = pb.QueryScoresRequest(include_texts=True)
    for _ in range(3):
        held = [t.stub.QueryScores(req, metadata=md(t.k["a"])) for _ in range(4)]
        for it in held:
            next(it)
        time.sleep(0.3)  # the server is blocked sending to a client that does not read
        for it in held[:2]:
            it.cancel()
        del it, held  # the others are dropped unread: the channel cancels them
    servicer = t.srv._parts.servicer
    deadline = time.monotonic() + 10
    while servicer._history_streams and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert not servicer._history_streams  # every stream's slot was given back
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    # a real failure of a stream still logs as one
    caplog.clear()

    def broken(**_):
        raise RuntimeError("the store broke")
        yield

    t.srv.store.score_pages = broken
    code, msg = code_of(lambda: list(t.stub.QueryScores(req, metadata=md(t.k["a"]))))
    assert code == grpc.StatusCode.INTERNAL and "RuntimeError" in msg
    assert any(r.levelno >= logging.ERROR and "internal error" in r.getMessage() for r in caplog.records)


# -- 5: rows the database cannot store are refused up front, per sample ---------------------
def test_nul_and_overlong_fields_are_refused_and_the_writer_keeps_going(tenants):
    t = tenants
    # A completion is the policy's output: a NUL in it is scored (a refusal would be an escape
    # from its penalty) and stored with the NUL escaped; the caller's own fields are refused.
    scored = t.stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="a\x00b")], spec=SPEC),
                          metadata=md(t.k["a"]), timeout=5)
    assert scored.results[0].status == pb.STATUS_OK
    code, msg = code_of(lambda: t.stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="x", prompt="p\x00")],
                                                             spec=SPEC), metadata=md(t.k["a"]), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "prompt" in msg
    s = pb.Sample(completion="x")
    s.reference.string_value = "\x00"
    code, msg = code_of(lambda: t.stub.Score(pb.ScoreRequest(samples=[s], spec=SPEC), metadata=md(t.k["a"]), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "reference" in msg
    run = t.stub.StartRun(pb.StartRunRequest(name="a"), metadata=md(t.k["a"]))
    groups = [pb.GroupRequest(run_id=run.run_id, group_id="g" * 200, samples=[pb.Sample(completion="x")], spec=SPEC),
              pb.GroupRequest(run_id=run.run_id, group_id="ok", samples=[pb.Sample(completion="x\x00")], spec=SPEC),
              pb.GroupRequest(run_id=run.run_id, group_id="fine", samples=[pb.Sample(completion="x")], spec=SPEC)]
    t0 = time.perf_counter()
    out = list(t.stub.ScoreGroups(iter(groups), metadata=md(t.k["a"]), timeout=10))
    assert time.perf_counter() - t0 < 2.0
    errors = {r.group_id[:8]: r.error for r in out if r.HasField("error")}
    assert errors["gggggggg"].code == "INVALID_ARGUMENT" and "group_id" in errors["gggggggg"].message
    assert "ok" not in errors  # a NUL in a completion is scored like any other text
    assert sorted(r.group_id for r in out if not r.HasField("error")) == ["fine", "ok"]
    for bad in (pb.StartRunRequest(name="n\x00"), pb.StartRunRequest(name="n" * 201)):
        code, msg = code_of(lambda: t.stub.StartRun(bad, metadata=md(t.k["a"])))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "name" in msg
    code, msg = code_of(lambda: t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=1,
                                                                 metrics={"loss": float("nan")}),
                                               metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "metrics" in msg
    assert t.score_b(timeout_s=2) < 1.0
    assert t.srv.store.write_errors == 0


def test_a_row_the_database_refuses_fails_alone_and_at_once(db_url):
    """Defence behind the up-front checks: a refused batch is not retried for seconds."""
    from reward_server.store import ScoreStore
    from tests.reward_server.test_store_postgres import _row

    store = ScoreStore(db_url)
    try:
        bad = dict(_row(0, None), group_id="", completion_text="x\x00" if "postgres" in db_url else "x",
                   verifier="v" * 70 if "postgres" in db_url else "math", run_id=None, step=None)
        bad["request_id"] = "r" * 40 if "postgres" in db_url else "r"
        good = dict(_row(1, None), group_id="", run_id=None, step=None)
        t0 = time.perf_counter()
        f_bad, f_good = store.add_scores([bad]), store.add_scores([good])
        f_good.result(timeout=10)
        if "postgres" in db_url:
            with pytest.raises(Exception) as e:
                f_bad.result(timeout=10)
            assert "SELECT" not in str(e.value) and "INSERT" not in str(e.value)
        assert time.perf_counter() - t0 < 1.0
    finally:
        store.close()


# -- 8: ownership on every call --------------------------------------------------------------
def test_an_admin_read_does_not_open_another_teams_run_to_writes(sqlite_tenants):
    t = sqlite_tenants
    run = t.stub.StartRun(pb.StartRunRequest(name="b's"), metadata=md(t.k["b"]))
    assert t.stub.GetRun(pb.GetRunRequest(run_id=run.run_id), metadata=md(t.k["ops-admin"])).team == "team-b"
    for key in ("ops", "ops-admin"):
        for call in (lambda: t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=1), metadata=md(t.k[key])),
                     lambda: t.stub.FinishRun(pb.FinishRunRequest(run_id=run.run_id, state="failed"),
                                              metadata=md(t.k[key])),
                     lambda: t.stub.Score(pb.ScoreRequest(run_id=run.run_id, samples=[pb.Sample(completion="x")],
                                                          spec=SPEC), metadata=md(t.k[key]))):
            code, _ = code_of(call)
            assert code == grpc.StatusCode.NOT_FOUND
        out = list(t.stub.ScoreGroups(iter([pb.GroupRequest(run_id=run.run_id, group_id="g", spec=SPEC,
                                                            samples=[pb.Sample(completion="x")])]),
                                      metadata=md(t.k[key])))
        assert out[0].error.code == "NOT_FOUND"
    got = t.stub.GetRun(pb.GetRunRequest(run_id=run.run_id), metadata=md(t.k["b"]))
    assert got.state == "running" and got.score_count == 0 and got.last_step == -1


# -- 9a: run ids are per team: nothing tells a team whether another team holds an id ------
def _run_traffic(t, key: str, completion: str, metric: float) -> None:
    """Team `key` starts run "exp-1", logs step 0 and scores group "g" of step 0 into it."""
    m = md(t.k[key])
    run = t.stub.StartRun(pb.StartRunRequest(run_id="exp-1", name=key), metadata=m)
    assert run.run_id == "exp-1" and run.team == f"team-{key}" and run.score_count == 0
    t.stub.LogStep(pb.LogStepRequest(run_id="exp-1", step=0, metrics={"m": metric}), metadata=m)
    (res,) = t.stub.ScoreGroups(iter([pb.GroupRequest(run_id="exp-1", group_id="g", step=0, spec=SPEC,
                                                      samples=[pb.Sample(completion=completion)])]), metadata=m)
    assert not res.HasField("error"), res.error
    t.stub.Score(pb.ScoreRequest(run_id="exp-1", step=1, spec=SPEC, samples=[pb.Sample(completion=completion)]),
                 metadata=m)


def test_two_teams_each_have_their_own_run_of_one_id(tenants):
    t = tenants
    _run_traffic(t, "a", "<think>a</think><answer>1</answer>", 1.0)
    _run_traffic(t, "b", "b's answer", 2.0)  # the same run id, step and group id as A's
    for key, completion, metric in (("a", "<think>a</think><answer>1</answer>", 1.0), ("b", "b's answer", 2.0)):
        m = md(t.k[key])
        got = t.stub.GetRun(pb.GetRunRequest(run_id="exp-1"), metadata=m)
        assert (got.team, got.name, got.score_count, got.last_step) == (f"team-{key}", key, 2, 0)
        steps = t.stub.ListSteps(pb.ListStepsRequest(run_id="exp-1"), metadata=m).steps
        assert [(s.step, dict(s.metrics)) for s in steps] == [(0, {"m": metric})]
        rows = list(t.stub.QueryScores(pb.QueryScoresRequest(run_id="exp-1", include_texts=True), metadata=m))
        assert [(r.team, r.step, r.completion) for r in rows] == [(f"team-{key}", 0, completion),
                                                                  (f"team-{key}", 1, completion)]
        assert [r.run_id for r in t.stub.ListRuns(pb.ListRunsRequest(), metadata=m).runs] == ["exp-1"]
    t.stub.FinishRun(pb.FinishRunRequest(run_id="exp-1", state="failed"), metadata=md(t.k["a"]))
    assert t.stub.GetRun(pb.GetRunRequest(run_id="exp-1"), metadata=md(t.k["b"])).state == "running"


def test_starting_another_teams_run_id_makes_the_callers_own_run(tenants):
    t = tenants
    t.stub.StartRun(pb.StartRunRequest(run_id="b-only", name="b's"), metadata=md(t.k["b"]))
    t.stub.LogStep(pb.LogStepRequest(run_id="b-only", step=5), metadata=md(t.k["b"]))
    code, _ = code_of(lambda: t.stub.GetRun(pb.GetRunRequest(run_id="b-only"), metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.NOT_FOUND  # exactly as for an id nobody holds
    code, _ = code_of(lambda: t.stub.GetRun(pb.GetRunRequest(run_id="nobody's"), metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.NOT_FOUND
    run = t.stub.StartRun(pb.StartRunRequest(run_id="b-only", name="a's"), metadata=md(t.k["a"]))
    assert (run.team, run.name, run.last_step, run.score_count, run.state) == ("team-a", "a's", -1, 0, "running")
    again = t.stub.StartRun(pb.StartRunRequest(run_id="b-only", name="a's"), metadata=md(t.k["a"]))
    assert again.team == "team-a"  # a resumed run: still A's own
    assert t.stub.GetRun(pb.GetRunRequest(run_id="b-only"), metadata=md(t.k["b"])).last_step == 5
    # a team key may not name another team's run
    code, _ = code_of(lambda: t.stub.GetRun(pb.GetRunRequest(run_id="b-only", team="team-b"), metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = code_of(lambda: t.stub.ListSteps(pb.ListStepsRequest(run_id="b-only", team="team-b"),
                                               metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_admin_reads_name_the_team_of_a_shared_run_id(tenants):
    t = tenants
    _run_traffic(t, "a", "a's answer", 1.0)
    _run_traffic(t, "b", "b's answer", 2.0)
    t.stub.StartRun(pb.StartRunRequest(run_id="only-b"), metadata=md(t.k["b"]))
    admin = md(t.k["ops-admin"])
    # "exp-1" is held by two teams and not by the admin's: the read must say which
    code, msg = code_of(lambda: t.stub.GetRun(pb.GetRunRequest(run_id="exp-1"), metadata=admin))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "team-a" in msg and "team-b" in msg and "team" in msg
    code, _ = code_of(lambda: t.stub.ListSteps(pb.ListStepsRequest(run_id="exp-1"), metadata=admin))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    got = t.stub.GetRun(pb.GetRunRequest(run_id="exp-1", team="team-b"), metadata=admin)
    assert (got.team, got.name, got.score_count) == ("team-b", "b", 2)
    steps = t.stub.ListSteps(pb.ListStepsRequest(run_id="exp-1", team="team-b"), metadata=admin).steps
    assert [dict(s.metrics) for s in steps] == [{"m": 2.0}]
    rows = list(t.stub.QueryScores(pb.QueryScoresRequest(run_id="exp-1", team="team-b", include_texts=True),
                                   metadata=admin))
    assert {(r.team, r.completion) for r in rows} == {("team-b", "b's answer")}
    rows = list(t.stub.QueryScores(pb.QueryScoresRequest(run_id="exp-1", team="*"), metadata=admin))
    assert sorted(r.team for r in rows) == ["team-a", "team-a", "team-b", "team-b"]  # each record names its team
    # one team holds the id: the admin need not name it
    assert t.stub.GetRun(pb.GetRunRequest(run_id="only-b"), metadata=admin).team == "team-b"
    code, _ = code_of(lambda: t.stub.GetRun(pb.GetRunRequest(run_id="exp-1", team="team-c"), metadata=admin))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = code_of(lambda: t.stub.StartRun(pb.StartRunRequest(run_id="r-0", replay_of="exp-1"), metadata=admin))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    replay = t.stub.StartRun(pb.StartRunRequest(run_id="r-0", replay_of="exp-1", replay_of_team="team-a"),
                             metadata=admin)
    assert (replay.team, replay.replay_of) == ("ops", "exp-1")
    # the admin's own team's run of that id comes first
    t.stub.StartRun(pb.StartRunRequest(run_id="exp-1", name="ops"), metadata=admin)
    assert t.stub.GetRun(pb.GetRunRequest(run_id="exp-1"), metadata=admin).team == "ops"
    # a replay of B's run by the admin names it by team: the replay run is the admin's own
    replay = t.stub.StartRun(pb.StartRunRequest(run_id="r-1", replay_of="only-b"), metadata=admin)
    assert (replay.team, replay.replay_of) == ("ops", "only-b")


# -- 9 and 14: database failures are UNAVAILABLE and say nothing about the database --------
def test_a_database_outage_is_unavailable_and_leaks_no_address(pg_url):  # noqa: F811
    t = _tenants(pg_url)
    name = pg_url.rsplit("/", 1)[1]
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        t.score_b()
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        fresh = t.keys  # a key not yet in the server's cache needs the database
        for call in (lambda: t.stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=SPEC),
                                          metadata=md(t.k["b"]), timeout=20),
                     lambda: t.stub.ListRuns(pb.ListRunsRequest(), metadata=md("rk_00000000_nope"), timeout=20),
                     lambda: t.stub.ListRuns(pb.ListRunsRequest(), metadata=md(t.k["a"]), timeout=20)):
            code, msg = code_of(call)
            assert code == grpc.StatusCode.UNAVAILABLE, (code, msg)
            for leak in ("5432", "127.0.0.1", "SELECT", "INSERT", "psycopg", name):
                assert leak not in msg, msg
        assert fresh
    finally:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    time.sleep(0.5)
    t.score_b(timeout_s=20)  # and it recovers by itself
    t.channel.close()
    t.srv.stop(grace_s=1)


def test_internal_errors_do_not_echo_exception_text(sqlite_tenants):
    t = sqlite_tenants
    # a run config whose numbers JSON cannot hold is refused, not echoed back as an internal error
    req = pb.StartRunRequest(name="x")
    req.config.update({"lr": float("inf")})
    code, msg = code_of(lambda: t.stub.StartRun(req, metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "config" in msg


# -- 10: a revoked key stops working on a stream opened before ----------------------------
def test_a_revoked_key_stops_an_open_stream(sqlite_tenants, monkeypatch):
    monkeypatch.setattr(Authenticator, "CACHE_TTL_S", 0.2)
    t = sqlite_tenants
    outbox: queue.Queue = queue.Queue()

    def requests():
        while (g := outbox.get()) is not None:
            yield g

    run = t.stub.StartRun(pb.StartRunRequest(name="a"), metadata=md(t.k["a"]))
    stream = t.stub.ScoreGroups(requests(), metadata=md(t.k["a"]), timeout=20)
    outbox.put(pb.GroupRequest(run_id=run.run_id, group_id="g0", spec=SPEC, samples=[pb.Sample(completion="x")]))
    assert next(stream).group_id == "g0"
    t.keys.revoke(t.k["a"].split("_")[1])
    time.sleep(0.4)
    for i in range(1, 4):
        outbox.put(pb.GroupRequest(run_id=run.run_id, group_id=f"g{i}", spec=SPEC, samples=[pb.Sample(completion="x")]))
    outbox.put(None)
    with pytest.raises(grpc.RpcError) as e:
        for r in stream:
            assert False, f"scored after revocation: {r.group_id}"
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in e.value.details()
    t.srv.store.flush()
    with t.srv.store.session() as s:
        assert s.execute(text("select count(*) from scores")).scalar() == 1


def test_a_revoked_key_stops_an_open_history_stream(sqlite_tenants, monkeypatch):
    monkeypatch.setattr(Authenticator, "CACHE_TTL_S", 0.2)
    t = sqlite_tenants
    for _ in range(2):
        t.stub.Score(pb.ScoreRequest(samples=[pb.Sample(prompt="y" * 16_384, completion=str(i)) for i in range(600)],
                                     spec=SPEC), metadata=md(t.k["a"]))
    stream = t.stub.QueryScores(pb.QueryScoresRequest(include_texts=True), metadata=md(t.k["a"]), timeout=30)
    next(stream)
    t.keys.revoke(t.k["a"].split("_")[1])
    time.sleep(0.4)
    got = 1
    with pytest.raises(grpc.RpcError) as e:
        for _ in stream:
            got += 1
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and got < 1200


# -- 13: a re-sent group with other content ---------------------------------------------------
def test_a_resent_group_with_other_content_is_refused(tenants):
    t = tenants
    run = t.stub.StartRun(pb.StartRunRequest(name="a"), metadata=md(t.k["a"]))

    def send(completions):
        g = pb.GroupRequest(run_id=run.run_id, group_id="g", step=3, spec=SPEC,
                            samples=[pb.Sample(completion=c) for c in completions])
        (r,) = list(t.stub.ScoreGroups(iter([g]), metadata=md(t.k["a"])))
        return r

    first = send(["<think>a</think><answer>1</answer>", "nope"])
    assert not first.HasField("error") and [x.reward for x in first.results] == [1.0, 0.0]
    again = send(["<think>a</think><answer>1</answer>", "nope"])  # identical: answered, stored once
    assert not again.HasField("error") and [x.reward for x in again.results] == [1.0, 0.0]
    other = send(["nope", "<think>a</think><answer>1</answer>"])
    assert other.error.code == "ALREADY_EXISTS" and "group" in other.error.message
    fewer = send(["<think>a</think><answer>1</answer>"])
    assert fewer.error.code == "ALREADY_EXISTS"
    rows = list(t.stub.QueryScores(pb.QueryScoresRequest(run_id=run.run_id), metadata=md(t.k["a"])))
    assert [r.reward for r in rows] == [1.0, 0.0]


# -- 14: secrets in output, and the CLI's --config ---------------------------------------------
def test_the_database_password_is_never_printed(pg_url, caplog):  # noqa: F811
    url = pg_url.replace("postgres@", "postgres:s3cr3t-pw@")
    r = subprocess.run([sys.executable, "-m", "reward_server", "db", "upgrade", "--database-url", url],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "s3cr3t-pw" not in r.stdout + r.stderr and "revision" in r.stdout
    with caplog.at_level(logging.INFO):
        srv = start_server(ServerConfig(port=0, database_url=url, workers=1, auth="on", grace_s=1))
        srv.stop(grace_s=1)
    assert "listening" in caplog.text and "s3cr3t-pw" not in caplog.text


def test_keys_create_uses_the_config_files_database(tmp_path):
    cfg = tmp_path / "server.toml"
    cfg.write_text(f'database_url = "sqlite:///{tmp_path}/configured.db"\n')
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    r = subprocess.run([sys.executable, "-m", "reward_server", "--config", str(cfg), "keys", "create", "--team", "t"],
                       capture_output=True, text=True, cwd=cwd, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not (cwd / "rewards.db").exists() and (tmp_path / "configured.db").exists()


# -- 4: validation cost is bounded before parsing, and off the event loop ----------------------
def test_huge_specs_are_refused_before_parsing(sqlite_tenants):
    t = sqlite_tenants
    spec = pb.RewardSpec()
    for i in range(150_000):
        spec.routes[f"t{i}"].components.add(name="format")
    req = pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=spec)
    t0 = time.perf_counter()
    pb.ScoreRequest.FromString(req.SerializeToString())  # what any server must do: encode and decode it
    codec_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    code, msg = code_of(lambda: t.stub.Score(req, metadata=md(t.k["a"]), timeout=30))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "spec: 3" in msg and "bytes" in msg  # from the wire
    assert time.perf_counter() - t0 < 3 * codec_s + 0.5  # decoding and validating the routes took seconds more
    # a reference that is a Struct of 100,000 keys: refused on the wire bytes, before decoding
    bomb = pb.Sample(completion="x")
    bomb.reference.struct_value.update({f"k{i}": i for i in range(100_000)})
    code, msg = code_of(lambda: t.stub.Score(pb.ScoreRequest(samples=[bomb], spec=SPEC), metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "Structs" in msg
    # a message of a million repeated scalar fields: the wire walk gives up early, not late
    junk = pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=SPEC).SerializeToString() + b"\x10\x01" * 1_000_000
    raw_stub = t.channel.unary_unary("/rewards.v1.RewardService/Score")
    t0 = time.perf_counter()
    code, msg = code_of(lambda: raw_stub(junk, metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "fields" in msg and time.perf_counter() - t0 < 1.0
    # a big message of plain texts and string references is not what the wire check refuses
    plain = [pb.Sample(completion="<think>a</think><answer>1</answer>", prompt="p" * 200) for _ in range(2000)]
    for p in plain:
        p.reference.string_value = "r" * 100
    assert len(t.stub.Score(pb.ScoreRequest(samples=plain, spec=SPEC), metadata=md(t.k["a"])).results) == 2000
    routes = pb.RewardSpec()
    for i in range(100):
        routes.routes[f"t{i}"].components.add(name="format")
    many = pb.RewardSpec(components=[pb.VerifierRef(name="format")] * 3000)
    code, msg = code_of(lambda: t.stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=many),
                                             metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "components" in msg
    code, msg = code_of(lambda: t.stub.DryRun(pb.DryRunRequest(sample=pb.Sample(completion="x"), spec=many),
                                              metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    code, msg = code_of(lambda: t.stub.PutSpec(pb.PutSpecRequest(name="big", spec=spec),
                                               metadata=md(t.k["ops-admin"])))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "spec" in msg
    code, msg = code_of(lambda: t.stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=routes),
                                             metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "100 routes" in msg  # small: counted after decoding


def test_validating_big_legal_requests_does_not_stall_other_teams(tmp_path):
    """Team A sends requests that are costly to validate and over its quota: they are
    refused before validation once A is over, and validation never blocks B's calls."""
    quotas = QuotaConfig(teams={"team-a": TeamQuota(samples_per_s=0.01, samples_burst=1)})
    t = _tenants(f"sqlite:///{tmp_path}/v.db", quotas=quotas)
    per_sample = [pb.RewardSpec(components=[pb.VerifierRef(name="format", weight=float(w))] * 8) for w in range(50)]
    req = pb.ScoreRequest(samples=[pb.Sample(completion=f"x{i}", spec=per_sample[i % 50]) for i in range(1024)])
    t.stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=SPEC), metadata=md(t.k["a"]))  # A is at its quota
    stop = threading.Event()
    refusals: list[float] = []

    def flood():
        with grpc.insecure_channel(t.srv.address) as ch:
            stub = pb_grpc.RewardServiceStub(ch)
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    stub.Score(req, metadata=md(t.k["a"]), timeout=30)
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.details()
                    refusals.append(time.perf_counter() - t0)

    try:
        alone = sorted(t.score_b() for _ in range(5))[2]
        threads = [threading.Thread(target=flood) for _ in range(2)]
        for th in threads:
            th.start()
        time.sleep(0.5)
        worst = max(t.score_b() for _ in range(10))
        stop.set()
        for th in threads:
            th.join()
        assert worst < 3 * alone + 0.25, (alone, worst)
        assert len(refusals) > 5 and sorted(refusals)[len(refusals) // 2] < 0.1  # refused before validation
    finally:
        stop.set()
        t.channel.close()
        t.srv.stop(grace_s=1)


# -- 7: quotas meter cost -----------------------------------------------------------------------
def test_dry_runs_and_components_and_bookkeeping_are_metered(tmp_path):
    quotas = QuotaConfig(teams={"team-a": TeamQuota(samples_per_s=0.01, samples_burst=2, components_per_s=0.01,
                                                    components_burst=4, bookkeeping_calls_per_s=0.01,
                                                    bookkeeping_burst=3)})
    t = _tenants(f"sqlite:///{tmp_path}/q.db", quotas=quotas)
    try:
        dry = pb.DryRunRequest(sample=pb.Sample(completion="x"), spec=SPEC)
        t.stub.DryRun(dry, metadata=md(t.k["a"]))
        t.stub.DryRun(dry, metadata=md(t.k["a"]))
        code, msg = code_of(lambda: t.stub.DryRun(dry, metadata=md(t.k["a"])))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "samples" in msg
        t.stub.DryRun(dry, metadata=md(t.k["b"]))  # team B is not metered by A's quota
        # components: one sample of 4 components fills the bucket; the next is refused
        t2 = _tenants(f"sqlite:///{tmp_path}/q2.db", quotas=QuotaConfig(teams={"team-a": TeamQuota(
            components_per_s=0.01, components_burst=4)}))
        try:
            four = pb.RewardSpec(components=[pb.VerifierRef(name="format")] * 4)
            t2.stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=four), metadata=md(t2.k["a"]))
            code, msg = code_of(lambda: t2.stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=SPEC),
                                                      metadata=md(t2.k["a"])))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "components" in msg
        finally:
            t2.channel.close()
            t2.srv.stop(grace_s=1)
        run = t.stub.StartRun(pb.StartRunRequest(name="a"), metadata=md(t.k["a"]))
        t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=1), metadata=md(t.k["a"]))
        t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=2), metadata=md(t.k["a"]))
        code, msg = code_of(lambda: t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=3),
                                                   metadata=md(t.k["a"])))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "run bookkeeping" in msg
        code, _ = code_of(lambda: t.stub.StartRun(pb.StartRunRequest(name="b"), metadata=md(t.k["a"])))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        t.channel.close()
        t.srv.stop(grace_s=1)


def test_stored_bytes_are_metered(tmp_path):
    quotas = QuotaConfig(teams={"team-a": TeamQuota(stored_bytes_per_min=60_000, stored_bytes_burst=100_000)})
    t = _tenants(f"sqlite:///{tmp_path}/q.db", quotas=quotas)
    try:
        two = pb.RewardSpec(components=[pb.VerifierRef(name="format")] * 2)
        big = pb.ScoreRequest(samples=[pb.Sample(completion="z" * 30_000)], spec=two)  # ~60 KB stored
        t.stub.Score(big, metadata=md(t.k["a"]))
        code, msg = code_of(lambda: t.stub.Score(big, metadata=md(t.k["a"])))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "stored bytes" in msg
    finally:
        t.channel.close()
        t.srv.stop(grace_s=1)


def test_listing_verifiers_costs_the_event_loop_little(sqlite_tenants):
    """ListVerifiers (no quota: any key may ask) rebuilt every verifier version's params JSON
    schema on the event loop at each call, ~150 ms for all versions: a team calling it in a
    loop took the loop that answers every team. The fixed part is built once."""
    t = sqlite_tenants
    req = pb.ListVerifiersRequest(all_versions=True)
    first = t.stub.ListVerifiers(req, metadata=md(t.k["a"]))
    t0 = time.perf_counter()
    for _ in range(20):
        again = t.stub.ListVerifiers(req, metadata=md(t.k["a"]))
    assert time.perf_counter() - t0 < 1.0
    assert again == first and any(v.params_schema_json.startswith("{") for v in again.verifiers)


def test_a_steps_metrics_cannot_grow_past_the_limit_by_merging(tenants):
    """LogStep checks one call's metrics (1,024 names, 64 KiB as JSON), but calls to the same
    step merge: a team sending new names to one step grew its row without bound (each call
    re-reading and re-writing it) and ListSteps' answer with it. The merged row is held to
    the same limits."""
    t = tenants
    run = t.stub.StartRun(pb.StartRunRequest(name="grow"), metadata=md(t.k["a"]))
    t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=1, metrics={f"a{i}": 1.0 for i in range(1000)}),
                   metadata=md(t.k["a"]))
    code, msg = code_of(lambda: t.stub.LogStep(pb.LogStepRequest(
        run_id=run.run_id, step=1, metrics={f"b{i}": 1.0 for i in range(1000)}), metadata=md(t.k["a"])))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "once merged" in msg, msg
    t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=1, metrics={"a1": 2.0, "new": 3.0}),
                   metadata=md(t.k["a"]))  # a merge within the limits still works
    (step,) = t.stub.ListSteps(pb.ListStepsRequest(run_id=run.run_id), metadata=md(t.k["a"])).steps
    assert len(step.metrics) == 1001 and step.metrics["a1"] == 2.0


def test_list_steps_answers_a_bounded_page(sqlite_tenants):
    """A run's steps are unbounded (LogStep has no quota by default; each step may hold 1,024
    metrics, 64 KiB), and ListSteps used to load them all and build one answer on the event
    loop: 10,000 steps of 1,024 metrics took 11.7 s of the loop that answers every team (a
    235 MB message). An answer holds at most 1,000 steps and 65,536 metrics; the rest come
    through next_page_token."""
    t = sqlite_tenants
    run = t.stub.StartRun(pb.StartRunRequest(name="long"), metadata=md(t.k["a"]))
    for step in range(1001):
        t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=step, metrics={"loss": float(step)}),
                       metadata=md(t.k["a"]))
    wide = {f"m{i}": 1.0 for i in range(1024)}
    for step in range(1001, 1101):  # 100 steps of 1,024 metrics: 64 of them fill a page
        t.stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=step, metrics=wide), metadata=md(t.k["a"]))
    pages, token = [], ""
    while True:
        page = t.stub.ListSteps(pb.ListStepsRequest(run_id=run.run_id, page_token=token), metadata=md(t.k["a"]))
        pages.append(page)
        assert len(page.steps) <= 1000 and sum(len(s.metrics) for s in page.steps) <= 65_536
        token = page.next_page_token
        if not token:
            break
    steps = [s.step for p in pages for s in p.steps]
    assert steps == list(range(1101))                      # every step once, in order
    # 1,000 narrow steps; then step 1000 and 63 wide ones (64,513 metrics: one more passes 65,536); the rest
    assert [len(p.steps) for p in pages] == [1000, 64, 37]
    small = t.stub.ListSteps(pb.ListStepsRequest(run_id=run.run_id, limit=10), metadata=md(t.k["a"]))
    assert [s.step for s in small.steps] == list(range(10)) and small.next_page_token
    for forged in ("step 5", "9999999999999999999", "-9999999999999999999"):  # the last two: past int64
        with pytest.raises(grpc.RpcError) as e:
            t.stub.ListSteps(pb.ListStepsRequest(run_id=run.run_id, page_token=forged), metadata=md(t.k["a"]))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "next_page_token" in e.value.details()
