"""Per-run cgroups shared by several sandbox backends on one host (replicas, a test run
beside a server): one backend's clean-up must not break another's next run."""
from __future__ import annotations

import pytest

from verifiers.sandbox.cgroups import CgroupManager


def _manager() -> CgroupManager:
    m = CgroupManager()
    mem_ok, pids_ok, why = m.probe()
    if not (mem_ok or pids_ok):
        pytest.skip(f"no cgroups here: {why}")
    return m


def test_a_backend_closing_does_not_remove_the_parent_another_backend_still_uses():
    a, b = _manager(), _manager()
    b.cleanup()            # b closes while a has no run in flight: the shared parent is empty
    run = a.create(memory_bytes=64 << 20, processes=16)
    assert run is not None
    try:
        assert all(d.is_dir() for d in run.dirs)
    finally:
        run.remove()
    a.cleanup()
