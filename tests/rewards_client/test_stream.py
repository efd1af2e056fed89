"""GroupStream attacked by a broken server and a buggy caller: results matched to the
right group and sample, never short, never a group's answer reused for another; a
stream the server keeps refusing is bounded by its deadline."""
from __future__ import annotations

import time
from concurrent import futures

import grpc
import pytest
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

from rewards_client import RewardCallError, RewardClient, RewardServiceUnavailable, make_sample

R1 = "<think>2+2=4</think><answer>4</answer>"


class _Broken(pb_grpc.RewardServiceServicer):
    """Answers each group by `mode`: "short" (one result fewer), "stranger" (results under
    another group's id too), "swapped" (results in reverse sample order), "unavailable"
    (the whole stream UNAVAILABLE)."""

    mode = "short"

    def Score(self, request, context):
        results = [pb.SampleResult(id=s.id, sample_index=i, status=pb.STATUS_OK, reward=1.0)
                   for i, s in enumerate(request.samples)]
        return pb.ScoreResponse(results=results[::-1] if self.mode == "swapped" else results)

    def QueryScores(self, request, context):
        self.queries = getattr(self, "queries", 0) + 1
        for i in range(3):
            yield pb.ScoreRecord(score_id=i + 1, sample_id=f"s{i}")
            if i == 1:   # broken mid-way: a restart, or a deadline
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED if self.mode == "deadline"
                              else grpc.StatusCode.UNAVAILABLE, "cut")

    def ListVerifiers(self, request, context):
        context.abort(grpc.StatusCode.UNAVAILABLE, "the service's outage signal")

    def ScoreGroups(self, request_iterator, context):
        self.calls = getattr(self, "calls", 0) + 1
        for g in request_iterator:
            if self.mode == "unavailable-then-hang" and self.calls > 1:
                time.sleep(3.0)                   # back, but hung past the stream's deadline
            if self.mode.startswith("unavailable"):
                context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
            results = [pb.SampleResult(id=s.id, sample_index=i, status=pb.STATUS_OK, reward=1.0)
                       for i, s in enumerate(g.samples)]
            if self.mode == "short":
                results = results[:-1]
            if self.mode == "swapped":
                results.reverse()
            if self.mode == "stranger":
                yield pb.GroupResult(group_id="never-sent", step=g.step, results=results)
            yield pb.GroupResult(group_id=g.group_id, step=g.step, results=results)


@pytest.fixture
def broken():
    servicer = _Broken()
    srv = grpc.server(futures.ThreadPoolExecutor(4))
    pb_grpc.add_RewardServiceServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield servicer, f"127.0.0.1:{port}"
    srv.stop(0)


def _group(gid: str, n: int = 2) -> list[pb.Sample]:
    return [make_sample(f"{gid}-{k}", R1, reference="4") for k in range(n)]


@pytest.mark.parametrize("mode, match", [("short", r"g0.*2 samples.*1 result"),
                                         ("swapped", r"g0.*g0-1.*g0-0"),
                                         ("stranger", r"never-sent.*not submitted")])
def test_attack_a_broken_servers_group_answer_is_refused_not_misattributed(broken, mode, match):
    servicer, address = broken
    servicer.mode = mode
    with RewardClient(address, stream_timeout_s=10) as client:
        stream = client.open_group_stream("run", 1, ["math"])
        stream.submit("g0", _group("g0"))
        with pytest.raises(RewardCallError, match=match):
            stream.collect()


def test_attack_a_group_id_submitted_twice_is_refused(broken):
    servicer, address = broken
    servicer.mode = "ok"
    with RewardClient(address, stream_timeout_s=10) as client:
        stream = client.open_group_stream("run", 1, ["math"])
        stream.submit("g0", _group("g0"))
        with pytest.raises(ValueError, match="group_id 'g0'.*already submitted"):
            stream.submit("g0", _group("other"))     # its answer would be dropped as a "duplicate"
        assert [s.id for s in stream.collect()["g0"]] == ["g0-0", "g0-1"]


@pytest.mark.parametrize("mode", ["unavailable", "unavailable-then-hang"])
def test_attack_a_server_answering_unavailable_forever_is_bounded_by_the_stream_deadline(broken, mode):
    servicer, address = broken
    servicer.mode = mode
    with RewardClient(address, stream_timeout_s=1.5, outage_timeout_s=3600, backoff_s=0.05,
                      max_backoff_s=0.2, log=(said := []).append) as client:
        t0 = time.monotonic()
        stream = client.open_group_stream("run", 1, ["math"])
        stream.submit("g0", _group("g0"))
        with pytest.raises(RewardServiceUnavailable, match="1 group"):
            stream.collect()
        assert time.monotonic() - t0 < 4.0
    assert said[0].startswith(f"reward service at {address} unreachable during step 1")
    assert "giving up on step 1" in said[-1]


def test_attack_a_score_answer_in_another_order_is_refused(broken):
    servicer, address = broken
    servicer.mode = "swapped"
    with RewardClient(address) as client:
        with pytest.raises(RewardCallError, match=r"Score: result 0 is for sample 'b'.*'a'"):
            client.score([make_sample("a", R1), make_sample("b", R1)], ["math"])


@pytest.mark.parametrize("mode, error", [("unavailable", RewardServiceUnavailable),
                                         ("deadline", RewardCallError)])
def test_attack_a_query_broken_mid_way_is_raised_not_short_nor_repeated(broken, mode, error):
    servicer, address = broken
    servicer.mode = mode
    got = []
    with RewardClient(address, max_retries=3, backoff_s=0.01) as client:
        with pytest.raises(error):
            for record in client.iter_scores("run"):
                got.append(record.sample_id)
    assert got == ["s0", "s1"] and servicer.queries == 1      # not re-run (no duplicates)


def test_attack_unavailable_forever_is_bounded_by_the_outage_window(broken):
    servicer, address = broken
    with RewardClient(address, max_retries=1, backoff_s=0.05, max_backoff_s=0.2, outage_timeout_s=1.0,
                      log=(said := []).append) as client:
        t0 = time.monotonic()
        with pytest.raises(RewardServiceUnavailable, match=address):
            client.list_verifiers()
        assert 1.0 <= time.monotonic() - t0 < 2.5 and client.retries >= 3
    assert said[0].startswith(f"reward service at {address} unreachable during ListVerifiers")
    assert said[-1].startswith(f"reward service at {address} still unreachable after 1 s; giving up")
