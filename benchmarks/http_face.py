"""What the HTTP/JSON face costs over calling gRPC directly: the same Score batches, the
same server, from `--clients` concurrent callers.

    python benchmarks/http_face.py [--requests 400] [--batch 16] [--clients 8] [--workers 2]

Prints, for the format verifier (inline, so the transport dominates), samples/s and request
latency p50/p99 through (1) gRPC `Score`, (2) `POST /v1/score` (JSON -> protobuf -> the
server's own gRPC over its Unix socket -> JSON) and (3) `POST /openrlhf/SPEC` (the same plus
cutting the response out of the query). The store writes every score in all three.
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time

import grpc
import httpx

PROMPT = "<|im_start|>user\nSolve.<|im_end|>\n<|im_start|>assistant\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _report(name: str, n_samples: int, elapsed_s: float, latencies_s: list[float]) -> None:
    q = statistics.quantiles(latencies_s, n=100)
    print(f"{name:<22} {n_samples / elapsed_s:9.0f} samples/s   p50 {q[49] * 1000:7.1f} ms   "
          f"p99 {q[98] * 1000:7.1f} ms")


async def _drive(n_requests: int, clients: int, call) -> tuple[float, list[float]]:
    latencies: list[float] = []
    todo = iter(range(n_requests))

    async def client() -> None:
        for i in todo:
            t0 = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - t0, latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--batch", type=int, default=16, help="samples per request")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from reward_server.app import start_server
    from reward_server.config import ComponentConfig, ServerConfig, SpecConfig
    from rewards.v1 import rewards_pb2 as pb
    from rewards.v1 import rewards_pb2_grpc as pb_grpc

    completions = [f"<think>{i}</think><answer>{i}</answer>" for i in range(args.batch)]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ServerConfig(port=0, http_port=_free_port(), database_url=f"sqlite:///{tmp}/bench.db",
                           workers=args.workers, cache_ttl_s=0, max_samples_per_request=args.batch,
                           specs={"fmt": SpecConfig(components=[ComponentConfig(name="format")])})
        with start_server(cfg) as srv:
            base = f"http://127.0.0.1:{srv.http_port}"
            n = args.requests * args.batch
            print(f"{args.requests} requests x {args.batch} samples, {args.clients} concurrent clients, format "
                  f"verifier, cache off")

            async def grpc_run() -> tuple[float, list[float]]:
                async with grpc.aio.insecure_channel(srv.address) as ch:
                    stub = pb_grpc.RewardServiceStub(ch)
                    req = pb.ScoreRequest(spec=pb.RewardSpec(name="fmt"),
                                          samples=[pb.Sample(completion=c) for c in completions])
                    return await _drive(args.requests, args.clients, lambda i: stub.Score(req))

            async def http_run(path: str, body: dict) -> tuple[float, list[float]]:
                async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                    async def call(i: int) -> None:
                        r = await client.post(path, json=body)
                        r.raise_for_status()
                    return await _drive(args.requests, args.clients, call)

            _report("gRPC Score", n, *asyncio.run(grpc_run()))
            _report("POST /v1/score", n, *asyncio.run(http_run(
                "/v1/score", {"spec": {"name": "fmt"}, "samples": [{"completion": c} for c in completions]})))
            _report("POST /openrlhf/fmt", n, *asyncio.run(http_run(
                "/openrlhf/fmt", {"query": [PROMPT + c + "<|im_end|>" for c in completions],
                                  "prompts": [PROMPT] * args.batch, "labels": [""] * args.batch})))


if __name__ == "__main__":
    main()
