"""One team's format parameters and completions must not freeze another team (issue #17, findings 1, 2).

    python benchmarks/format_isolation.py [--seconds 5] [--version 2.0.0]

Part 1, in this process: the cost of each attack on the format verifier itself, for the
version asked (`--version 1.0.0` shows what the frozen version does; it runs in the worker
pool on a server, so there its slow checks end as TIMEOUT instead of holding the GIL).
Part 2, through a real server with auth on and two teams: team B sends one format sample
at a time and records its latency, first alone, then while team A sends each attack in a
loop from 4 threads. Prints B's p50/p99 per attack, the ratio to B alone, and whether the
server still runs. Stated bound: B's p99 under every attack at most 3x its p99 alone + 100 ms.
The expanding pattern is not sent to a server running 1.0.0's validation in-process (it
would OOM the machine); part 1 only sizes it.
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time

import grpc

EXPANDING = "(?:(?:(?:a{100}){100}){100}){100}"
R1_PAIRS = "<think>" + "</think><answer></answer>" * 6000 + "x"          # 150 KB
RNG = random.Random(0)
MEGABYTE = "".join(RNG.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1_000_000))
# (label, completion, params): what team A sends
ATTACKS = [
    ("expanding pattern (33 chars)", "aaaa", {"kind": "regex", "pattern": EXPANDING}),
    ("R1 check, 150 KB of tag pairs", R1_PAIRS, {}),
    ("R1 lenient, 150 KB of tag pairs", R1_PAIRS, {"strict": False}),
    ("NFA-bound pattern on 500 KB", MEGABYTE[:500_000], {"kind": "regex", "pattern": r"(?:a|b)*.{350}zzzz"}),
    ("large program on 1 MB", MEGABYTE, {"kind": "regex", "pattern": r"(?:.{999})*y{5}"}),
]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def in_process(version: str) -> None:
    import verifiers
    from verifiers.errors import InvalidParamsError

    print(f"format@{version}, in this process (one call each):")
    for label, completion, params in ATTACKS:
        if version == "1.0.0" and params.get("pattern") in (r"(?:a|b)*.{350}zzzz", r"(?:.{999})*y{5}"):
            params = {**params, "timeout_s": 5.0}
        t0 = time.perf_counter()
        try:
            r = verifiers.verify("format", completion, None, params, version=version)
            what = f"{r.status.value} {r.reward} ({r.reason[:70]})"
        except InvalidParamsError as e:
            what = f"INVALID_ARGUMENT ({str(e)[:70]})"
        print(f"  {label:34s} {time.perf_counter() - t0:8.3f} s  {what}")


def through_server(seconds: float, version: str) -> None:
    from reward_server.app import start_server
    from reward_server.auth import KeyStore
    from reward_server.config import ServerConfig
    from rewards.v1 import rewards_pb2 as pb
    from rewards.v1 import rewards_pb2_grpc as pb_grpc

    def request(completion: str, params: dict) -> pb.ScoreRequest:
        spec = pb.RewardSpec(components=[pb.VerifierRef(name="format", version=version, params=params)])
        return pb.ScoreRequest(spec=spec, samples=[pb.Sample(completion=completion)])

    good = request("<think>6*7</think><answer>42</answer>", {})
    with tempfile.TemporaryDirectory() as tmp:
        srv = start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp}/f.db", workers=2, auth="on",
                                        cache_ttl_s=0))
        keys = KeyStore(srv.store)
        key_a, _ = keys.create("team-a")
        key_b, _ = keys.create("team-b")

        def b_latencies(stop: threading.Event | None, t_s: float) -> list[float]:
            out: list[float] = []
            with grpc.insecure_channel(srv.address) as ch:
                stub = pb_grpc.RewardServiceStub(ch)
                end = time.monotonic() + t_s
                while time.monotonic() < end and not (stop and stop.is_set()):
                    t0 = time.perf_counter()
                    stub.Score(good, metadata=(("authorization", f"Bearer {key_b}"),), timeout=60)
                    out.append(time.perf_counter() - t0)
            return out

        alone = b_latencies(None, seconds)
        base99 = pct(alone, 0.99)
        print(f"\nthrough a server (format@{version}), team B one sample at a time:")
        print(f"  {'alone':34s} p50 {statistics.median(alone) * 1000:8.1f} ms  p99 {base99 * 1000:8.1f} ms  "
              f"n={len(alone)}")
        for label, completion, params in ATTACKS:
            if version == "1.0.0" and "pattern" in params and params["pattern"] == EXPANDING:
                print(f"  {label:34s} skipped: 1.0.0 would expand it in this process")
                continue
            stop = threading.Event()
            answers: dict[str, int] = {}

            def attack() -> None:
                with grpc.insecure_channel(srv.address) as ch:
                    stub = pb_grpc.RewardServiceStub(ch)
                    while not stop.is_set():
                        try:
                            r = stub.Score(request(completion, params),
                                           metadata=(("authorization", f"Bearer {key_a}"),), timeout=60)
                            key = pb.Status.Name(r.results[0].status)
                        except grpc.RpcError as e:
                            key = e.code().name
                        answers[key] = answers.get(key, 0) + 1

            threads = [threading.Thread(target=attack, daemon=True) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.2)
            under = b_latencies(None, seconds)
            stop.set()
            for t in threads:
                t.join(timeout=120)
            p99 = pct(under, 0.99)
            ok = p99 <= 3 * base99 + 0.1
            print(f"  {label:34s} p50 {statistics.median(under) * 1000:8.1f} ms  p99 {p99 * 1000:8.1f} ms  "
                  f"({p99 / base99:5.1f}x alone) {'within' if ok else 'OVER'} bound; A got {answers}")
        with grpc.insecure_channel(srv.address) as ch:
            alive = bool(pb_grpc.RewardServiceStub(ch).ListVerifiers(
                pb.ListVerifiersRequest(), metadata=(("authorization", f"Bearer {key_b}"),), timeout=10).verifiers)
        print(f"  server still serving: {alive}")
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="B's measuring time per row")
    ap.add_argument("--version", default="2.0.0", help="format version to attack (1.0.0: the frozen one)")
    ap.add_argument("--no-server", action="store_true", help="part 1 only")
    args = ap.parse_args()
    in_process(args.version)
    if not args.no_server:
        through_server(args.seconds, args.version)


if __name__ == "__main__":
    main()
