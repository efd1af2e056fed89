"""Issue #12: a team's quota holds across replicas that share one PostgreSQL database.

Two real server processes (`python -m reward_server`) on their own loopback ports, one
fresh PostgreSQL database, one team with a burst of N samples and a slow refill: samples
sent alternately to both replicas are admitted about N times in all, not 2N. A team's one
stream slot is held across replicas too, and lapses when the replica holding it is killed.
"""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from sqlalchemy import create_engine, select

from reward_server.auth import KeyStore
from reward_server.config import ServerConfig
from reward_server.quotas import DatabaseBackend, Hold, MemoryBackend, QuotaConfig, QuotaManager, TeamQuota
from reward_server.store import ScoreStore
from reward_server.store.models import QuotaBucket, QuotaLease
from reward_server.errors import QuotaExceededError
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.reward_server.test_store_postgres import pg_url  # noqa: F401  (fixture: a fresh database)

BURST = 6
LEASE_TTL_S = 2
CONFIG = f"""
auth = "on"
workers = 1
[quotas]
backend = "auto"
lease_ttl_s = {LEASE_TTL_S}
[quotas.default]
samples_per_s = 0.01
samples_burst = {BURST}
max_streams = 1
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
        md_b = (("authorization", f"Bearer {other}"),)
        stubs[0].Score(req, metadata=md_b)

        # max_streams = 1 across replicas: team-b's open stream on r1 keeps r2 from opening one
        sends: queue.Queue = queue.Queue()
        group = pb.GroupRequest(group_id="g0", spec=SPEC, samples=req.samples)
        held = stubs[0].ScoreGroups(iter(sends.get, None), metadata=md_b)
        sends.put(group)
        assert next(held).group_id == "g0"                       # r1 holds the slot now
        with pytest.raises(grpc.RpcError) as e:
            list(stubs[1].ScoreGroups(iter([group]), metadata=md_b))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "1 streams open" in e.value.details()
        # r1 dies without closing its stream: its lease lapses within lease_ttl_s
        procs[0][0].kill()
        procs[0][0].wait(timeout=10)
        t0 = time.monotonic()
        while True:
            try:
                list(stubs[1].ScoreGroups(iter([pb.GroupRequest(group_id="g1", spec=SPEC, samples=req.samples)]),
                                          metadata=md_b))
                break
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.details()
                assert time.monotonic() - t0 < LEASE_TTL_S + 5, "a killed replica's stream slot never lapsed"
                time.sleep(0.2)
        sends.put(None)
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
        m1.close()
        m2.close()
    finally:
        store.close()


def test_sqlite_keeps_quotas_in_the_process(tmp_path):
    from reward_server.app import quota_manager
    store = ScoreStore(f"sqlite:///{tmp_path}/q.db")
    try:
        m = quota_manager(ServerConfig(database_url=f"sqlite:///{tmp_path}/q.db"), store)
        assert isinstance(m.backend, MemoryBackend)
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


def test_counters_are_leases_shared_by_replicas_and_renewed_while_held(pg_url):  # noqa: F811
    """max_streams and max_inflight_samples count every replica's slots; a slot held longer
    than lease_ttl_s still counts (its replica renews it), and a dead replica's slot lapses."""
    subprocess.run([sys.executable, "-m", "reward_server", "db", "upgrade", "--database-url", pg_url],
                   check=True, capture_output=True)
    quotas = QuotaConfig(default=TeamQuota(max_streams=1, max_inflight_samples=4), lease_ttl_s=1)
    store = ScoreStore(pg_url)
    m1, m2 = (QuotaManager(quotas, DatabaseBackend(store.engine, 1, f"r{i}")) for i in (1, 2))
    try:
        with m1.admit("t", 3):
            with pytest.raises(QuotaExceededError, match="3 samples already in flight .limit 4."):
                with m2.admit("t", 2):
                    pass
            with m2.admit("t", 1):
                pass
        with m2.admit("t", 4):  # released
            pass
        with m1.stream("t"):
            time.sleep(2.5)  # > lease_ttl_s: renewed, so it still counts
            with pytest.raises(QuotaExceededError, match="1 streams open .limit 1.; close one"):
                with m2.stream("t"):
                    pass
            with m2.stream("other-team"):
                pass
        with m2.stream("t"):
            pass
        # a replica that stops renewing (as a crashed one does) loses its slot after the TTL
        dead = DatabaseBackend(store.engine, 1, "dead")
        refusal, lease = dead.admit("t", [], Hold("streams", 1, 1, "streams open", 1.0))
        assert refusal is None and lease
        dead.close()
        with pytest.raises(QuotaExceededError, match="streams open"):
            with m2.stream("t"):
                pass
        time.sleep(1.5)
        with m2.stream("t"):  # the lapsed lease is removed as it would refuse
            pass
        with create_engine(pg_url).connect() as c:
            assert c.execute(select(QuotaLease.id)).all() == []  # every slot released or lapsed and removed
    finally:
        m1.close()
        m2.close()
        store.close()



def test_a_quota_connection_the_database_dropped_fails_no_admission_and_loses_no_slot(pg_url):
    """The quota engine does no checkout ping (a round trip per call): a pooled connection
    the database dropped (a restart, an idle timeout) is replaced within the call, and the
    slots held and given back still add up."""
    from sqlalchemy import text

    store = ScoreStore(pg_url)
    m = QuotaManager(QuotaConfig(default=TeamQuota(max_inflight_samples=4)), DatabaseBackend(store.engine, 30, "r1"))
    try:
        with m.admit("t", 1):
            pass
        with store.engine.connect() as c:  # drops every other connection, the quota engine's pooled one included
            killed = c.execute(text("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                                    "where datname = current_database() and pid <> pg_backend_pid()")).scalar()
        assert killed >= 1
        with m.admit("t", 3):
            with pytest.raises(QuotaExceededError, match="3 samples already in flight .limit 4."):
                with m.admit("t", 2):
                    pass
        with m.admit("t", 4):  # the 3 were given back
            pass
    finally:
        m.backend.close()
        store.close()


def test_a_sandbox_charge_or_lease_renewal_on_a_dropped_connection_is_retried(pg_url):
    """Without a checkout ping, every quota call meets a connection the database dropped:
    the sandbox charge made after a request's rows are stored (an error there fails a
    request already scored and stored) and the lease renewal are retried on a fresh one
    like admissions and releases."""
    from sqlalchemy import text

    store = ScoreStore(pg_url)
    backend = DatabaseBackend(store.engine, 30, "r1")
    m = QuotaManager(QuotaConfig(default=TeamQuota(sandbox_seconds_per_min=60, max_inflight_samples=4)), backend)
    def drop_every_other_connection() -> None:
        with store.engine.connect() as c:
            killed = c.execute(text("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                                    "where datname = current_database() and pid <> pg_backend_pid()")).scalar()
        assert killed >= 1

    try:
        m.charge_sandbox("t", 1.0)
        with m.admit("t", 1):
            drop_every_other_connection()
            m.charge_sandbox("t", 1.0)
            drop_every_other_connection()
            backend.renew()
    finally:
        backend.close()
        store.close()
