"""Run by test_ddp_dynamic.py under `torchrun --nproc_per_node 2` (gloo, CPU).

1. 3 GRPO steps under DDP with DAPO dynamic sampling (2 groups wanted per step, one
   prompt per rank per draw, up to 3 extra draws), "batch" advantage scale and the grpo
   (per-sequence) loss. A format regex that few random completions match ("[0-1]")
   makes most groups flat, so the ranks keep different numbers of groups, at times none. Each rank appends `step checksum` to rank{R}.txt and
   writes its history (the logged metrics) to result{R}.json.
2. The data-parallel helpers against a single-process computation: the global batch std,
   and a DDP gradient over an uneven split (rank 0: 6 rows in 2 micro-batches, rank 1:
   none, so 2 padding passes) against the full-batch gradient. Written to checks{R}.json.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from tests.trainer_client.test_resume import problems, tiny_cfg  # noqa: E402
from trainer_client import distributed  # noqa: E402
from trainer_client.trainer import train  # noqa: E402

model_dir, address, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
rank = int(os.environ["RANK"])
cfg = tiny_cfg(model_dir, out / "run", address, 3,
               dict(dynamic_sampling=True, max_extra_draws=3, scale="batch", loss_type="grpo",
                    prompts_per_step=2))
cfg.reward.components[1].params = {"kind": "regex", "pattern": "[0-1]"}


def on_step(step, model):
    with open(out / f"rank{rank}.txt", "a") as f:
        f.write(f"{step} {distributed.weights_checksum(model)}\n")


result = train(cfg, problems=(problems(16), []), progress=False, log=lambda m: None,
               on_step=on_step)
(out / f"result{rank}.json").write_text(json.dumps({"run_id": result.run_id,
                                                     "history": result.history}))

# --- 2. the helpers, directly -----------------------------------------------------------
d = distributed.Dist(rank, int(os.environ["WORLD_SIZE"]))
mine = torch.tensor([0.0, 1.0, 0.5]) if rank == 0 else torch.tensor([2.0])
pooled = torch.cat(distributed.all_gather_object(mine, d))
checks = {"global_std": float(distributed.global_std(mine, d)),
          "pooled_std": float(pooled.double().std())}

torch.manual_seed(0)
x = torch.randn(6, 4)                        # the global batch: 6 "sequences"
lin = torch.nn.Linear(4, 1)
full = torch.nn.Linear(4, 1)
full.load_state_dict(lin.state_dict())
(full(x).squeeze(1) ** 2).mean().backward()  # single process: mean over the 6 rows
ddp = torch.nn.parallel.DistributedDataParallel(lin)
rows = x if rank == 0 else x[:0]             # uneven: everything on rank 0
num_seqs, _ = distributed.loss_normalisers(len(rows), 0.0, d)
micro = [slice(i, i + 3) for i in range(0, len(rows), 3)]
micro += [None] * (distributed.all_reduce_max(len(micro), d) - len(micro))
for mb in micro:                             # the trainer's padding pattern
    if mb is None:
        (ddp(torch.zeros(1, 4)).sum() * 0.0).backward()
    else:
        ((ddp(rows[mb]).squeeze(1) ** 2).sum() / num_seqs).backward()
checks.update(micro_passes=len(micro), num_seqs=num_seqs,
              grad_max_abs_diff=float((lin.weight.grad - full.weight.grad).abs().max()),
              grad_norm=float(full.weight.grad.norm()))
(out / f"checks{rank}.json").write_text(json.dumps(checks))
dist.barrier()
