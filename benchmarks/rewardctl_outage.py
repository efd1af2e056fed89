"""`rewardctl score --server` through a server restart mid-file (issue #20).

Starts `reward-server` (a real process, SQLite), writes a file of N format lines, starts
`rewardctl score FILE --run RUN -o OUT`, stops the server (SIGTERM: graceful) once OUT has
`--restart-at` lines, starts it again after `--down-s` seconds on the same port and
database, and prints how many lines came out, how many samples the run stored (each once?),
the exit status and the wall time. Before issue #20 rewardctl stopped at the first restart.

    python benchmarks/rewardctl_outage.py [--n 6000] [--restart-at 2000] [--down-s 3]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rewards_client import RewardClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, db: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "reward_server", "--port", str(port), "--workers", "2",
                             "--database-url", db], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with RewardClient(f"127.0.0.1:{port}", api_key="", tls_ca="") as c:
        c.wait_ready(120)
    return proc


def lines_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--restart-at", type=int, default=2000)
    ap.add_argument("--down-s", type=float, default=3.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rewardctl-outage-"))
    port, db = free_port(), f"sqlite:///{tmp}/rewards.db"
    address = f"127.0.0.1:{port}"
    src, out = tmp / "in.jsonl", tmp / "out.jsonl"
    src.write_text("".join(json.dumps({"id": f"s{i}", "completion": f"<think>{i}</think><answer>{i}</answer>",
                                       "verifier": "format"}) + "\n" for i in range(args.n)))
    server = start(port, db)
    with RewardClient(address, api_key="", tls_ca="") as c:
        run_id = c.start_run("outage-bench")
    t0 = time.perf_counter()
    ctl = subprocess.Popen([sys.executable, "-m", "rewardctl", "score", str(src), "-o", str(out), "--run", run_id,
                            "--server", address, "--outage-timeout-s", "120"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while lines_in(out) < args.restart_at and ctl.poll() is None:
        time.sleep(0.02)
    at = lines_in(out)
    server.terminate()
    server.wait(60)
    t_down = time.perf_counter()
    time.sleep(args.down_s)
    server = start(port, db)
    away = time.perf_counter() - t_down
    _, err = ctl.communicate(timeout=600)
    wall = time.perf_counter() - t0
    with RewardClient(address, api_key="", tls_ca="") as c:
        ids = [r.sample_id for r in c.iter_scores(run_id, timeout_s=0)]
    server.terminate()
    server.wait(60)
    print(f"restart after {at} of {args.n} lines, server away {away:.1f} s: rewardctl exit {ctl.returncode}, "
          f"{lines_in(out)} output lines, {len(ids)} stored rows, {len(set(ids))} distinct samples, "
          f"wall {wall:.1f} s")
    for line in err.splitlines():
        if "reward service" in line:
            print("  " + line)
    if os.environ.get("KEEP") is None:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
