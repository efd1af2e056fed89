"""Micro-batching a local reward model: a burst of concurrent requests, batched vs one by one.

    python benchmarks/microbatch.py [--requests 256] [--threads 64] [--max-batch 32] [--max-wait-ms 5]
                                    [--hidden 64] [--layers 2] [--rounds 3] [--torch-threads 1] [--service]

A tiny Llama sequence classifier (built here, no download) behind the `reward_model`
verifier. `--threads` callers (the server's "model" pool has 64) send `--requests`
requests at once, in the same run: with micro-batching (max batch `--max-batch`, max
wait `--max-wait-ms`) and one by one (max batch 1), alternating for `--rounds` rounds;
each mode's best round counts (a shared machine's noise only ever adds time). Prints
requests/s for both, the ratio (target >= 3x) and the batch sizes seen. `--service`
also times the batched burst as one Score request through a real reward server. Exits 1
when the ratio is below 3.

torch runs on `--torch-threads` intra-op threads (default 1: on a small shared CPU,
OpenMP workers that spin-wait for descheduled siblings turn a 5 ms batch into 500 ms).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

COMPLETIONS = ["four", "the answer is 4", "so we get two plus two equals four , the answer is 4 .", "five",
               "it is 3 and not 4", "two plus two is four , so the final answer is 4"]


def burst(model: str, n: int, threads: int, max_batch: int, max_wait_ms: float) -> tuple[float, list[int]]:
    """Seconds for `n` concurrent reward_model calls, and the batch sizes the batcher ran."""
    import verifiers
    from verifiers.judges import models

    params = {"model": model, "device": "cpu", "max_batch_size": max_batch, "max_wait_ms": max_wait_ms}
    refs = [{"prompt": f"What is {i % 7} plus {i % 5} ?"} for i in range(n)]

    def one(i: int) -> float:
        r = verifiers.verify("reward_model", COMPLETIONS[i % len(COMPLETIONS)], refs[i], params)
        assert r.reward is not None, r.reason
        return r.reward

    with cf.ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, range(min(n, threads))))          # warm-up: load, first passes
        batcher = next(b for k, b in models._BATCHERS.items() if k[0] == "seqcls-score" and k[-2:] ==
                       (max_batch, max_wait_ms))
        batcher.batch_sizes.clear()
        t0 = time.perf_counter()
        list(ex.map(one, range(n)))
        elapsed = time.perf_counter() - t0
    return elapsed, list(batcher.batch_sizes)


def through_service(model: str, n: int, max_batch: int, max_wait_ms: float) -> float:
    from reward_server.app import start_server
    from reward_server.config import ServerConfig
    from rewards_client import RewardClient, make_sample

    spec = [{"name": "reward_model", "params": {
        "model": model, "device": "cpu", "max_batch_size": max_batch, "max_wait_ms": max_wait_ms}}]
    samples = [make_sample(str(i), COMPLETIONS[i % len(COMPLETIONS)],
                           reference={"prompt": f"What is {i % 7} plus {i % 5} ?"}) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        srv = start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp}/bench.db", workers=1))
        with RewardClient(srv.address, api_key="", tls_ca="", rpc_timeout_s=600) as client:
            client.score(samples[:8], spec)      # warm-up
            t0 = time.perf_counter()
            scores = client.score(samples, spec)
            elapsed = time.perf_counter() - t0
        srv.stop()
    assert all(r.status == "OK" for r in scores), scores[0].reason
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=256)
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; each mode's best counts")
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--service", action="store_true", help="also time the batched burst through a real server")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.torch_threads)
    import verifiers.judges  # noqa: F401
    from verifiers.judges.tiny import build_tiny_llama

    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_llama(os.path.join(tmp, "rm"), head="seqcls", hidden_size=args.hidden,
                                     num_layers=args.layers))
        batched_runs, single_runs = [], []
        for _ in range(args.rounds):
            batched_runs.append(burst(model, args.requests, args.threads, args.max_batch, args.max_wait_ms))
            single_runs.append(burst(model, args.requests, args.threads, 1, 0.0))
        batched_s, sizes = min(batched_runs)
        single_s, single_sizes = min(single_runs)
        service_s = through_service(model, args.requests, args.max_batch, args.max_wait_ms) if args.service else None

    ratio = single_s / batched_s
    print(f"micro-batching: tiny Llama reward model (hidden {args.hidden}, {args.layers} layers, CPU, "
          f"{torch.get_num_threads()} torch threads), burst of {args.requests} concurrent requests from "
          f"{args.threads} threads")
    print(f"  batched (max {args.max_batch}, wait {args.max_wait_ms:g} ms)  {batched_s * 1000:8.1f} ms   "
          f"{args.requests / batched_s:8.0f} req/s   {len(sizes)} batches, mean size {statistics.mean(sizes):.1f}, "
          f"max {max(sizes)}")
    print(f"  one by one (max batch 1)        {single_s * 1000:8.1f} ms   {args.requests / single_s:8.0f} req/s   "
          f"{len(single_sizes)} batches")
    print(f"  all rounds, ms: batched {[round(r[0] * 1000) for r in batched_runs]}, "
          f"one by one {[round(r[0] * 1000) for r in single_runs]}")
    print(f"  speed-up                        {ratio:8.1f}x  (target >= 3x)")
    if service_s is not None:
        print(f"  batched, one Score request through the server: {service_s * 1000:.1f} ms "
              f"({args.requests / service_s:.0f} req/s)")
    ok = ratio >= 3.0 and max(sizes) > 1
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
