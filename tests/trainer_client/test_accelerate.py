"""`accelerate launch` starts the trainer data-parallel, like torchrun.

accelerate's multi-process launcher (`--multi_gpu`) runs torch.distributed.run, on a
CPU-only host too, and sets the same RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR /
MASTER_PORT; the trainer's init then joins a gloo group on CPU. (`--cpu --num_processes N`
is not that: without `--mpirun_hostfile` accelerate starts ONE plain process there;
the last test pins that down so the README's advice stays true.) The run itself is
_ddp_worker.py's, 2 DDP steps against a real server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from trainer_client.reward_client import RewardClient  # noqa: E402
from trainer_client.tiny_model import build_tiny_model  # noqa: E402
from trainer_client.trainer import resolve_device  # noqa: E402

from ._launch import launch  # noqa: E402
from .test_resume import TINY  # noqa: E402

WORKER = Path(__file__).with_name("_ddp_worker.py")


def _accelerate(*args: str, tmp_path: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HOME": str(tmp_path / "hf")}  # no user config
    return subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--num_machines",
                           "1", "--mixed_precision", "no", "--dynamo_backend", "no", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_accelerate_launch_runs_two_ddp_ranks(server, tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny", TINY)
    addr = f"127.0.0.1:{server.port}"
    proc = launch("accelerate", WORKER, str(model_dir), addr, str(tmp_path),
                  env={"HF_HOME": str(tmp_path / "hf")})                 # no user config
    assert proc.returncode == 0, proc.stderr[-4000:]

    sums = [(tmp_path / f"rank{r}.txt").read_text().split("\n")[:-1] for r in (0, 1)]
    assert len(sums[0]) == 2 and sums[0] == sums[1]           # two ranks, identical weights
    assert sums[0][0].split()[1] != sums[0][1].split()[1]
    run_ids = {json.loads((tmp_path / f"result{r}.json").read_text())["run_id"] for r in (0, 1)}
    assert len(run_ids) == 1
    with RewardClient(addr) as c:
        records = c.query_scores(run_ids.pop())
    groups = {(r.step, r.group_id) for r in records if r.group_id.startswith("r")}
    assert groups == {(s, f"r{k}-s{s}-g{j}") for s in (1, 2) for k in (0, 1) for j in (0, 1)}


def test_accelerate_cpu_flag_starts_one_process(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os, json\nprint(json.dumps({k: os.environ.get(k) for k in "
                     "('WORLD_SIZE', 'ACCELERATE_USE_CPU')}))\n")
    proc = _accelerate("--cpu", "--num_processes", "2", str(probe), tmp_path=tmp_path,
                       timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert [json.loads(ln) for ln in lines] == [{"WORLD_SIZE": None, "ACCELERATE_USE_CPU": "True"}]


def test_accelerate_cpu_flag_makes_auto_device_cpu(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
