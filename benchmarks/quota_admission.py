"""Cost of one quota admission: the in-process backend vs the shared PostgreSQL backend.

    python benchmarks/quota_admission.py [--n 2000] [--threads 8] [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Creates its own database, applies the migrations, and admits `n` one-sample requests for
a team whose quota never refuses, with two buckets (samples/s, judge requests/min), then
with a samples-in-flight limit too (a lease taken and released per request); from one
thread, then from `--threads` threads on the same team (they contend for the team's row
locks, as replicas do). Prints admissions per second, p50/p99 latency (admit and
release) and the CPU this process spent per admission (what a replica's serving process
pays: its threads share the GIL with every team's calls) per backend. Drops the database
at the end.
"""
from __future__ import annotations

import argparse
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import create_engine, text

from reward_server.quotas import DatabaseBackend, QuotaConfig, QuotaManager, TeamQuota
from reward_server.store import ScoreStore


def run(m: QuotaManager, n: int, threads: int) -> tuple[float, float, float, float]:
    def one(_: int) -> float:
        t0 = time.perf_counter()
        with m.admit("team-a", 1, judge_requests=1):
            pass
        return time.perf_counter() - t0

    t0, cpu0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as ex:
        lat = sorted(ex.map(one, range(n)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return n / wall, statistics.median(lat) * 1000, lat[int(0.99 * (len(lat) - 1))] * 1000, cpu / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    buckets = TeamQuota(samples_per_s=1e9, samples_burst=10**9, judge_requests_per_min=1e9)
    variants = {"buckets": QuotaConfig(default=buckets),
                "buckets+lease": QuotaConfig(default=buckets.model_copy(update={"max_inflight_samples": 10**9}))}
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    name = f"quota_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    store = ScoreStore(url, auto_migrate=True)
    try:
        for what, quotas in variants.items():
            for label, m in (("memory", QuotaManager(quotas)),
                             ("postgresql", QuotaManager(quotas, DatabaseBackend(store.engine, 30, "bench")))):
                for threads in (1, args.threads):
                    rate, p50, p99, cpu = run(m, args.n, threads)
                    print(f"{what:>13} {label:>10} {threads:>2} thread(s): {rate:9.0f} admissions/s  "
                          f"p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  CPU {cpu:6.3f} ms each")
                m.close()
    finally:
        store.close()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
