"""Every registered `math` version still gives its recorded verdicts (history stays
replayable): the golden files in this folder, recorded by `record.py` (see cases.py).

In-process (the server adds nothing to a verdict; two processes), about 2,000 cases a version; the
cases built to outrun an unbounded call go through one worker pool with its time limit.
The real-world set lives outside the repository: its lines are checked where it exists.
"""
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

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


def _verdicts(version: str, keys: list[str]) -> dict[str, dict]:
    """The in-process cases' verdicts, in a process of their own (two at once: the suite's
    slowest test ran them one after the other on one core)."""
    by_key = {c.key: c for c in cases()}
    return {k: run_case(by_key[k], version, None) for k in keys}


@pytest.fixture(scope="module")
def processes():
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        yield ex


@pytest.fixture(scope="module")
def by_key():
    return {c.key: c for c in cases()}


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_verdicts_unchanged(version, by_key, pool, processes):
    recorded = [json.loads(line) for line in golden_path(version).read_text().splitlines()]
    here = [g["case"] for g in recorded if g["case"] in by_key and not by_key[g["case"]].pooled]
    halves = [processes.submit(_verdicts, version, here[i::2]) for i in range(2)]
    computed = {k: v for h in halves for k, v in h.result(timeout=600).items()}
    checked, changed = 0, []
    for g in recorded:
        c = by_key.get(g["case"])
        if c is None:
            assert g["case"].startswith("realworld:"), f"{g['case']} is recorded but no longer a case"
            continue  # the real-world set is not on this machine
        assert c.sha == g["sha"], f"{g['case']}: its inputs changed since math@{version} was recorded"
        now = computed[c.key] if c.key in computed else run_case(c, version, pool)
        want = {k: g[k] for k in now}
        if now != want:
            changed.append(f"{g['case']}: recorded {want}, now {now}")
        checked += 1
    assert checked >= 600
    assert not changed, f"math@{version} changed {len(changed)} verdicts:\n" + "\n".join(changed[:20])
