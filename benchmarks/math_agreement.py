"""Agreement of the `math` verifier, and of Math-Verify, with labelled answer pairs.

    python benchmarks/math_agreement.py [--show-failures] [--workers 2] [--data DIR]

Data (see /work/shared/benchmarks/README.md):
- math_hardverify.jsonl: HardVerify-Math, 100 correct-but-hard-to-verify answers and
  100 wrong ones. We report the % of correct ones accepted and of wrong ones rejected.
- math_other_graders.jsonl: 151 test cases of other graders; we report agreement with
  their labels.

Each `pred` goes in as the completion (it is raw model output, not boxed) and `gold` as
the reference. Ours runs through a real `VerifierPool`, one call at a time, so the
latency includes the worker round trip. Math-Verify runs in this process (main
thread, its own signal-based timeouts) as `verify(parse(gold), parse(pred))`, each
wrapped in `$…$` unless already delimited (without it Math-Verify finds no LaTeX answer
in most raw preds).
"Accepted" means OK with reward 1; anything else (reward 0, ABSTAIN, TIMEOUT, ERROR)
counts as not accepted, and the non-OK statuses are listed.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from verifiers.core import Status
from verifiers.pool import VerifierPool

DATA = Path("/work/shared/benchmarks")
FILES = ("math_hardverify.jsonl", "math_other_graders.jsonl")
TIMEOUT_S = 3.0


def load(data: Path) -> dict[str, list[dict]]:
    return {name: [json.loads(line) for line in (data / name).read_text().splitlines() if line.strip()]
            for name in FILES}


def run_ours(cases: list[dict], workers: int) -> list[tuple[bool, str, str, float]]:
    """(accepted, status, reason, latency_s) per case, through the worker pool."""
    pool = VerifierPool(workers=workers)
    pool.warm_up()
    out = []
    try:
        for c in cases:
            t0 = time.perf_counter()
            try:
                res, _ = pool.submit("math", "1.0.0", c["pred"], c["gold"], {}, TIMEOUT_S).result()
                status, reason, reward = res.status.value, res.reason, res.reward
            except Exception as e:  # a request error (bad reference) is a non-acceptance here
                status, reason, reward = "REQUEST_ERROR", f"{type(e).__name__}: {e}", None
            dt = time.perf_counter() - t0
            out.append((status == Status.OK.value and reward == 1.0, status, reason, dt))
    finally:
        pool.close()
    return out


def inprocess_latency_s(cases: list[dict]) -> list[float]:
    """Seconds per call of the same verifier run in this thread (no pool round trip)."""
    import verifiers

    out = []
    for c in cases:
        t0 = time.perf_counter()
        verifiers.verify("math", c["pred"], c["gold"])
        out.append(time.perf_counter() - t0)
    return sorted(out)


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


def run_math_verify(cases: list[dict]) -> list[bool]:
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    def delimited(s: str) -> str:
        # Math-Verify only finds LaTeX inside delimiters (or \boxed); this wrap reproduces the
        # README's reference figure (129/151 on the other graders' file).
        return s if s.strip().startswith(("$", "\\(", "\\[")) or "\\boxed" in s else f"${s}$"

    out = []
    for c in cases:
        try:
            out.append(bool(verify(parse(delimited(c["gold"])), parse(delimited(c["pred"])))))
        except Exception:
            out.append(False)
    return out


def pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:5.1f}% ({n}/{d})" if d else "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show-failures", action="store_true", help="list the cases where we disagree with the label")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)

    data = load(args.data)
    hv, og = data["math_hardverify.jsonl"], data["math_other_graders.jsonl"]
    cases = hv + og
    ours = run_ours(cases, args.workers)
    mv = run_math_verify(cases)
    ours_hv, ours_og = ours[:len(hv)], ours[len(hv):]
    mv_hv, mv_og = mv[:len(hv)], mv[len(hv):]

    def hv_rates(accepted: list[bool]) -> tuple[str, str]:
        good = [a for a, c in zip(accepted, hv) if c["expected"]]
        bad = [a for a, c in zip(accepted, hv) if not c["expected"]]
        return pct(sum(good), len(good)), pct(len(bad) - sum(bad), len(bad))

    o_acc, o_rej = hv_rates([o[0] for o in ours_hv])
    m_acc, m_rej = hv_rates(mv_hv)
    o_agree = sum(o[0] == c["expected"] for o, c in zip(ours_og, og))
    m_agree = sum(a == c["expected"] for a, c in zip(mv_og, og))
    lat = sorted(o[3] for o in ours)
    local = inprocess_latency_s(cases)

    w = 44
    print(f"{'':{w}} {'ours (math@1.0.0)':>22} {'math-verify':>22}")
    print(f"{'HardVerify: correct answers accepted':{w}} {o_acc:>22} {m_acc:>22}")
    print(f"{'HardVerify: wrong answers rejected':{w}} {o_rej:>22} {m_rej:>22}")
    print(f"{'other graders: agreement with labels':{w}} {pct(o_agree, len(og)):>22} {pct(m_agree, len(og)):>22}")
    print(f"ours, latency per call through VerifierPool({args.workers} workers), n={len(lat)}: "
          f"p50 {percentile(lat, 0.5) * 1000:.1f} ms, p99 {percentile(lat, 0.99) * 1000:.1f} ms, "
          f"max {lat[-1] * 1000:.1f} ms")
    print(f"ours, latency per call in-process (no pool), n={len(local)}: "
          f"p50 {percentile(local, 0.5) * 1000:.1f} ms, p99 {percentile(local, 0.99) * 1000:.1f} ms, "
          f"max {local[-1] * 1000:.1f} ms")
    statuses = Counter(o[1] for o in ours)
    print("ours, statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))

    if args.show_failures:
        print("\nour disagreements with the labels:")
        for name, rows, res in (("hardverify", hv, ours_hv), ("other", og, ours_og)):
            for c, (acc, status, reason, _) in zip(rows, res):
                if acc != c["expected"]:
                    tag = c.get("grader") or c.get("kind")
                    print(f"- [{name}] expected={c['expected']} ours={status}{'' if status != 'OK' else ' ' + str(acc)}"
                          f" ({tag})\n    gold={c['gold']!r}\n    pred={c['pred'][-160:]!r}\n    why: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
