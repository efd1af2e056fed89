"""TLS with a self-signed CA, per-team quotas with a retry hint, and the retention policy."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import grpc
import pytest
import trustme
from sqlalchemy import select, update

from reward_server.app import start_server
from reward_server.auth import KeyStore
from reward_server.config import ServerConfig
from reward_server.quotas import QuotaConfig, QuotaManager, TeamQuota, TokenBucket
from reward_server.errors import QuotaExceededError
from reward_server.store.models import RetentionEvent, ScoreRow
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

SPEC = pb.RewardSpec(components=[pb.VerifierRef(name="format")])


def test_tls_with_a_self_signed_certificate(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(cert_file, append=True)
    cert.private_key_pem.write_to_path(key_file)
    ca.cert_pem.write_to_path(ca_file)
    cfg = ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/tls.db", workers=1,
                       tls_cert_file=cert_file, tls_key_file=key_file)
    with start_server(cfg) as srv:
        creds = grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
        with grpc.secure_channel(f"localhost:{srv.port}", creds) as ch:
            r = pb_grpc.RewardServiceStub(ch).Score(pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=SPEC))
            assert r.results[0].status == pb.STATUS_OK
        with grpc.insecure_channel(f"localhost:{srv.port}") as ch:  # plaintext is refused
            with pytest.raises(grpc.RpcError) as e:
                pb_grpc.RewardServiceStub(ch).ListVerifiers(pb.ListVerifiersRequest(), timeout=3)
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_token_bucket_arithmetic():
    b = TokenBucket(rate=10, capacity=20)
    assert b.wait_for(20) == 0
    b.tokens -= 20
    assert b.wait_for(5) == pytest.approx(0.5)       # 5 tokens at 10/s
    b.refill(b.stamp + 0.3)
    assert b.tokens == pytest.approx(3) and b.wait_for(5) == pytest.approx(0.2)
    assert TokenBucket(rate=1, capacity=4).wait_for(100) == 0  # larger than the capacity: admitted when full


def test_quota_manager_rejects_with_retry_hint_and_keeps_teams_apart():
    q = QuotaManager(QuotaConfig(default=TeamQuota(samples_per_s=10, samples_burst=10, max_streams=1),
                                 teams={"big": TeamQuota(samples_per_s=1000)}))
    with q.admit("a", 10):
        pass
    with pytest.raises(QuotaExceededError) as e:
        with q.admit("a", 5):
            pass
    assert 0.3 < e.value.retry_after_s <= 0.5 and "10 samples/s" in str(e.value)
    with q.admit("b", 10):  # another team has its own bucket
        pass
    with q.admit("big", 500):
        pass
    with q.stream("a"):
        with pytest.raises(QuotaExceededError, match="streams open"):
            with q.stream("a"):
                pass
    with q.stream("a"):  # released
        pass


def test_service_quota_is_resource_exhausted_with_trailer(tmp_path):
    cfg = ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/q.db", workers=1, auth="on",
                       quotas=QuotaConfig(default=TeamQuota(samples_per_s=20, samples_burst=20, max_streams=1)))
    with start_server(cfg) as srv, grpc.insecure_channel(srv.address) as ch:
        key, _ = KeyStore(srv.store).create("small")
        other, _ = KeyStore(srv.store).create("other")
        stub = pb_grpc.RewardServiceStub(ch)
        md = (("authorization", f"Bearer {key}"),)
        req = pb.ScoreRequest(samples=[pb.Sample(completion="x")] * 20, spec=SPEC)
        stub.Score(req, metadata=md)
        with pytest.raises(grpc.RpcError) as e:
            stub.Score(req, metadata=md)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "retry in" in e.value.details()
        trailer = dict(e.value.trailing_metadata())
        assert 0 < float(trailer["retry-after-s"]) <= 1.0
        stub.Score(req, metadata=(("authorization", f"Bearer {other}"),))  # other teams are unaffected
        time.sleep(float(trailer["retry-after-s"]))
        stub.Score(req, metadata=md)  # the hint was right

        # a stream over quota is throttled, not failed: 100 samples at 20/s take about 4 s
        groups = [pb.GroupRequest(group_id=f"g{i}", spec=SPEC, samples=[pb.Sample(completion="x")] * 10)
                  for i in range(10)]
        t0 = time.monotonic()
        results = list(stub.ScoreGroups(iter(groups), metadata=md))
        assert len(results) == 10 and time.monotonic() - t0 > 3.0

        # a second concurrent stream of the same team is refused
        gate = threading.Event()

        def slow():
            yield groups[0]
            gate.wait(5)

        first = stub.ScoreGroups(slow(), metadata=md)
        next(first)
        with pytest.raises(grpc.RpcError) as e:
            list(stub.ScoreGroups(iter(groups[:1]), metadata=md))
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "streams open" in e.value.details()
        gate.set()
        list(first)


def test_retention_drops_texts_keeps_rows_and_records_the_pass(tmp_path):
    url = f"sqlite:///{tmp_path}/ret.db"
    with start_server(ServerConfig(port=0, database_url=url, workers=1)) as srv, \
            grpc.insecure_channel(srv.address) as ch:
        stub = pb_grpc.RewardServiceStub(ch)
        stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion=f"old {i}") for i in range(3)], spec=SPEC))
        srv.store.flush()
        with srv.store.session() as s, s.begin():
            s.execute(update(ScoreRow).values(created_at=datetime.now(timezone.utc) - timedelta(days=40)))
        stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="new")], spec=SPEC))
        n = srv.store.drop_texts_before(datetime.now(timezone.utc) - timedelta(days=30))
        assert n == 3
        rows = list(stub.QueryScores(pb.QueryScoresRequest(include_texts=True)))
        assert len(rows) == 4  # nothing deleted
        old = [r for r in rows if r.texts_dropped]
        assert len(old) == 3 and all(r.completion == "" and len(r.completion_sha256) == 64 and r.reward == 0.0
                                     for r in old)
        assert [r.completion for r in rows if not r.texts_dropped] == ["new"]
        with srv.store.session() as s:
            (event,) = s.scalars(select(RetentionEvent)).all()
            assert event.rows_affected == 3


def test_history_filters_by_time_and_reward(stub):
    stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion="<think>a</think><answer>b</answer>"),
                                        pb.Sample(completion="no")], spec=SPEC))
    now = datetime.now(timezone.utc)
    got = list(stub.QueryScores(pb.QueryScoresRequest(reward_min=0.5)))
    assert [r.reward for r in got] == [1.0]
    assert len(list(stub.QueryScores(pb.QueryScoresRequest(created_before=(now - timedelta(hours=1)).isoformat())))) == 0
    assert len(list(stub.QueryScores(pb.QueryScoresRequest(created_after=(now - timedelta(hours=1)).isoformat())))) == 2
    with pytest.raises(grpc.RpcError) as e:
        list(stub.QueryScores(pb.QueryScoresRequest(created_after="yesterday")))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "created_after" in e.value.details()
