"""Run by test_ddp.py under `torchrun --nproc_per_node 2`: 1 GRPO step on rows that each
carry a task of their own, so the two ranks' batches hold different tasks. Writes each
rank's logged history to tasks{R}.json."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.trainer_client.test_resume import problems, tiny_cfg  # noqa: E402
from trainer_client.data import Problem  # noqa: E402
from trainer_client.trainer import train  # noqa: E402

model_dir, address, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
rank = int(os.environ["RANK"])
cfg = tiny_cfg(model_dir, out / "tasks-run", address, 1)
rows = [Problem(p.question, p.answer, {}, task=f"t{i}", source=f"f.jsonl row {i + 1}")
        for i, p in enumerate(problems(8))]
result = train(cfg, problems=(rows, []), progress=False, log=lambda m: None)
(out / f"tasks{rank}.json").write_text(json.dumps(result.history))
