"""Issue #17, findings 1 and 2 through a real `reward-server` process: one team's format
pattern or completion must not kill or freeze the server for everyone.

The server runs as a subprocess with its address space capped (RLIMIT_AS), so that the
old behaviour (the `regex` library expanding a 33-character pattern at validation) ends
in that process and not in the test machine's OOM killer.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time

import grpc
import pytest

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.conftest import free_port

EXPANDING = "(?:(?:(?:a{100}){100}){100}){100}"
ADDRESS_SPACE_BYTES = 6 << 30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))


@pytest.fixture(scope="module")
def address(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("format-service")
    port, ready = free_port(), tmp / "ready"
    proc = subprocess.Popen([sys.executable, "-m", "reward_server", "--port", str(port), "--workers", "1",
                             "--database-url", f"sqlite:///{tmp}/rewards.db", "--ready-file", str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_cap_memory,
                            env={**os.environ, "REWARD_SERVER_GRACE_S": "2"})
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists(), proc.stdout.read() if proc.poll() is not None else "server did not start in 60 s"
    yield f"127.0.0.1:{port}", proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _score(stub, completion: str, **params) -> pb.ScoreResponse:
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="format", params=params)])
    return stub.Score(pb.ScoreRequest(spec=spec, samples=[pb.Sample(completion=completion)]), timeout=30)


def test_the_expanding_pattern_is_invalid_argument_and_the_server_lives(address):
    addr, proc = address
    with grpc.insecure_channel(addr) as ch:
        stub = pb_grpc.RewardServiceStub(ch)
        t0 = time.perf_counter()
        with pytest.raises(grpc.RpcError) as e:
            _score(stub, "aaaa", kind="regex", pattern=EXPANDING)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
        assert "params.pattern" in e.value.details() and time.perf_counter() - t0 < 5
        with pytest.raises(grpc.RpcError) as e:   # and the same through DryRun
            stub.DryRun(pb.ScoreRequest(spec=pb.RewardSpec(components=[pb.VerifierRef(
                name="format", params={"kind": "regex", "pattern": EXPANDING})]),
                samples=[pb.Sample(completion="a")]), timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
        assert proc.poll() is None
        ok = _score(stub, "<think>6*7</think><answer>42</answer>")
        assert ok.results[0].status == pb.STATUS_OK and ok.results[0].reward == 1.0


def test_many_tag_pairs_do_not_freeze_other_callers(address):
    addr, proc = address
    attack = "<think>" + "</think><answer></answer>" * 6000 + "x"   # 150 KB: 10 s of backtracking in 1.0.0
    with grpc.insecure_channel(addr) as ch_a, grpc.insecure_channel(addr) as ch_b:
        a, b = pb_grpc.RewardServiceStub(ch_a), pb_grpc.RewardServiceStub(ch_b)
        _score(b, "<think>1</think><answer>1</answer>")    # warm
        results: list[pb.ScoreResponse] = []
        attacker = threading.Thread(target=lambda: results.extend(_score(a, attack) for _ in range(3)))
        attacker.start()
        latencies = []
        while attacker.is_alive() or len(latencies) < 5:
            t0 = time.perf_counter()
            _score(b, "<think>1</think><answer>1</answer>")
            latencies.append(time.perf_counter() - t0)
        attacker.join()
    assert max(latencies) < 0.5, latencies
    assert all(r.results[0].status == pb.STATUS_OK and r.results[0].reward == 0.0 for r in results)
    assert proc.poll() is None
