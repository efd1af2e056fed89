"""Audit queries over one million score rows on PostgreSQL.

    python benchmarks/history_query.py [--rows 1000000] [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Creates its own database, applies the migrations, loads generated rows with COPY
(100 runs × 1,000 steps × 10 samples, 3 teams, mixed statuses), starts a real server on
it, and times `QueryScores` through gRPC for typical audit questions, plus the SQL time
and whether an index was used (EXPLAIN). Drops the database at the end. Target: each
history query answers in under a second.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import create_engine, text


def load_rows(url: str, n: int) -> None:
    engine = create_engine(url)
    rnd = random.Random(0)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cols = ("team run_id step request_id group_id sample_index sample_id component_index verifier verifier_version "
            "params params_hash weight status reward reason latency_ms total_status total_reward prompt_sha256 "
            "completion_sha256 reference_sha256 completion_text worker created_at cached gate texts_dropped").split()
    statuses = ["OK"] * 94 + ["ABSTAIN"] * 3 + ["TIMEOUT"] * 2 + ["ERROR"]
    buf = io.StringIO()
    for i in range(n):
        run = i // 10_000
        step = (i // 10) % 1000
        status = rnd.choice(statuses)
        reward = "\\N" if status != "OK" else str(rnd.choice([0.0, 1.0]))
        verifier = "math" if i % 2 else "format"
        row = [f"team-{run % 3}", f"run-{run:03d}", step, uuid.UUID(int=i // 10).hex, f"g{(i // 10) % 4}",
               i % 10, str(i), 0, verifier, "1.0.0", json.dumps({}), "0" * 16, 1.0, status, reward,
               "why", f"{rnd.random() * 50:.3f}", status, reward, "a" * 64, f"{i:064x}", "b" * 64,
               f"completion {i}", "pool:1", (start + timedelta(seconds=i)).isoformat(), "f", "f", "f"]
        buf.write("\t".join(str(x) for x in row) + "\n")
    buf.seek(0)
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor().copy(f"COPY scores ({', '.join(cols)}) FROM STDIN") as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)
        for r in range(n // 10_000 + 1):
            conn.execute(text("INSERT INTO runs (id, team, name, state, config, summary, created_at) "
                              "VALUES (:id, :team, 'bench', 'finished', '{}', '{}', now())"),
                         {"id": f"run-{r:03d}", "team": f"team-{r % 3}"})
        conn.execute(text("ANALYZE scores"))
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()

    from reward_server.app import start_server
    from reward_server.config import ServerConfig
    from reward_server.store.store import make_engine, upgrade_schema
    from rewards_client import RewardClient

    name = f"rewards_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = make_engine(url)
        upgrade_schema(engine)
        engine.dispose()
        t0 = time.perf_counter()
        load_rows(url, args.rows)
        print(f"loaded {args.rows:,} score rows in {time.perf_counter() - t0:.1f} s (COPY)")
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        mid = start + timedelta(seconds=args.rows // 2)
        queries = {
            "one run, steps 400-499": dict(run_id="run-042", step_min=400, step_max=499, team="*"),
            "one run, timeouts only": dict(run_id="run-042", status="TIMEOUT", team="*"),
            "one run, math, reward >= 1": dict(run_id="run-042", verifier="math", reward_min=1.0, team="*"),
            "team, 6 h window": dict(team="team-1", created_after=mid.isoformat(),
                                     created_before=(mid + timedelta(hours=6)).isoformat()),
            "everything, newest 1000 of a verifier+window": dict(
                team="*", verifier="format", created_after=mid.isoformat(), limit=1000),
        }
        srv = start_server(ServerConfig(port=0, database_url=url, workers=1, auth="off"))
        with RewardClient(srv.address, api_key="", tls_ca="") as client:
            print(f"{'query':<46} {'rows':>7} {'gRPC p50 s':>11} {'gRPC max s':>11}")
            for label, filters in queries.items():
                times, n = [], 0
                for _ in range(5):
                    t0 = time.perf_counter()
                    n = sum(1 for _ in client.iter_scores(timeout_s=0, **filters))
                    times.append(time.perf_counter() - t0)
                print(f"{label:<46} {n:>7} {statistics.median(times):>11.3f} {max(times):>11.3f}")
        srv.stop()
        eng = create_engine(url)
        with eng.connect() as c:
            plan = c.execute(text("EXPLAIN SELECT * FROM scores WHERE run_id='run-042' AND step BETWEEN 400 AND 499 "
                                  "ORDER BY id LIMIT 1000")).scalars().all()
        eng.dispose()
        print("plan (one run, step range):", " | ".join(p.strip() for p in plan[:3]))
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
