"""Scripts that run *inside* the sandbox (standard library only), shipped as files.

- candidate_runner.py: loads the candidate's code and reports return values.
- test_runner.py: runs the reference's test code against recorded answers.
- plainwire.py (copied from verifiers/code/plainwire.py): the value encoding both use.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def files(*names: str) -> dict[str, bytes]:
    """The named harness scripts plus plainwire.py, as sandbox files."""
    out = {n: (_HERE / n).read_bytes() for n in names}
    out["plainwire.py"] = (_HERE.parent / "plainwire.py").read_bytes()
    return out
