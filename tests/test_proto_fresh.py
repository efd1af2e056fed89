"""The generated stubs in proto/gen match what protoc generates from proto/ now, and the
package's runtime bounds admit only the grpcio/protobuf versions those stubs accept."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT / "proto" / "gen" / "rewards" / "v1"


def test_generated_code_is_not_stale():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _requirements() -> dict[str, Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + [r for extra in meta["optional-dependencies"].values() for r in extra]
    return {Requirement(r).name: Requirement(r) for r in reqs}


def _lowest_admitted(req: Requirement) -> Version:
    lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==")]
    assert lows, f"{req} has no lower bound"
    return max(lows)


def test_runtime_bounds_match_the_stubs():
    # The stubs check the installed runtime at import: grpcio >= the grpcio-tools that made
    # them, protobuf of the same major and >= its protoc. A bound below that installs a
    # runtime the stubs refuse, so regenerating with a newer compiler must raise the bound.
    reqs = _requirements()
    grpc_made = Version(re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'",
                                  (GEN / "rewards_pb2_grpc.py").read_text()).group(1))
    pb_made = Version(re.search(r"# Protobuf Python Version: ([\d.]+)",
                                (GEN / "rewards_pb2.py").read_text()).group(1))
    assert _lowest_admitted(reqs["grpcio"]) >= grpc_made, (reqs["grpcio"], grpc_made)
    assert _lowest_admitted(reqs["protobuf"]) >= pb_made, (reqs["protobuf"], pb_made)
    assert not reqs["protobuf"].specifier.contains(f"{pb_made.major + 1}.0.0"), \
        f"{reqs['protobuf']} admits protobuf {pb_made.major + 1}, which refuses {pb_made.major}.x stubs"
    # the compiler is pinned to the one the stubs name, so `--check` is exact on every install
    assert str(reqs["grpcio-tools"].specifier) == f"=={grpc_made}", reqs["grpcio-tools"]
