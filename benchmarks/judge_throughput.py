"""Judged samples per second through the service against a loopback OpenAI-compatible judge.

    python benchmarks/judge_throughput.py [--samples 1200] [--latency-ms 200] [--concurrency 32]
                                          [--group-size 8] [--streams 4]

A real reward server (SQLite store, every score written) and the loopback stub judge
(tests/helpers/openai_stub.py) in a process of its own (as a real endpoint is; with
`--in-process-stub` it shares this process and its GIL), which answers each request
after `--latency-ms`. The
trainer's pattern: `--streams` ScoreGroups streams, each keeping 16 groups in flight.
The judge's per-endpoint concurrency limit is `--concurrency`, so the ceiling is
concurrency / latency (32 / 0.2 s = 160/s).

Prints samples/s, group latency p50/p99, the statuses, and the most requests the stub
ever saw in flight, which must not exceed the limit. Targets: >= 100 samples/s and
max in flight <= the limit; exits 1 when either is missed.
"""
from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import uuid


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

from _streams import stream_groups  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1200)
    ap.add_argument("--latency-ms", type=float, default=200.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--target", type=float, default=100.0, help="samples/s to reach")
    ap.add_argument("--in-process-stub", action="store_true", help="run the stub judge in this process")
    args = ap.parse_args()

    import httpx
    from google.protobuf import struct_pb2
    from rewards.v1 import rewards_pb2 as pb

    import verifiers.judges  # noqa: F401  (registers the judges in this process, where the server runs)
    from reward_server.app import start_server
    from reward_server.config import ServerConfig
    from tests.helpers.openai_stub import OpenAIStub

    if args.in_process_stub:
        stub = OpenAIStub(behaviour="score", delay_s=args.latency_ms / 1000).start()
        base_url, proc = stub.base_url, None
    else:
        proc = subprocess.Popen([sys.executable, "-m", "tests.helpers.openai_stub", "--delay-ms", str(args.latency_ms)],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
        base_url = proc.stdout.readline().strip()
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="judge", params={
        "base_url": base_url, "model": "stub-judge", "max_concurrency": args.concurrency, "deadline_s": 60})])
    groups = []
    for g in range(0, args.samples, args.group_size):
        samples = []
        for i in range(g, min(g + args.group_size, args.samples)):
            s = pb.Sample(id=str(i), prompt=f"What is {i} + {i}?", completion=f"<answer>{2 * i}</answer>")
            ref = struct_pb2.Struct()
            ref.update({"prompt": f"What is {i} + {i}?", "reference": str(2 * i)})
            s.reference.struct_value.CopyFrom(ref)
            samples.append(s)
        groups.append(pb.GroupRequest(group_id=uuid.uuid4().hex, samples=samples, spec=spec))
    statuses: collections.Counter[str] = collections.Counter()

    with tempfile.TemporaryDirectory() as tmp:
        srv = start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp}/bench.db", workers=1))
        elapsed, latencies = stream_groups(
            srv.address, groups, args.streams,
            on_result=lambda res: statuses.update(pb.Status.Name(r.status) for r in res.results))
        srv.store.flush()
        rows = srv.store.rows_written
        srv.stop()
    if proc is None:
        stats = {"requests": stub.requests, "max_in_flight": stub.max_in_flight}
        stub.stop()
    else:
        stats = httpx.get(f"{base_url}/stats").json()
        proc.terminate()
        proc.wait(10)

    rate = args.samples / elapsed
    q = statistics.quantiles(latencies, n=100)
    ceiling = args.concurrency / (args.latency_ms / 1000)
    print(f"judge throughput: {args.samples} samples, groups of {args.group_size}, {args.streams} streams x 16 "
          f"groups in flight, stub latency {args.latency_ms:g} ms, judge concurrency limit {args.concurrency}")
    print(f"  elapsed             {elapsed:8.2f} s")
    print(f"  judged samples/s    {rate:8.1f}   (target >= {args.target:g}; ceiling {ceiling:.0f} = limit / latency)")
    print(f"  group latency       p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms")
    where = "in this process" if proc is None else "in its own process"
    print(f"  stub requests       {stats['requests']}   (stub {where})")
    print(f"  max in flight       {stats['max_in_flight']}   (limit {args.concurrency}; measured by the stub)")
    print(f"  statuses            {dict(statuses)}")
    print(f"  score rows written  {rows}")
    ok = (rate >= args.target and stats["max_in_flight"] <= args.concurrency
          and statuses.get("STATUS_OK") == args.samples)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
