"""Issue #20: rewardctl is a client of the service. It speaks the contract only through
rewards_client (no rewards.v1 / *_pb2 import of its own), and the server never imports it."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported(package: str) -> dict[str, set[str]]:
    """file -> the modules it imports (absolute names; relative ones as written)."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        out[str(path.relative_to(ROOT))] = names
    return out


def test_rewardctl_speaks_the_contract_only_through_rewards_client():
    bad = {f: sorted(n for n in names if n.startswith(("rewards.", "grpc")) or n.endswith("_pb2"))
           for f, names in imported("rewardctl").items()}
    assert not {f: n for f, n in bad.items() if n}


def test_the_server_does_not_import_rewardctl():
    bad = {f: sorted(n for n in names if n == "rewardctl" or n.startswith("rewardctl."))
           for f, names in imported("reward_server").items()}
    assert not {f: n for f, n in bad.items() if n}
