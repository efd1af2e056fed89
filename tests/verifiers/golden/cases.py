"""The cases whose verdicts pin each registered version's behaviour (golden files).

Sources, each case named `SUITE:ID` with a sha256 of its inputs (so a changed data file is
detected, not silently re-graded):

- `forms`, `heldout`: benchmarks/data/math_{forms,heldout}.jsonl (in the repository);
- `realworld`: /work/shared/benchmarks/math_realworld_dev.jsonl (outside the repository;
  skipped where absent), the question going in as the prompt;
- `adversarial`: tests/verifiers/math/test_adversarial.py's CHEATS (in-process) and
  EXHAUSTING (through the worker pool: these are built to outrun an unbounded call).

Recorded by `python -m tests.verifiers.golden.record`, checked by test_golden.py.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
GOLDEN_DIR = Path(__file__).resolve().parent
DATA = REPO / "benchmarks" / "data"
REALWORLD = Path("/work/shared/benchmarks/math_realworld_dev.jsonl")
# Versions with a golden file: every registered `math` version (test_golden checks that).
POOL_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Case:
    key: str  # SUITE:ID
    completion: str
    reference: Any
    params: dict = field(default_factory=dict)
    prompt: str | None = None
    pooled: bool = False  # run through the worker pool (hard time limit), not in-process

    @property
    def sha(self) -> str:
        blob = json.dumps([self.completion, self.reference, self.params, self.prompt], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cases(include_realworld: bool = True) -> list[Case]:
    from tests.verifiers.math.test_adversarial import CHEATS, EXHAUSTING

    out = []
    for suite in ("forms", "heldout"):
        for c in _jsonl(DATA / f"math_{suite}.jsonl"):
            out.append(Case(f"{suite}:{c['id']}", c["pred"], c["gold"], c.get("params", {})))
    if include_realworld and REALWORLD.exists():
        for c in _jsonl(REALWORLD):
            out.append(Case(f"realworld:{c['id']}", c["completion"], c["reference"], {}, c["question"]))
    for i, (completion, reference) in enumerate(CHEATS):
        out.append(Case(f"adversarial:cheat-{i}", completion, reference))
    for i, completion in enumerate(EXHAUSTING):
        out.append(Case(f"adversarial:exhausting-{i}", completion, "1", pooled=True))
    return out


def golden_path(version: str) -> Path:
    return GOLDEN_DIR / f"math@{version}.jsonl"


def run_case(c: Case, version: str, pool) -> dict:
    """One case's verdict under `version`: its status and reward, or the request error a
    bad reference raises (`{"status": "REFUSED", "reward": None, "error": class name}`)."""
    import verifiers
    from verifiers.errors import VerifierError

    for _ in range(3):  # a budget that ran out on a loaded machine is not a verdict: try again
        try:
            if c.pooled:
                r, _ = pool.submit("math", version, c.completion, c.reference, c.params, POOL_TIMEOUT_S,
                                   prompt=c.prompt).result(timeout=60)
            else:
                r = verifiers.verify("math", c.completion, c.reference, c.params, version=version, prompt=c.prompt)
        except VerifierError as e:
            return {"status": "REFUSED", "reward": None, "error": type(e).__name__}
        if "too slow to evaluate" not in r.reason and r.status.value != "TIMEOUT":
            break
    return {"status": r.status.value, "reward": r.reward}
