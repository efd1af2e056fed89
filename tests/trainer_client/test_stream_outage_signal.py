"""The service's outage signal inside a stream: a group refused with UNAVAILABLE (the
reward server's answer when its score store is down: "nothing was recorded: retry") is
re-sent within the client's outage window, not failed at once (issue #17, finding 14).

The reward server cannot be made to lose its database on cue within a test's time (its
SQLite writer waits 30 s per attempt), so a real gRPC server on a loopback port stands
in for it: it implements ScoreGroups with the same protocol, refusing every group with
UNAVAILABLE while its "outage" lasts, then scoring them.
"""
from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import pytest

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from trainer_client.reward_client import (RewardCallError, RewardClient,
                                          RewardServiceUnavailable, make_sample)


class OutageServicer(pb_grpc.RewardServiceServicer):
    """Refuses groups with `code` until `outage_until` (time.monotonic()), then scores each
    sample 1.0; counts what it received."""

    def __init__(self, outage_s: float, code: str = "UNAVAILABLE"):
        self.outage_until = time.monotonic() + outage_s
        self.code = code
        self.received: list[str] = []
        self.lock = threading.Lock()

    def ScoreGroups(self, request_iterator, context):
        for g in request_iterator:
            with self.lock:
                self.received.append(g.group_id)
            if time.monotonic() < self.outage_until:
                yield pb.GroupResult(group_id=g.group_id, step=g.step, error=pb.GroupError(
                    code=self.code, message="the score store did not take the results "
                                            "(OperationalError); nothing was recorded: retry"))
                continue
            yield pb.GroupResult(group_id=g.group_id, step=g.step, results=[
                pb.SampleResult(id=s.id, status=pb.STATUS_OK, reward=1.0) for s in g.samples])


@pytest.fixture
def stand_in():
    servers = []

    def start(servicer):
        srv = grpc.server(futures.ThreadPoolExecutor(4))
        pb_grpc.add_RewardServiceServicer_to_server(servicer, srv)
        port = srv.add_insecure_port("127.0.0.1:0")
        srv.start()
        servers.append(srv)
        return f"127.0.0.1:{port}"

    yield start
    for s in servers:
        s.stop(0)


def _groups(stream, n=3):
    for i in range(n):
        stream.submit(f"g{i}", [make_sample(f"g{i}-{k}", "2", prompt="1+1?", reference="2") for k in range(2)])


def test_groups_refused_unavailable_are_resent_within_the_outage_window(stand_in):
    svc = OutageServicer(outage_s=1.5)
    lines: list[str] = []
    client = RewardClient(stand_in(svc), max_retries=1, backoff_s=0.1, max_backoff_s=0.3,
                          outage_timeout_s=20.0, log=lines.append)
    with client:
        stream = client.open_group_stream("run", 1, pb.RewardSpec())
        _groups(stream)
        t0 = time.monotonic()
        results = stream.collect()
        waited = time.monotonic() - t0
    assert sorted(results) == ["g0", "g1", "g2"]
    assert all(s.ok and s.reward == 1.0 for v in results.values() for s in v)
    assert waited >= 1.0                         # it waited the outage out
    assert len(svc.received) > 3                 # and re-sent the refused groups
    assert client.scores_returned == 6           # each group counted once
    # said once that it waits, once that the service is back: not once per retry
    assert sum("unavailable (3 group(s) refused: the score store did not take the results "
               "(OperationalError); nothing was recorded: retry) during step 1; waiting" in m
               for m in lines) == 1, lines
    assert sum("back after" in m for m in lines) == 1, lines


def test_an_outage_longer_than_the_window_fails_after_the_window(stand_in):
    svc = OutageServicer(outage_s=60.0)
    client = RewardClient(stand_in(svc), max_retries=1, backoff_s=0.1, max_backoff_s=0.2,
                          outage_timeout_s=1.0, log=lambda m: None)
    with client:
        stream = client.open_group_stream("run", 1, pb.RewardSpec())
        _groups(stream, 2)
        t0 = time.monotonic()
        with pytest.raises(RewardServiceUnavailable, match="UNAVAILABLE.*nothing was recorded"):
            stream.collect()
        assert 0.9 <= time.monotonic() - t0 < 10.0
    assert len(svc.received) > 2


def test_other_refusals_fail_at_once(stand_in):
    """A refusal that a retry cannot fix (INVALID_ARGUMENT) is not re-sent."""
    svc = OutageServicer(outage_s=60.0, code="INVALID_ARGUMENT")
    client = RewardClient(stand_in(svc), max_retries=3, backoff_s=0.1, outage_timeout_s=30.0,
                          log=lambda m: None)
    with client:
        stream = client.open_group_stream("run", 1, pb.RewardSpec())
        _groups(stream, 2)
        t0 = time.monotonic()
        with pytest.raises(RewardCallError, match="INVALID_ARGUMENT"):
            stream.collect()
        assert time.monotonic() - t0 < 5.0
    assert len(svc.received) == 2
