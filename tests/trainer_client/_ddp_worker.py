"""Run by test_ddp.py under `torchrun --nproc_per_node 2`: 2 GRPO steps, gloo on CPU.
Each rank appends `step checksum` of its weights after every step to rank{R}.txt,
writes its result (run id, logged history) to result{R}.json, and its own stdout and
stderr (file descriptors 1 and 2, where the trainer's console lines go) to
stdout{R}.txt / stderr{R}.txt. math abstains on a completion with no answer, so some
samples are non-OK and the ranks' counts differ.

With `--then-tasks` (test_ddp.py), the same ranks then run _ddp_tasks_worker.py's step, their
stdout and stderr going to tasks-stdout{R}.txt / tasks-stderr{R}.txt: one launch (~6 s of
process start and imports) serves both tests."""
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
for fd, name in ((1, "stdout"), (2, "stderr")):
    sys.stdout.flush(), sys.stderr.flush()
    os.dup2(os.open(out / f"{name}{rank}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
cfg = tiny_cfg(model_dir, out / "run", address, 2)
cfg.grpo.prompts_per_step = 4          # 2 prompts per rank
cfg.reward.components[0].params = {"unanswered": "abstain"}


def on_step(step, model):
    with open(out / f"rank{rank}.txt", "a") as f:
        f.write(f"{step} {weights_checksum(model)}\n")


# the trainer's own console (log=None) and progress bar, as under the CLI
result = train(cfg, problems=(problems(8), problems(2, 5)), on_step=on_step)
(out / f"result{rank}.json").write_text(json.dumps({"run_id": result.run_id,
                                                     "steps": result.steps,
                                                     "history": result.history}))

if sys.argv[4:] == ["--then-tasks"]:
    from tests.trainer_client._ddp_tasks_worker import run_tasks

    for fd, name in ((1, "stdout"), (2, "stderr")):
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(os.open(out / f"tasks-{name}{rank}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    run_tasks(model_dir, address, out, rank)
