"""Isolation between teams: team B's latency alone and while team A attacks, per attack class.

    python benchmarks/team_fairness.py [--seconds 5] [--workers 2] [--database-url URL]
                                       [--only flood,unread-history,...]

A real server process with auth on and two teams; team A attacks from its own process and
team B measures from this one (no client shares the server's interpreter). Team B sends one math group of 8 at a time over
ScoreGroups and records each group's latency: first alone, then while team A runs each
attack of issue #17 in turn (A's quota, as an operator would set it: 64 samples in flight,
8 streams, 2,000 samples/s, 1,000 components/s: quotas meter cost, not only samples). Prints, per attack, B's p50/p99, the bound, and whether the
server (its process, event loop and score writer) is still up. Target: under every attack
B's p99 <= 3x its p99 alone + 100 ms, and the server never restarts.

Attacks (the number is the finding of issue #17):
  flood             8 ScoreGroups streams, 16 groups of 8 in flight each (A's quota: 64 in flight)
  tiny-groups       the same with groups of 1 sample, 64 in flight per stream: the most
                    requests (admissions, releases, transactions) A's quota allows
  unread-history    3: 24 QueryScores streams of 16 KiB rows opened and never read
  huge-spec         4: a spec of 150,000 routes (3 MiB), over and over
  validation        4: legal but costly requests (1,024 samples, 50 different 8-component
                    specs), the most one message may carry
  store-poison      5: samples with NUL characters and 200-character group ids
  dryrun            7: 20 concurrent DryRuns
  components        7: 64 samples x 32 components per request
  bookkeeping       7: LogStep calls as fast as 4 threads go
  bad-keys          9: unknown keys, each a key lookup in the database
  cancelled         (found red-teaming) Score with a 1 ms deadline: the writer must outlive it
  resend            13: a group re-sent with other content
  r1-quadratic      2: the R1 format check on 150 KB of `</think><answer></answer>` pairs
                    (the verifier's fix lives with the verifiers)
  math-backtrack    11: 16 completions that make the math extraction backtrack
The regex-compile bomb (1) is left out: on a server without its fix it kills the benchmark's
own process.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable

import grpc

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

MATH = pb.RewardSpec(components=[pb.VerifierRef(name="math")])
FORMAT = pb.RewardSpec(components=[pb.VerifierRef(name="format")])


def md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def math_group(i: int, run_id: str = "", size: int = 8) -> pb.GroupRequest:
    samples = []
    for j in range(size):
        s = pb.Sample(completion=f"so the answer is \\boxed{{\\frac{{{i + j}}}{{{j + 2}}}}}")
        s.reference.string_value = f"{i + j}/{j + 2}"
        samples.append(s)
    return pb.GroupRequest(group_id=uuid.uuid4().hex, samples=samples, spec=MATH, run_id=run_id)


def q(xs: list[float], p: int) -> float:
    return statistics.quantiles(xs, n=100)[p - 1] * 1000 if len(xs) > 1 else xs[0] * 1000


class Attack:
    """`threads` copies of `body(stub, stop)` run until `stop` is set."""

    def __init__(self, name: str, finding: str, threads: int, body: Callable[[pb_grpc.RewardServiceStub,
                                                                              threading.Event], None]):
        self.name, self.finding, self.threads, self.body = name, finding, threads, body


def _ignore(fn: Callable[[], object]) -> None:
    try:
        fn()
    except grpc.RpcError:
        pass


def attacks(key_a: str, run_a: str) -> list[Attack]:
    A = md(key_a)

    def streamed(in_flight: int, size: int):
        """One ScoreGroups stream keeping `in_flight` groups of `size` math samples open."""
        def body(stub, stop):
            window = threading.Semaphore(in_flight)

            def gen():
                i = 0
                while not stop.is_set():
                    if window.acquire(timeout=0.1):
                        i += 1
                        yield math_group(i, size=size)

            try:
                for _ in stub.ScoreGroups(gen(), metadata=A, timeout=120):
                    window.release()
            except grpc.RpcError:
                time.sleep(0.1)
        return body

    flood, tiny_groups = streamed(16, 8), streamed(64, 1)

    def unread_history(stub, stop):
        held = []
        for _ in range(3):  # 8 threads x 3 = 24 streams
            it = stub.QueryScores(pb.QueryScoresRequest(include_texts=True), metadata=A, timeout=120)
            try:
                next(it)
                held.append(it)
            except grpc.RpcError:
                pass
        stop.wait()
        for it in held:
            it.cancel()

    routes = pb.RewardSpec()
    for i in range(150_000):
        routes.routes[f"t{i}"].components.add(name="format")
    huge = pb.ScoreRequest(samples=[pb.Sample(completion="x")], spec=routes)

    def huge_spec(stub, stop):
        while not stop.is_set():
            _ignore(lambda: stub.Score(huge, metadata=A, timeout=30))

    specs = [pb.RewardSpec(components=[pb.VerifierRef(name="format", weight=float(w))] * 8) for w in range(50)]
    costly = pb.ScoreRequest(samples=[pb.Sample(completion=f"x{i}", spec=specs[i % 50]) for i in range(1024)])

    def validation(stub, stop):
        while not stop.is_set():
            _ignore(lambda: stub.Score(costly, metadata=A, timeout=30))

    def store_poison(stub, stop):
        i = 0
        while not stop.is_set():
            i += 1
            _ignore(lambda: stub.Score(pb.ScoreRequest(samples=[pb.Sample(completion=f"a\x00{i}")], spec=FORMAT),
                                       metadata=A, timeout=30))
            g = pb.GroupRequest(run_id=run_a, group_id="g" * 200 + str(i), samples=[pb.Sample(completion="x")],
                                spec=FORMAT)
            _ignore(lambda: list(stub.ScoreGroups(iter([g]), metadata=A, timeout=30)))

    def dryrun(stub, stop):
        s = pb.Sample(completion="so the answer is \\boxed{3}")
        s.reference.string_value = "3"
        while not stop.is_set():
            _ignore(lambda: stub.DryRun(pb.DryRunRequest(sample=s, spec=MATH), metadata=A, timeout=30))

    wide = pb.RewardSpec(components=[pb.VerifierRef(name="format", weight=float(w)) for w in range(32)])
    wide_req = pb.ScoreRequest(samples=[pb.Sample(completion=f"<think>{i}</think><answer>1</answer>")
                                        for i in range(64)], spec=wide)

    def components(stub, stop):
        while not stop.is_set():
            _ignore(lambda: stub.Score(wide_req, metadata=A, timeout=30))

    def bookkeeping(stub, stop):
        i = 0
        while not stop.is_set():
            i += 1
            _ignore(lambda: stub.LogStep(pb.LogStepRequest(run_id=run_a, step=i % 1000, metrics={"loss": 1.0}),
                                         metadata=A, timeout=30))

    def bad_keys(stub, stop):
        while not stop.is_set():
            _ignore(lambda: stub.ListRuns(pb.ListRunsRequest(), metadata=md(f"rk_{uuid.uuid4().hex[:8]}_x"),
                                          timeout=30))

    many = pb.ScoreRequest(samples=[pb.Sample(completion=f"c{i}") for i in range(256)], spec=FORMAT)

    def cancelled(stub, stop):
        while not stop.is_set():
            _ignore(lambda: stub.Score(many, metadata=A, timeout=0.001))

    def resend(stub, stop):
        i = 0
        while not stop.is_set():
            i += 1
            for text in ("first", f"other {i}"):
                g = pb.GroupRequest(run_id=run_a, group_id=f"r{threading.get_ident()}", step=1, spec=FORMAT,
                                    samples=[pb.Sample(completion=text)])
                _ignore(lambda: list(stub.ScoreGroups(iter([g]), metadata=A, timeout=30)))

    pairs = pb.ScoreRequest(samples=[pb.Sample(completion="<think>x</think>" + "</think><answer></answer>" * 6000)],
                            spec=FORMAT)

    def r1_quadratic(stub, stop):
        while not stop.is_set():
            _ignore(lambda: stub.Score(pairs, metadata=A, timeout=60))

    nasty = "\\boxed{7}" + "\\   " * 16 + "X\\boxed{7}" * 3

    def math_backtrack(stub, stop):
        s = pb.Sample(completion=nasty)
        s.reference.string_value = "8"
        while not stop.is_set():
            _ignore(lambda: stub.Score(pb.ScoreRequest(samples=[s], spec=MATH), metadata=A, timeout=60))

    return [Attack("flood", "-", 8, flood), Attack("tiny-groups", "-", 8, tiny_groups), Attack("unread-history", "3", 8, unread_history),
            Attack("huge-spec", "4", 2, huge_spec), Attack("validation", "4", 2, validation),
            Attack("store-poison", "5", 2, store_poison), Attack("dryrun", "7", 20, dryrun),
            Attack("components", "7", 2, components), Attack("bookkeeping", "7", 4, bookkeeping),
            Attack("bad-keys", "9", 4, bad_keys), Attack("cancelled", "red team", 4, cancelled),
            Attack("resend", "13", 2, resend), Attack("r1-quadratic", "2", 2, r1_quadratic),
            Attack("math-backtrack", "11", 16, math_backtrack)]


def attack_process(name: str, address: str, key_a: str, run_a: str, stop) -> None:
    """Team A's side, in its own process (its client work must not share the server's or
    team B's interpreter): run attack `name`'s threads until `stop` is set."""
    (attack,) = [a for a in attacks(key_a, run_a) if a.name == name]
    s = threading.Event()

    def run() -> None:
        with grpc.insecure_channel(address) as c:
            attack.body(pb_grpc.RewardServiceStub(c), s)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(attack.threads)]
    for t in threads:
        t.start()
    stop.wait()
    s.set()
    for t in threads:
        t.join(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5, help="B's measuring time per row")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-inflight", type=int, default=64, help="team A's samples in flight")
    ap.add_argument("--components-per-s", type=float, default=1000,
                    help="team A's verifications per second (burst 8,192: the largest message)")
    ap.add_argument("--database-url", help="default: a fresh SQLite file")
    ap.add_argument("--only", help="comma-separated attack names")
    args = ap.parse_args()

    import multiprocessing
    import subprocess
    import sys
    from pathlib import Path

    from reward_server.auth import KeyStore
    from reward_server.store import ScoreStore

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/f.db"
        store = ScoreStore(url)
        keys = KeyStore(store)
        key_a, _ = keys.create("team-a")
        key_b, _ = keys.create("team-b")
        store.close()
        config = Path(tmp) / "server.toml"
        config.write_text(f"""database_url = "{url}"
