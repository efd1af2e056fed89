"""The one retry policy against real servers on loopback: UNAVAILABLE through a server
restart, a quota's retry-after-s, and a refusal that is raised at once with its code."""
from __future__ import annotations

import logging
import threading
import time
from concurrent import futures

import grpc
import pytest
from rewards.v1 import rewards_pb2_grpc as pb_grpc

from reward_server.app import start_server
from reward_server.auth import KeyStore
from reward_server.config import ServerConfig
from reward_server.quotas import QuotaConfig, TeamQuota
from rewards_client import (RewardCallError, RewardClient, RewardServiceCallError, RewardServiceError,
                            RewardServiceUnavailable, make_channel, make_sample)
from tests.conftest import free_port

R1 = "<think>2+2=4</think><answer>4</answer>"


def test_a_call_retries_through_a_server_restart(tmp_path):
    port = free_port()
    cfg = ServerConfig(host="127.0.0.1", port=port, workers=1, database_url=f"sqlite:///{tmp_path}/r.db")
    said: list[str] = []
    servers = [start_server(cfg)]
    with RewardClient(f"127.0.0.1:{port}", backoff_s=0.1, max_backoff_s=0.5, outage_timeout_s=30,
                      log=said.append) as client:
        run_id = client.start_run("restart")
        servers[0].stop()                                  # the service goes away ...

        def restart_later():
            time.sleep(1.0)
            servers.append(start_server(cfg))              # ... and comes back on the same port
        t = threading.Thread(target=restart_later)
        t.start()
        try:
            t0 = time.monotonic()
            (s,) = client.score([make_sample("0", R1, reference="4")], ["math"], run_id=run_id, step=1)
            assert s.status == "OK" and s.reward == 1.0
            assert 0.9 < time.monotonic() - t0 < 20 and client.retries >= 1
        finally:
            t.join()
            for srv in servers[1:]:
                srv.stop()
    assert said[0].startswith(f"reward service at 127.0.0.1:{port} unreachable during Score (step 1); "
                              f"waiting for it"), said
    assert said[-1].startswith("reward service back after") and said[-1].endswith("resuming Score (step 1)")


def test_unavailable_past_the_window_is_raised_naming_the_address():
    address = f"127.0.0.1:{free_port()}"
    with RewardClient(address, max_retries=2, backoff_s=0.05) as client:
        t0 = time.monotonic()
        with pytest.raises(RewardServiceUnavailable, match=f"{address} is unreachable after 3 attempts"):
            client.list_verifiers()
        assert time.monotonic() - t0 < 10 and client.retries == 2


def test_a_quota_refusal_is_retried_after_the_servers_retry_after(tmp_path):
    cfg = ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/q.db", workers=1, auth="on",
                       quotas=QuotaConfig(default=TeamQuota(samples_per_s=20, samples_burst=20)))
    with start_server(cfg) as srv:
        key, _ = KeyStore(srv.store).create("team-a")
        batch = [make_sample(str(i), "x") for i in range(20)]
        with RewardClient(srv.address, api_key=key, max_retries=3) as client:
            assert len(client.score(batch, ["format"])) == 20          # the burst
            t0 = time.monotonic()
            scores = client.score(batch, ["format"])                   # refused, waits, scored
            assert len(scores) == 20 and client.retries >= 1
            assert 0.3 < time.monotonic() - t0 < 5
        with RewardClient(srv.address, api_key=key, max_retries=0) as impatient:
            with pytest.raises(RewardCallError) as e:
                impatient.score(batch, ["format"])
            assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and impatient.retries == 0
        # rewardctl's setting: an outage bounded by its window (one back-off), a team's quota still
        # waited out (with max_retries=1 alone, a second quota refusal would end the file).
        with RewardClient(srv.address, api_key=key, max_retries=0, max_quota_retries=3) as patient:
            scores = patient.score(batch, ["format"])
            assert len(scores) == 20 and patient.retries >= 1


def test_other_refusals_are_raised_at_once_with_their_code(server):
    with RewardClient(server.address, max_retries=5, backoff_s=1.0) as client:
        t0 = time.monotonic()
        with pytest.raises(RewardCallError) as e:
            client.score([make_sample("0", R1, reference="4")], ["no-such-verifier"])
        assert e.value.code == grpc.StatusCode.NOT_FOUND and "no-such-verifier" in e.value.details
        assert isinstance(e.value, RewardServiceCallError) and isinstance(e.value, RewardServiceError)
        assert client.retries == 0 and time.monotonic() - t0 < 1.0   # no back-off slept
        with pytest.raises(RewardCallError) as e:
            client.get_spec("never-stored")
        assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_a_key_is_sent_as_bearer_and_a_missing_one_says_how_to_fix_it(tmp_path, monkeypatch):
    cfg = ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/a.db", workers=1, auth="on")
    with start_server(cfg) as srv:
        key, _ = KeyStore(srv.store).create("team-a")
        monkeypatch.setenv("REWARD_API_KEY", key)
        monkeypatch.setenv("REWARD_SERVER_ADDRESS", srv.address)
        with RewardClient() as from_env:                    # address and key from the environment
            assert from_env.get_stats().team == "team-a"
        with RewardClient(api_key="") as anonymous:         # "" turns the key off
            with pytest.raises(RewardCallError, match="UNAUTHENTICATED.*REWARD_API_KEY") as e:
                anonymous.get_stats()
            assert e.value.code == grpc.StatusCode.UNAUTHENTICATED


