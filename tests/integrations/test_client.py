"""The integrations' gRPC client against real servers: API key, the quota's retry-after-s
hint, reconnecting after UNAVAILABLE, and a clear error when nothing answers."""
from __future__ import annotations

import threading
import time

import pytest

from rlvr_integrations.client import (
    RewardServiceCallError,
    RewardServiceUnavailable,
    ServiceClient,
    build_spec,
    make_sample,
    to_value,
)
from reward_server.app import start_server
from reward_server.auth import KeyStore
from reward_server.config import ServerConfig
from reward_server.quotas import QuotaConfig, TeamQuota
from tests.conftest import free_port

FORMAT = build_spec(["format"])


def test_spec_and_reference_forms():
    assert build_spec("math-r1@2").name == "math-r1@2"
    spec = build_spec('{"components": [{"name": "format", "weight": 0}, "math"], "task_key": "data_source"}')
    assert [c.name for c in spec.components] == ["format", "math"]
    assert spec.components[0].weight_set and spec.components[0].weight == 0 and not spec.components[1].weight_set
    assert spec.task_key == "data_source"
    with pytest.raises(ValueError, match="unknown component keys"):
        build_spec([{"name": "math", "wieght": 1}])
    assert to_value(12345678901234567).string_value == "12345678901234567"  # no double rounding
    assert to_value({"answer": "7"}).struct_value["answer"] == "7"
    assert not to_value(None).HasField("kind")


def test_api_key_and_quota_retry_after(tmp_path):
    cfg = ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/q.db", workers=1, auth="on",
                       quotas=QuotaConfig(default=TeamQuota(samples_per_s=20, samples_burst=20)))
    with start_server(cfg) as srv:
        key, _ = KeyStore(srv.store).create("team-a")
        with ServiceClient(srv.address, api_key="") as anonymous:
            with pytest.raises(RewardServiceCallError, match="UNAUTHENTICATED.*api_key"):
                anonymous.score([make_sample("0", "x")], FORMAT)
        with ServiceClient(srv.address, api_key=key, max_retries=3) as client:
            batch = [make_sample(str(i), "x") for i in range(20)]
            assert len(client.score(batch, FORMAT)) == 20
            t0 = time.monotonic()
            results = client.score(batch, FORMAT)  # over quota: waits for the server's hint, then succeeds
            assert len(results) == 20 and client.retries >= 1
            assert 0.3 < time.monotonic() - t0 < 5
        with ServiceClient(srv.address, api_key=key, max_retries=0) as impatient:
            with pytest.raises(RewardServiceCallError, match="RESOURCE_EXHAUSTED.*retry in"):
                impatient.score(batch, FORMAT)


def test_unreachable_is_a_clear_error():
    address = f"127.0.0.1:{free_port()}"
    with ServiceClient(address, api_key="", max_retries=2, backoff_s=0.05) as client:
        t0 = time.monotonic()
        with pytest.raises(RewardServiceUnavailable, match=f"{address} is unreachable after 3 attempts"):
            client.score([make_sample("0", "x")], FORMAT)
        assert time.monotonic() - t0 < 10


def test_unavailable_is_retried_until_the_server_is_up(tmp_path):
    port = free_port()
    servers = []

    def start_later():
        time.sleep(0.6)
        servers.append(start_server(ServerConfig(host="127.0.0.1", port=port, workers=1,
                                                 database_url=f"sqlite:///{tmp_path}/late.db")))

    t = threading.Thread(target=start_later)
    t.start()
    try:
        with ServiceClient(f"127.0.0.1:{port}", api_key="", max_retries=8, backoff_s=0.2,
                           max_backoff_s=1.0) as client:
            (r,) = client.score([make_sample("0", "x")], FORMAT)
            assert r.status == "OK" and client.retries >= 1
    finally:
        t.join()
        for s in servers:
            s.stop()


def test_tls_with_a_ca_file(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    for i, pem in enumerate(cert.cert_chain_pems):
        pem.write_to_path(cert_file, append=i > 0)
    cert.private_key_pem.write_to_path(key_file)
    ca.cert_pem.write_to_path(ca_file)
    cfg = ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/tls.db", workers=1,
                       tls_cert_file=cert_file, tls_key_file=key_file)
    with start_server(cfg) as srv:
        with ServiceClient(f"localhost:{srv.port}", api_key="", tls_ca=str(ca_file)) as client:
            (r,) = client.score([make_sample("0", "x")], FORMAT)
            assert r.status == "OK"
        with ServiceClient(f"localhost:{srv.port}", api_key="", tls_ca="", max_retries=0) as plaintext:
            with pytest.raises(RewardServiceUnavailable, match="plaintext"):
                plaintext.score([make_sample("0", "x")], FORMAT)