auth = "on"
auto_migrate = true
workers = {args.workers}
cache_ttl_s = 0
port = 0
[quotas.teams.team-a]
max_inflight_samples = {args.max_inflight}
max_streams = 8
samples_per_s = 2000
samples_burst = 4000
components_per_s = {args.components_per_s}
components_burst = 8192
""")
        ready = Path(tmp) / "port"
        server = subprocess.Popen([sys.executable, "-m", "reward_server", "--config", str(config), "--log-level",
                                   "ERROR", "--ready-file", str(ready)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (ready.exists() and ready.read_text().strip()):
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("the server did not start")
            time.sleep(0.2)
        address = f"127.0.0.1:{ready.read_text().strip()}"
        ch = grpc.insecure_channel(address)
        stub = pb_grpc.RewardServiceStub(ch)
        run_a = stub.StartRun(pb.StartRunRequest(name="a"), metadata=md(key_a)).run_id
        for _ in range(2):  # history for the unread streams: 1,200 rows of 16 KiB
            stub.Score(pb.ScoreRequest(samples=[pb.Sample(prompt="y" * 16_384, completion=str(i)) for i in range(600)],
                                       spec=FORMAT), metadata=md(key_a))

        def b_latencies(seconds: float) -> list[float]:
            out = []
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                t0 = time.perf_counter()
                (res,) = list(stub.ScoreGroups(iter([math_group(i)]), metadata=md(key_b), timeout=60))
                assert not res.HasField("error"), res.error
                out.append(time.perf_counter() - t0)
                i += 1
            return out

        b_latencies(1.0)  # warm
        alone = b_latencies(args.seconds)
        bound = 3 * q(alone, 99) + 100
        rows = [("B alone", "", alone, True)]
        chosen = set(args.only.split(",")) if args.only else None
        ctx = multiprocessing.get_context("spawn")
        for attack in attacks(key_a, run_a):
            if chosen and attack.name not in chosen:
                continue
            stop = ctx.Event()
            proc = ctx.Process(target=attack_process, args=(attack.name, address, key_a, run_a, stop), daemon=True)
            proc.start()
            time.sleep(2.0)  # the attacker builds its requests and starts
            during = b_latencies(args.seconds)
            stop.set()
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
            rows.append((attack.name, attack.finding, during, server.poll() is None))
            time.sleep(0.5)
        ch.close()
        server.terminate()
        server.wait(timeout=60)

    load = os.getloadavg()
    print(f"team B: one ScoreGroups group of 8 math samples at a time; server, team A and team B in three "
          f"processes; {args.workers} pool workers; {'SQLite' if not args.database_url else 'given database'}; "
          f"load average {load[0]:.1f} ({os.cpu_count()} CPUs)")
    print(f"bound: B's p99 <= 3 x {q(alone, 99):.1f} ms + 100 ms = {bound:.0f} ms")
    print(f"{'attack':<16} {'#17':>8} {'groups':>7} {'p50 ms':>8} {'p99 ms':>8} {'server':>7} {'within':>7}")
    failed = 0
    for name, finding, xs, up in rows:
        ok = up and (name == "B alone" or q(xs, 99) <= bound)
        failed += not ok
        print(f"{name:<16} {finding:>8} {len(xs):>7} {q(xs, 50):>8.1f} {q(xs, 99):>8.1f} {'up' if up else 'DOWN':>7} "
              f"{'yes' if ok else 'NO':>7}")
    print(f"{len(rows) - 1 - failed} of {len(rows) - 1} attacks within the bound (server: the same process "
          f"throughout)")


if __name__ == "__main__":
    main()
