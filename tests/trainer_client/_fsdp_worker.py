"""Run by test_fsdp.py under `torchrun --nproc_per_node 2` (gloo, CPU). Four runs of the
tiny model, 4 prompts per step (2 per rank), β > 0 with the reference refreshed every step:

    ddp      2 steps, DDP                                  (the yardstick)
    fsdp     2 steps, FSDP2, a checkpoint after every step
    fsdp_b   1 step, FSDP2, then resumed from its checkpoint-1 for step 2

After every step each rank appends `run step checksum` of the full (gathered) weights to
rank{R}.txt, and rank 0 saves the step-2 weights of ddp and fsdp to {run}_w2.pt."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from tests.trainer_client.test_resume import problems, tiny_cfg  # noqa: E402
from trainer_client.distributed import Dist, full_state_dict, weights_checksum  # noqa: E402
from trainer_client.trainer import train  # noqa: E402

model_dir, address, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
data = (problems(8), problems(2, 5))
results = {}
sharded = {}      # run -> were the parameters DTensor shards (1/W of the rows) during training


def run(name: str, strategy: str, steps: int, out_dir: str, resume: str | None = None):
    cfg = tiny_cfg(model_dir, out / out_dir, address, steps, dict(ref_refresh_every=1),
                   dist_strategy=strategy)
    cfg.grpo.prompts_per_step = 4          # 2 prompts per rank
    d = Dist(rank, world, strategy=strategy)

    def on_step(step, model):
        p = model.get_input_embeddings().weight
        sharded[name] = type(p).__name__ == "DTensor" and p.to_local().shape[0] < p.shape[0]
        sd = full_state_dict(model, d, all_ranks=True)        # collective under FSDP
        with open(out / f"rank{rank}.txt", "a") as f:
            f.write(f"{name} {step} {weights_checksum(sd)}\n")
        if rank == 0 and step == 2 and name in ("ddp", "fsdp"):
            torch.save({k: v.detach().cpu() for k, v in sd.items()}, out / f"{name}_w2.pt")

    r = train(cfg, problems=data, progress=False, log=lambda m: None, on_step=on_step,
              resume=resume)
    results[name if resume is None else name + "_resumed"] = {
        "run_id": r.run_id, "steps": r.steps, "sharded": sharded[name]}


run("ddp", "ddp", 2, "ddp")
run("fsdp", "fsdp", 2, "fsdp")
run("fsdp_b", "fsdp", 1, "fsdp_b")
run("fsdp_b", "fsdp", 2, "fsdp_b", resume=str(out / "fsdp_b" / "checkpoint-1"))
(out / f"result{rank}.json").write_text(json.dumps(results))
