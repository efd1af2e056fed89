"""Per-run overhead of the code verifier's sandbox backends: the wall time of a trivial
program run sandboxed minus the same program run directly, medians over N runs.

    python benchmarks/code_sandbox_overhead.py [--runs 40] [--only bubblewrap|prefork|docker]
                                               [--image rlvr-sandbox:latest] [--setup]

- bubblewrap: the local backend (namespaces, mounts, per-run cgroups, rlimits), a fresh
  sandbox and interpreter per run. Target <= 30 ms.
- prefork: the same backend's Python path (`run_python`): the run is forked from a
  pre-started interpreter into new PID/mount/IPC namespaces. Its "overhead" is measured
  the same way (sandboxed `pass` minus a direct `python3 -c pass`), so it is negative
  when a sandboxed run costs less than starting an interpreter. Target <= 30 ms.
- docker: the Docker backend with a warm pool (the containers are started before timing;
  a run reuses one and resets it afterwards). Target <= 100 ms. The cost of starting a
  container (paid once per pool slot, and when a broken container is replaced) is
  printed separately. No engine or no image: skipped with the reason (--setup runs
  scripts/docker-runner-image.sh first, which may start dockerd and build the image).

Direct and sandboxed runs are interleaved, so that load from other processes on the
host hits both alike; the overhead is reported as the difference of the medians and as
the median of the paired differences.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from verifiers.sandbox import BubblewrapBackend, DockerBackend, Limits, SandboxBackend  # noqa: E402

PY = ["/usr/bin/python3", "-c", "pass"]
TARGETS_MS = {"bubblewrap": 30.0, "prefork": 30.0, "docker": 100.0}


def ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def measure(backend: SandboxBackend, runs: int, prefork: bool = False) -> dict[str, float]:
    limits = Limits()

    def direct() -> None:
        subprocess.run(PY, check=True)

    def sandboxed() -> None:
        r = (backend.run_python({"main.py": b"pass"}, "main.py", b"", limits) if prefork
             else backend.run({}, PY, b"", limits))
        if r.exit_code != 0:
            raise RuntimeError(f"sandboxed run failed: {r.describe()}: {r.stderr[-300:]!r}")

    for _ in range(3):  # warm-up: page cache, pool, cgroup directories
        direct()
        sandboxed()
    d, s = [], []
    for _ in range(runs):
        d.append(ms(direct))
        s.append(ms(sandboxed))
    return {"direct": statistics.median(d), "sandboxed": statistics.median(s),
            "overhead": statistics.median(s) - statistics.median(d),
            "paired": statistics.median(b - a for a, b in zip(d, s)), "min_overhead": min(s) - min(d),
            "p90_sandboxed": sorted(s)[int(0.9 * (len(s) - 1))]}


def report(name: str, m: dict[str, float], runs: int) -> None:
    target = TARGETS_MS[name]
    verdict = "within" if m["overhead"] <= target else "OVER"
    print(f"{name:<11} python3 -c pass, {runs} runs: direct median {m['direct']:6.1f} ms; sandboxed median "
          f"{m['sandboxed']:6.1f} ms (p90 {m['p90_sandboxed']:.1f})")
    print(f"{'':<11} overhead median {m['overhead']:6.1f} ms (paired {m['paired']:.1f}, min {m['min_overhead']:.1f}) "
          f"-> {verdict} the {target:g} ms target")


def bench_bubblewrap(runs: int) -> None:
    backend = BubblewrapBackend()
    ok, why = backend.available()
    if not ok:
        print(f"bubblewrap  SKIPPED: {why}")
        return
    report("bubblewrap", measure(backend, runs), runs)


def bench_prefork(runs: int) -> None:
    backend = BubblewrapBackend()
    ok, why = backend.available()
    if not ok:
        print(f"prefork     SKIPPED: {why}")
        return
    m = measure(backend, runs, prefork=True)
    report("prefork", m, runs)
    print(f"{'':<11} runs forked from a zygote: {backend.stats['prefork_runs']}, fresh fallbacks: "
          f"{backend.stats['fresh_python_runs']} ({backend.limits_in_force()['python_runs'][:60]}...)")
    backend.close()


def bench_docker(runs: int, image: str | None, setup: bool) -> None:
    if setup:
        cmd = ["bash", str(REPO / "scripts" / "docker-runner-image.sh")] + (["--image", image] if image else [])
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        if proc.returncode != 0:
            print(f"docker      SKIPPED: {last}")
            return
        print(f"docker      engine and image ready in {time.monotonic() - t0:.1f} s ({last})")
    backend = DockerBackend(image=image, pool_size=1)
    try:
        t0 = time.monotonic()
        ok, why = backend.available()  # starts the first container
        if not ok:
            print(f"docker      SKIPPED: {why}")
            return
        print(f"docker      first container started and checked in {(time.monotonic() - t0) * 1000:.0f} ms "
              f"(image {backend.image}); warm pool of {backend.pool_size}")
        before = dict(backend.stats)
        m = measure(backend, runs)
        started = backend.stats["started"] - before["started"]
        report("docker", m, runs)
        print(f"{'':<11} containers started while timing: {started} (warm pool reused across "
              f"{backend.stats['runs'] - before['runs']} runs)")
        # What a cold start costs: a container replaced (e.g. after a run broke it).
        cold = []
        for _ in range(3):
            t0 = time.perf_counter()
            box = backend._start_box(Limits())
            cold.append((time.perf_counter() - t0) * 1000)
            backend._kill_container(box.id, box.sock, box.sock_io)
        print(f"{'':<11} a cold container start (create + attach + start + agent ready): median "
              f"{statistics.median(cold):.0f} ms — paid only when the pool grows or replaces a container")
    finally:
        backend.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=40, help="timed runs per side (at least 30)")
    ap.add_argument("--only", choices=["bubblewrap", "prefork", "docker"])
    ap.add_argument("--image", default=None, help="Docker runner image (default $RLVR_SANDBOX_IMAGE or "
                                                  "rlvr-sandbox:latest)")
    ap.add_argument("--setup", action="store_true", help="run scripts/docker-runner-image.sh first")
    args = ap.parse_args()
    runs = max(30, args.runs)
    if args.only in (None, "bubblewrap"):
        bench_bubblewrap(runs)
    if args.only in (None, "prefork"):
        bench_prefork(runs)
    if args.only in (None, "docker"):
        bench_docker(runs, args.image, args.setup)


if __name__ == "__main__":
    main()
