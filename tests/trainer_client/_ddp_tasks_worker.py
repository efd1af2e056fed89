"""Run by test_ddp.py under `torchrun --nproc_per_node 2`, in the ranks of _ddp_worker.py
after its run (`--then-tasks`: one launch serves both tests): 1 GRPO step on rows that each
carry a task of their own, so the two ranks' batches hold different tasks. Writes each
rank's logged history to tasks{R}.json."""
from __future__ import annotations

import json
from pathlib import Path

from tests.trainer_client.test_resume import problems, tiny_cfg
from trainer_client.data import Problem
from trainer_client.trainer import train


def run_tasks(model_dir: str, address: str, out: Path, rank: int) -> None:
    cfg = tiny_cfg(model_dir, out / "tasks-run", address, 1)
    rows = [Problem(p.question, p.answer, {}, task=f"t{i}", source=f"f.jsonl row {i + 1}")
            for i, p in enumerate(problems(8))]
    result = train(cfg, problems=(rows, []), progress=False, log=lambda m: None)
    (out / f"tasks{rank}.json").write_text(json.dumps(result.history))
