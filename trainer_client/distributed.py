"""Data-parallel GRPO with `torchrun` (DDP; gloo on CPU, nccl on CUDA).

    torchrun --nproc_per_node 2 -m trainer_client train --model DIR --reward-address H:P ...

Each rank takes its own slice of every global prompt batch (prompts j ≡ rank mod W),
samples its groups and streams them to the reward service itself; group ids carry the
rank (``r{rank}-s{step}-g{j}``), so a group never straddles ranks and its statistics
stay per group. DDP averages the gradients; the token-level normaliser is the global
token count (all-reduced), so the loss equals the single-process loss over the whole
batch. Rank 0 alone starts the run (the run id is broadcast), logs steps, evaluates
and writes checkpoints. Without torchrun (WORLD_SIZE unset) everything here is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: torch.device) -> Dist:
    """Join the torchrun process group if WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def shard(batch: list[Any], d: Dist) -> list[Any]:
    """This rank's prompts of a global batch: items j with j ≡ rank (mod world)."""
    return batch[d.rank::d.world_size] if d.enabled else batch


def broadcast_object(obj: Any, d: Dist) -> Any:
    """Rank 0's `obj` on every rank."""
    if not d.enabled:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(x: float, d: Dist) -> float:
    if not d.enabled:
        return x
    import torch.distributed as dist

    t = torch.tensor([x], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0])


def mean_metrics(metrics: dict[str, float], d: Dist) -> dict[str, float]:
    """Average each metric over ranks (NaN-aware); every rank must pass the same keys."""
    if not d.enabled:
        return metrics
    import torch.distributed as dist

    keys = sorted(metrics)
    v = torch.tensor([metrics[k] for k in keys], dtype=torch.float64)
    ok = (~torch.isnan(v)).double()
    both = torch.stack([torch.nan_to_num(v) * ok, ok])
    dist.all_reduce(both)
    mean = both[0] / both[1]
    return {k: float(m) if n > 0 else float("nan") for k, m, n in zip(keys, mean, both[1])}


def barrier(d: Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()


def wrap(model, d: Dist, device: torch.device):
    """DistributedDataParallel around `model` (rank 0's weights are broadcast)."""
    if not d.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def weights_checksum(model) -> str:
    """sha256 of every parameter's bytes, in order (identical weights -> same digest)."""
    import hashlib

    h = hashlib.sha256()
    for _, p in sorted(model.state_dict().items()):
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
