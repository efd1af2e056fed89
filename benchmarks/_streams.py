"""Shared by the benchmarks: drive ScoreGroups the way the trainer does."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc


def stream_groups(address: str, groups: Sequence[Any], streams: int, *, window: int = 16,
                  on_result: Callable[[Any], None] | None = None) -> tuple[float, list[float]]:
    """Send `groups` (GroupRequests) over `streams` concurrent ScoreGroups streams, each
    keeping at most `window` groups in flight. Returns (elapsed seconds, each group's
    latency in seconds from send to result). `on_result(GroupResult)` runs under a lock."""
    from rewards.v1 import rewards_pb2_grpc as pb_grpc

    shards = [groups[i::streams] for i in range(streams)]
    latencies: list[float] = []
    lock = threading.Lock()

    def client(shard: Sequence[Any]) -> None:
        sent: dict[str, float] = {}
        in_flight = threading.Semaphore(window)
        with grpc.insecure_channel(address) as ch:
            stub = pb_grpc.RewardServiceStub(ch)

            def gen():
                for g in shard:
                    in_flight.acquire()
                    sent[g.group_id] = time.perf_counter()
                    yield g

            for res in stub.ScoreGroups(gen()):
                in_flight.release()
                with lock:
                    latencies.append(time.perf_counter() - sent[res.group_id])
                    if on_result is not None:
                        on_result(res)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(s,)) for s in shards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies
