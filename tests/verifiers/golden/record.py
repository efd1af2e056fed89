"""Record the golden verdicts of every registered `math` version (run once per version,
when it is released; a recorded file is never re-recorded for a released version):

    python -m tests.verifiers.golden.record [VERSION ...]   # default: versions without a file

Each line: {"case", "sha", "status", "reward"} (see cases.py).
"""
from __future__ import annotations

import json
import sys

from verifiers import registry
from verifiers.pool import VerifierPool

from .cases import cases, golden_path, run_case


def record(version: str) -> int:
    all_cases = cases()
    pool = VerifierPool(workers=1)
    try:
        lines = []
        for c in all_cases:
            lines.append(json.dumps({"case": c.key, "sha": c.sha, **run_case(c, version, pool)}))
    finally:
        pool.close()
    golden_path(version).write_text("\n".join(lines) + "\n")
    return len(lines)


def main(argv: list[str]) -> int:
    versions = argv or [v for v in sorted(registry._REGISTRY["math"]) if not golden_path(v).exists()]
    for v in versions:
        print(f"math@{v}: {record(v)} verdicts -> {golden_path(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
