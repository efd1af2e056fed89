"""Run by test_ddp.py under `torchrun --nproc_per_node 2`: 2 GRPO steps, gloo on CPU.
Each rank appends `step checksum` of its weights after every step to rank{R}.txt."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.trainer_client.test_resume import problems, tiny_cfg  # noqa: E402
from trainer_client.distributed import weights_checksum  # noqa: E402
from trainer_client.trainer import train  # noqa: E402

model_dir, address, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
rank = int(os.environ["RANK"])
cfg = tiny_cfg(model_dir, out / "run", address, 2)
cfg.grpo.prompts_per_step = 4          # 2 prompts per rank


def on_step(step, model):
    with open(out / f"rank{rank}.txt", "a") as f:
        f.write(f"{step} {weights_checksum(model)}\n")


result = train(cfg, problems=(problems(8), problems(2, 5)), progress=False, log=lambda m: None,
               on_step=on_step)
(out / f"result{rank}.json").write_text(json.dumps({"run_id": result.run_id,
                                                     "steps": result.steps}))
