"""Issue #12: a team's quota holds across replicas that share one PostgreSQL database.

Two real server processes (`python -m reward_server`) on their own loopback ports, one
fresh PostgreSQL database, one team with a burst of N samples and a slow refill: samples
sent alternately to both replicas are admitted about N times in all, not 2N.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from sqlalchemy import create_engine, select

from reward_server.auth import KeyStore
from reward_server.config import ServerConfig
from reward_server.quotas import QuotaConfig, QuotaManager, TeamQuota
from reward_server.store import ScoreStore
from reward_server.store.models import QuotaBucket
from reward_server.errors import QuotaExceededError
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.reward_server.test_store_postgres import pg_url  # noqa: F401  (fixture: a fresh database)

BURST = 6
CONFIG = f"""
auth = "on"
workers = 1
[quotas]
backend = "auto"
[quotas.default]
samples_per_s = 0.01
samples_burst = {BURST}
"""
SPEC = pb.RewardSpec(components=[pb.VerifierRef(name="format")])


def _replica(tmp: Path, name: str, url: str) -> tuple[subprocess.Popen, int]:
    ready = tmp / f"{name}.port"
    cfg = tmp / "server.toml"
    cfg.write_text(CONFIG)
    env = {**os.environ, "REWARD_SERVER_REPLICA_ID": name}
    proc = subprocess.Popen([sys.executable, "-m", "reward_server", "--config", str(cfg), "--database-url", url,
                             "--port", "0", "--ready-file", str(ready)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / f"{name}.log", "w"))
    deadline = time.monotonic() + 60
    while not (ready.exists() and ready.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"replica {name} did not start: {(tmp / f'{name}.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, int(ready.read_text().strip())


def test_two_replica_processes_give_a_team_its_quota_once(pg_url, tmp_path):  # noqa: F811
    subprocess.run([sys.executable, "-m", "reward_server", "db", "upgrade", "--database-url", pg_url],
                   check=True, capture_output=True)
    store = ScoreStore(pg_url)
    key, _ = KeyStore(store).create("team-a")
    other, _ = KeyStore(store).create("team-b")
    store.close()
    procs = [_replica(tmp_path, name, pg_url) for name in ("r1", "r2")]
    try:
        admitted, refused, seen = 0, 0, set()
        stubs = []
        for _, port in procs:
            ch = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(ch).result(timeout=20)
            stubs.append(pb_grpc.RewardServiceStub(ch))
        md = (("authorization", f"Bearer {key}"),)
        req = pb.ScoreRequest(samples=[pb.Sample(completion="<think>a</think><answer>1</answer>")], spec=SPEC)
        for i in range(2 * BURST):
            stub = stubs[i % 2]
            try:
                stub.Score(req, metadata=md)
                admitted += 1
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.details()
                assert "samples/s" in e.details()
                refused += 1
            seen.add(stub.GetStats(pb.GetStatsRequest(), metadata=md).replica)
        # the refill (0.01/s) may add at most one token during the test
        assert BURST <= admitted <= BURST + 1 and refused == 2 * BURST - admitted, (admitted, refused)
        assert seen == {"r1", "r2"}                               # both replicas answered
        # another team has its own bucket on the same database
        stubs[0].Score(req, metadata=(("authorization", f"Bearer {other}"),))
    finally:
        for p, _ in procs:
            p.terminate()
        for p, _ in procs:
            p.wait(timeout=40)
    with create_engine(pg_url).connect() as c:
        teams = {r.team for r in c.execute(select(QuotaBucket.team))}
    assert teams == {"team-a", "team-b"}


def test_the_database_backend_shares_one_bucket_between_managers(pg_url):  # noqa: F811
    """Two managers (as two replicas would hold) on one database take from one bucket; the
    memory backend (the embedded default) gives each its own."""
    from reward_server.app import quota_manager
    subprocess.run([sys.executable, "-m", "reward_server", "db", "upgrade", "--database-url", pg_url],
                   check=True, capture_output=True)
    quotas = QuotaConfig(default=TeamQuota(samples_per_s=0.01, samples_burst=4))
    store = ScoreStore(pg_url)
    try:
        cfg = ServerConfig(database_url=pg_url, quotas=quotas)
        m1, m2 = quota_manager(cfg, store), quota_manager(cfg, store)
        with m1.admit("t", 3):
            pass
        with pytest.raises(QuotaExceededError, match="over its 0.01 samples/s quota") as e:
            with m2.admit("t", 2):
                pass
        assert e.value.retry_after_s > 50        # one token at 0.01/s
        with m2.admit("t", 1):
            pass
        mem = ServerConfig(database_url=pg_url, quotas=quotas.model_copy(update={"backend": "memory"}))
        a, b = quota_manager(mem, store), quota_manager(mem, store)
        with a.admit("t", 4), b.admit("t", 4):  # each process-local manager has its own burst
            pass
    finally:
        store.close()


def test_sqlite_keeps_quotas_in_the_process(tmp_path):
    from reward_server.app import quota_manager
    store = ScoreStore(f"sqlite:///{tmp_path}/q.db")
    try:
        m = quota_manager(ServerConfig(database_url=f"sqlite:///{tmp_path}/q.db"), store)
        assert type(m.buckets).__name__ == "MemoryBuckets"
        shared = quota_manager(ServerConfig(database_url=f"sqlite:///{tmp_path}/q.db",
                                            quotas=QuotaConfig(backend="database",
                                                               default=TeamQuota(samples_per_s=0.01,
                                                                                 samples_burst=2))), store)
        with shared.admit("t", 2):
            pass
        with pytest.raises(QuotaExceededError):
            with shared.admit("t", 1):
                pass
    finally:
        store.close()
