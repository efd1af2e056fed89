"""Every registered `math` version still gives its recorded verdicts (history stays
replayable): the golden files in this folder, recorded by `record.py` (see cases.py).

In-process (the server adds nothing to a verdict), about 2,000 cases a version; the
cases built to outrun an unbounded call go through one worker pool with its time limit.
The real-world set lives outside the repository: its lines are checked where it exists.
"""
import json

import pytest

from verifiers import registry
from verifiers.pool import VerifierPool

from .cases import cases, golden_path, run_case

VERSIONS = sorted(registry._REGISTRY["math"])


def test_every_registered_version_has_a_golden_file():
    missing = [v for v in VERSIONS if not golden_path(v).exists()]
    assert not missing, f"no golden verdicts for math@{missing}: run python -m tests.verifiers.golden.record"


@pytest.fixture(scope="module")
def pool():
    p = VerifierPool(workers=1)
    yield p
    p.close()


@pytest.fixture(scope="module")
def by_key():
    return {c.key: c for c in cases()}


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_verdicts_unchanged(version, by_key, pool):
    recorded = [json.loads(line) for line in golden_path(version).read_text().splitlines()]
    checked, changed = 0, []
    for g in recorded:
        c = by_key.get(g["case"])
        if c is None:
            assert g["case"].startswith("realworld:"), f"{g['case']} is recorded but no longer a case"
            continue  # the real-world set is not on this machine
        assert c.sha == g["sha"], f"{g['case']}: its inputs changed since math@{version} was recorded"
        now = run_case(c, version, pool)
        want = {k: g[k] for k in now}
        if now != want:
            changed.append(f"{g['case']}: recorded {want}, now {now}")
        checked += 1
    assert checked >= 600
    assert not changed, f"math@{version} changed {len(changed)} verdicts:\n" + "\n".join(changed[:20])
