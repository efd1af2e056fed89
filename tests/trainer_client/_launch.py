"""Start a 2-process data-parallel worker the way users do (torchrun / accelerate launch),
on loopback with a free master port; one retry when that port was taken meanwhile
(free_port() releases it before the launcher binds it, and tests run side by side)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

PORT_TAKEN = ("address already in use", "eaddrinuse", "errno 98")


def launch(kind: str, worker: Path, *args: str, nproc: int = 2, timeout: int = 240,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """kind "torchrun" or "accelerate" (accelerate launch --multi_gpu: torch.distributed.run
    underneath, also on a CPU-only host). Returns the finished process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    for attempt in range(2):
        port = str(free_port())
        if kind == "torchrun":
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                   "--master_addr", "127.0.0.1", "--master_port", port]
        else:
            cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                   "--num_processes", str(nproc), "--num_machines", "1", "--mixed_precision",
                   "no", "--dynamo_backend", "no", "--main_process_port", port]
        proc = subprocess.run([*cmd, str(worker), *args], env=env, capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode == 0 or not any(s in proc.stderr.lower() for s in PORT_TAKEN):
            return proc
    return proc
