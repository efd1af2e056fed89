"""Two replicas sharing one PostgreSQL database behind client-side round robin."""
from __future__ import annotations

import subprocess
import sys

import grpc
from sqlalchemy import create_engine, func, select

from reward_server.app import start_server
from reward_server.auth import KeyStore
from reward_server.config import ServerConfig
from reward_server.store import ScoreRow
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.reward_server.test_store_postgres import pg_url  # noqa: F401  (fixture: a fresh database)

SPEC = pb.RewardSpec(components=[pb.VerifierRef(name="format")])


def test_two_replicas_round_robin_share_history(pg_url):  # noqa: F811
    subprocess.run([sys.executable, "-m", "reward_server", "db", "upgrade", "--database-url", pg_url],
                   check=True, capture_output=True)
    cfg = dict(database_url=pg_url, workers=1)  # auth is on by default on PostgreSQL
    with start_server(ServerConfig(port=0, **cfg)) as r1, start_server(ServerConfig(port=0, **cfg)) as r2:
        key, _ = KeyStore(r1.store).create("team-a")
        md = (("authorization", f"Bearer {key}"),)
        target = f"ipv4:127.0.0.1:{r1.port},127.0.0.1:{r2.port}"
        with grpc.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin")]) as ch:
            grpc.channel_ready_future(ch).result(timeout=10)
            stub = pb_grpc.RewardServiceStub(ch)
            run = stub.StartRun(pb.StartRunRequest(name="replicated"), metadata=md)
            for step in range(20):
                stub.Score(pb.ScoreRequest(run_id=run.run_id, step=step, spec=SPEC,
                                           samples=[pb.Sample(completion="x")] * 5), metadata=md)
            r1.store.flush()
            r2.store.flush()
            # both replicas served calls, and either one answers for the whole run
            assert r1.store.rows_written > 0 and r2.store.rows_written > 0
            assert r1.store.rows_written + r2.store.rows_written == 100
            for _ in range(2):
                got = stub.GetRun(pb.GetRunRequest(run_id=run.run_id), metadata=md)
                assert got.score_count == 100 and got.team == "team-a"
    engine = create_engine(pg_url)
    with engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(ScoreRow)) == 100
    engine.dispose()


def test_replica_refuses_an_old_schema_with_the_command_to_run(pg_url):  # noqa: F811
    r = subprocess.run([sys.executable, "-m", "reward_server", "--port", "0", "--database-url", pg_url],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "reward-server db upgrade" in r.stderr
