"""One team flooding the service must not slow another team's scores beyond a bound.

    python benchmarks/team_fairness.py [--seconds 10] [--flood-streams 8] [--max-inflight 64]

A real server with auth on and two teams. Team B sends one math group of 8 at a time and
records each group's latency: first alone, then while team A floods from
`--flood-streams` streams with 16 groups in flight each. Team A's quota caps its samples
in flight (`max_inflight_samples`), which bounds how much shared worker-queue time it can
take ahead of B. Prints B's p50/p99 both ways and the ratio. Stated bound: B's p99 group
latency under the flood at most 3× its p99 alone, plus 100 ms.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid

import grpc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--flood-streams", type=int, default=8)
    ap.add_argument("--max-inflight", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from reward_server.app import start_server
    from reward_server.auth import KeyStore
    from reward_server.config import ServerConfig
    from reward_server.quotas import QuotaConfig, TeamQuota
    from rewards.v1 import rewards_pb2 as pb
    from rewards.v1 import rewards_pb2_grpc as pb_grpc

    spec = pb.RewardSpec(components=[pb.VerifierRef(name="math")])

    def group(i: int) -> pb.GroupRequest:
        samples = []
        for j in range(8):
            s = pb.Sample(completion=f"so the answer is \\boxed{{\\frac{{{i + j}}}{{{j + 2}}}}}")
            s.reference.string_value = f"{i + j}/{j + 2}"
            samples.append(s)
        return pb.GroupRequest(group_id=uuid.uuid4().hex, samples=samples, spec=spec)

    with tempfile.TemporaryDirectory() as tmp:
        quotas = QuotaConfig(default=TeamQuota(max_inflight_samples=args.max_inflight))
        srv = start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp}/f.db", workers=args.workers,
                                        auth="on", quotas=quotas, cache_ttl_s=0))
        keys = KeyStore(srv.store)
        key_a, _ = keys.create("team-a")
        key_b, _ = keys.create("team-b")

        def b_latencies(seconds: float) -> list[float]:
            out = []
            with grpc.insecure_channel(srv.address) as ch:
                stub = pb_grpc.RewardServiceStub(ch)
                end = time.monotonic() + seconds
                i = 0
                while time.monotonic() < end:
                    t0 = time.perf_counter()
                    list(stub.ScoreGroups(iter([group(i)]), metadata=(("authorization", f"Bearer {key_b}"),)))
                    out.append(time.perf_counter() - t0)
                    i += 1
            return out

        alone = b_latencies(args.seconds)
        stop = threading.Event()
        flooded = [0]

        def flood() -> None:
            window = threading.Semaphore(16)
            with grpc.insecure_channel(srv.address) as ch:
                stub = pb_grpc.RewardServiceStub(ch)

                def gen():
                    i = 0
                    while not stop.is_set():
                        if window.acquire(timeout=0.1):
                            i += 1
                            yield group(i)

                for _ in stub.ScoreGroups(gen(), metadata=(("authorization", f"Bearer {key_a}"),)):
                    window.release()
                    flooded[0] += 8

        threads = [threading.Thread(target=flood) for _ in range(args.flood_streams)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        during = b_latencies(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        srv.stop(grace_s=5)

    def q(xs: list[float], p: int) -> float:
        return statistics.quantiles(xs, n=100)[p - 1] * 1000

    print(f"team B group of 8 math samples, {args.workers} pool workers, team A capped at "
          f"{args.max_inflight} samples in flight from {args.flood_streams} streams")
    print(f"{'':<22} {'groups':>7} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'B alone':<22} {len(alone):>7} {q(alone, 50):>8.1f} {q(alone, 99):>8.1f}")
    print(f"{'B during A flood':<22} {len(during):>7} {q(during, 50):>8.1f} {q(during, 99):>8.1f}")
    print(f"team A scored {flooded[0]} samples during the flood ({flooded[0] / (args.seconds + 1):.0f}/s)")
    bound = 3 * q(alone, 99) + 100
    print(f"p99 ratio {q(during, 99) / q(alone, 99):.2f}; bound 3x p99 alone + 100 ms = {bound:.0f} ms: "
          f"{'met' if q(during, 99) <= bound else 'NOT met'}")


if __name__ == "__main__":
    main()
