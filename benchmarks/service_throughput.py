"""Scores per second through `ScoreGroups` on loopback, against the verifier called in-process.

    python benchmarks/service_throughput.py [--groups 1250] [--group-size 8] [--workers 2] [--streams 4]

For each verifier (format: inline; math: worker pool) prints:
- in-process: `verifiers.verify` in a loop in this process (no isolation, no gRPC, no store);
- service: samples/s through ScoreGroups from `--streams` concurrent client streams, each
  keeping 16 groups in flight (as a trainer does), the store writing every score;
- group latency p50/p99, and how long the store took after the last result to have every
  row on disk (the writer runs off the request path; a burst of 10,000 scores is the default).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid

from _streams import stream_groups


def _workload(verifier: str, n: int) -> list[tuple[str, str]]:
    if verifier == "format":
        return [(f"<think>{i} + {i} = {2 * i}</think><answer>{2 * i}</answer>", "") for i in range(n)]
    forms = ["The answer is \\boxed{{{v}}}.", "So we get $\\frac{{{a}}}{{2}}$", "<answer>{v}</answer>",
             "Thus x = {v}", "Final answer: {v}.0"]
    return [(forms[i % len(forms)].format(v=i % 97, a=2 * (i % 97)), str(i % 97)) for i in range(n)]


def in_process(verifier: str, work: list[tuple[str, str]]) -> float:
    import verifiers

    t0 = time.perf_counter()
    for completion, ref in work:
        verifiers.verify(verifier, completion, ref or None)
    return len(work) / (time.perf_counter() - t0)


def through_service(address: str, verifier: str, work: list[tuple[str, str]], group_size: int, streams: int
                    ) -> tuple[float, list[float]]:
    from rewards.v1 import rewards_pb2 as pb

    spec = pb.RewardSpec(components=[pb.VerifierRef(name=verifier)])
    groups = []
    for g in range(0, len(work), group_size):
        samples = []
        for completion, ref in work[g:g + group_size]:
            s = pb.Sample(completion=completion)
            if ref:
                s.reference.string_value = ref
            samples.append(s)
        groups.append(pb.GroupRequest(group_id=uuid.uuid4().hex, samples=samples, spec=spec))
    elapsed, latencies = stream_groups(address, groups, streams)
    return len(work) / elapsed, latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=1250)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--verifiers", default="format,math")
    args = ap.parse_args()

    from reward_server.app import start_server
    from reward_server.config import ServerConfig

    n = args.groups * args.group_size
    with tempfile.TemporaryDirectory() as tmp:
        # The result cache is off: the workload repeats completions, and the point is the verifiers.
        srv = start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp}/bench.db", workers=args.workers,
                                        cache_ttl_s=0))
        print(f"{n} samples per verifier, groups of {args.group_size}, {args.streams} streams, "
              f"{args.workers} pool workers, SQLite store")
        print(f"{'verifier':<8} {'in-process/s':>13} {'service/s':>10} {'group p50 ms':>13} {'group p99 ms':>13} "
              f"{'store lag s':>12}")
        for verifier in args.verifiers.split(","):
            work = _workload(verifier, n)
            local = in_process(verifier, work)
            rate, lat = through_service(srv.address, verifier, work, args.group_size, args.streams)
            t0 = time.perf_counter()
            srv.store.flush()
            lag = time.perf_counter() - t0
            q = statistics.quantiles(lat, n=100)
            print(f"{verifier:<8} {local:>13.0f} {rate:>10.0f} {q[49] * 1000:>13.1f} {q[98] * 1000:>13.1f} {lag:>12.3f}")
        print(f"rows written: {srv.store.rows_written}")
        srv.stop()


if __name__ == "__main__":
    main()