class _QuotaServer(pb_grpc.RewardServiceServicer):
    """A broken or hostile server: every ListVerifiers is a quota refusal carrying `hint`
    as its retry-after-s trailer."""

    hint = "0"

    def ListVerifiers(self, request, context):
        context.set_trailing_metadata((("retry-after-s", self.hint),))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "team quota")


@pytest.fixture
def quota_server():
    servicer = _QuotaServer()
    srv = grpc.server(futures.ThreadPoolExecutor(2))
    pb_grpc.add_RewardServiceServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield servicer, f"127.0.0.1:{port}"
    srv.stop(0)


@pytest.mark.parametrize("hint", ["1e9", "86400"])
def test_attack_a_huge_retry_after_is_clamped_not_slept(quota_server, hint):
    servicer, address = quota_server
    servicer.hint = hint
    with RewardClient(address, max_retries=2) as client:
        client.policy.max_retry_after_s = 0.1          # the cap (default 60 s), small for the test
        raised: list[BaseException] = []

        def call():
            try:
                client.list_verifiers()
            except BaseException as e:  # noqa: BLE001 - checked below
                raised.append(e)
        t = threading.Thread(target=call, daemon=True)   # a daemon: the bug sleeps for days
        t.start()
        t.join(2.0)
        assert not t.is_alive(), f"slept on retry-after-s {hint}"
        (e,) = raised
        assert isinstance(e, RewardCallError) and e.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert client.retries == 2


@pytest.mark.parametrize("hint", ["inf", "nan", "-inf", "soon", ""])
def test_attack_a_broken_retry_after_is_raised_at_once_as_the_quota_refusal(quota_server, hint):
    servicer, address = quota_server
    servicer.hint = hint
    with RewardClient(address, max_retries=3) as client:
        t0 = time.monotonic()
        with pytest.raises(RewardCallError) as e:         # not OverflowError from time.sleep(inf)
            client.list_verifiers()
        assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and client.retries == 0
        assert time.monotonic() - t0 < 1.0


def test_attack_a_negative_retry_after_is_zero(quota_server):
    servicer, address = quota_server
    servicer.hint = "-5"
    with RewardClient(address, max_retries=2) as client:
        t0 = time.monotonic()
        with pytest.raises(RewardCallError):
            client.list_verifiers()
        assert client.retries == 2 and time.monotonic() - t0 < 1.0


# --- attacks: a secret-leak auditor -------------------------------------------------------

def test_attack_a_key_read_from_a_file_works_and_a_malformed_one_is_refused_without_echo(tmp_path):
    cfg = ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/k.db", workers=1, auth="on")
    with start_server(cfg) as srv:
        key, _ = KeyStore(srv.store).create("team-a")
        keyfile = tmp_path / "key"
        keyfile.write_text(key + "\n")                       # as `keys create > key` leaves it
        with RewardClient(srv.address, api_key=keyfile.read_text()) as client:
            assert client.get_stats().team == "team-a"     # not "INTERNAL: Invalid metadata"
        secret = key.split("_", 2)[2]
        assert len(secret) >= 16
        for bad in (f"{key[:-2]} {key[-2:]}", f"{key}é", f"{key}\x00"):
            with pytest.raises(ValueError, match="api_key") as e:
                RewardClient(srv.address, api_key=bad)
            assert secret[:8] not in str(e.value)
        with RewardClient(srv.address, api_key=key + "x", max_retries=0, log=(said := []).append) as wrong:
            with pytest.raises(RewardCallError) as e:
                wrong.get_stats()
            assert secret[:8] not in str(e.value) and secret[:8] not in repr(wrong)
            assert secret[:8] not in " ".join(said)


def test_attack_a_key_over_plaintext_to_another_host_is_warned_not_echoed(caplog):
    key = "rk_abcd_" + "S3CR3T" * 5
    with caplog.at_level(logging.WARNING, logger="rewards_client"):
        for local in ("127.0.0.1:1", "localhost:1", "[::1]:1", "unix:/tmp/rewards.sock"):
            make_channel(local, None, api_key=key).close()
        make_channel("10.1.2.3:50051", None).close()                 # no key: nothing to leak
        assert caplog.records == []
        make_channel("reward-server:50051", None, api_key=key).close()
    (line,) = [r.getMessage() for r in caplog.records]
    assert "reward-server:50051" in line and "plaintext" in line and "REWARD_TLS_CA" in line
    assert "S3CR3T" not in line
