"""Issue #20, the small server bugs found with rewardctl (each failed before its fix)."""
from __future__ import annotations

import subprocess
import sys
import time

import grpc
import pytest

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc


def test_a_second_server_on_a_port_in_use_refuses_to_start(server, tmp_path):
    port = int(server.address.rsplit(":", 1)[1])
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "reward_server", "--port", str(port), "--workers", "1",
                           "--database-url", f"sqlite:///{tmp_path}/second.db"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert "address already in use" in (proc.stderr + proc.stdout).lower(), proc.stderr[-2000:]
    assert time.monotonic() - t0 < 60
    with grpc.insecure_channel(server.address) as ch:     # the first one still serves
        assert pb_grpc.RewardServiceStub(ch).ListVerifiers(pb.ListVerifiersRequest(), timeout=10).verifiers


def test_a_refused_call_names_its_method_in_words(server):
    from trainer_client.reward_client import RewardCallError, RewardClient

    with RewardClient(server.address) as client, pytest.raises(RewardCallError) as e:
        client.log_step("no-such-run", 3, {"loss": 1.0})
    assert str(e.value).startswith("LogStep: NOT_FOUND"), str(e.value)    # not "b'/rewards.v1…/LogStep'"
