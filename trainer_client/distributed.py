"""Data-parallel GRPO under `torchrun` or `accelerate launch`: DDP or FSDP2.

    torchrun --nproc_per_node 2 -m trainer_client train --model DIR --reward-address H:P ...
    torchrun --nproc_per_node 8 -m trainer_client train ... --dist-strategy fsdp
    accelerate launch --multi_gpu --num_processes 2 -m trainer_client train ...

Both launchers set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; the process
group is gloo on CPU and nccl on CUDA, and a CUDA rank uses GPU `LOCAL_RANK`.

Each rank takes its own slice of every global prompt batch (prompts j ≡ rank mod W),
samples its groups and streams them to the reward service itself; group ids carry the
rank (``r{rank}-s{step}-g{j}``), so a group never straddles ranks and its statistics
stay per group. Rank 0 alone starts the run (the run id is broadcast), prints the
banner and step lines, logs steps and writes checkpoints; a step's metrics are the
ranks' means, but its counts (non-OK samples) their sums (`mean_metrics`). Without a launcher (WORLD_SIZE unset) everything here is a no-op.

Strategies (`dist_strategy`):
    ddp   every rank holds the whole model; DistributedDataParallel averages gradients.
    fsdp  FSDP2 (`torch.distributed.fsdp.fully_shard`): each decoder layer (the classes
          in the model's `_no_split_modules`) and then the root is sharded, so a rank
          holds 1/W of the weights, gradients and AdamW state; a layer's weights are
          all-gathered for its forward and the gradients reduce-scattered (averaged).
          The frozen reference model (β > 0) is sharded the same way, so a refresh is a
          local shard-to-shard copy and it costs 1/W of a model per rank too.

Lockstep (why the trainer pads): every DDP backward all-reduces and every FSDP forward
all-gathers, so all ranks must run the same number of forward/backward passes and of
generate() calls, or the collectives pair up wrongly and hang. Ranks with fewer
micro-batches (uneven shards, DAPO dynamic sampling keeping fewer of their groups) run
padding passes (`padding_batch`) whose loss is multiplied by 0; under FSDP generation
uses HF's `synced_gpus` so a rank whose sequences end early keeps joining the
forwards; and dynamic sampling decides globally how many batches to draw.

Normalisers: both strategies average gradients over W ranks, so the loss of a rank is
divided by the global count / W (`loss_normalisers`): the average of the ranks' losses
is then the single-process loss over the whole global batch, however unevenly the
sequences fall on the ranks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import torch

Strategy = Literal["ddp", "fsdp"]


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    strategy: Strategy = "ddp"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def fsdp(self) -> bool:
        """True when the policy is sharded (FSDP2 over more than one rank)."""
        return self.enabled and self.strategy == "fsdp"


def init(device: torch.device, strategy: Strategy = "ddp") -> tuple[Dist, torch.device]:
    """Join the launcher's process group if WORLD_SIZE > 1; returns (Dist, this rank's device).

    gloo on CPU, nccl on CUDA. A CUDA device without an index becomes cuda:LOCAL_RANK
    (one GPU per rank); an explicit index is kept. Alone, returns (Dist(), device).
    """
    if strategy not in ("ddp", "fsdp"):
        raise ValueError(f"dist_strategy must be ddp or fsdp, got {strategy!r}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(strategy=strategy), device
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank, strategy), device


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


def all_gather_object(obj: Any, d: Dist) -> list[Any]:
    """Every rank's `obj`, in rank order (a list of one alone)."""
    if not d.enabled:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * d.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(x: float, d: Dist) -> float:
    if not d.enabled:
        return x
    import torch.distributed as dist

    t = torch.tensor([x], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0])


def all_reduce_max(x: int, d: Dist) -> int:
    if not d.enabled:
        return x
    import torch.distributed as dist

    t = torch.tensor([x], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t[0])


def loss_normalisers(num_sequences: int, num_tokens: float, d: Dist) -> tuple[float, float]:
    """(sequences, tokens) to divide this rank's loss by: the global counts / W.

    Gradients are averaged over W ranks, so dividing each rank's sum by global/W makes
    the update that of the whole global batch's loss, for any split of it over ranks
    (e.g. rank 0 keeps 3 groups and rank 1 one). Alone: the counts themselves.
    """
    if not d.enabled:
        return float(num_sequences), float(num_tokens)
    import torch.distributed as dist

    t = torch.tensor([float(num_sequences), float(num_tokens)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0]) / d.world_size, float(t[1]) / d.world_size


def global_std(values: torch.Tensor, d: Dist) -> torch.Tensor:
    """Sample (n−1) standard deviation of `values` (n,) pooled over all ranks, float64 scalar.

    Two all-reduces (count and sum, then the squared deviations from the global mean),
    so it equals torch.std of the concatenation of every rank's values. 0 when n < 2.
    """
    v = values.detach().double().cpu().view(-1)
    if not d.enabled:
        return v.std() if v.numel() > 1 else torch.zeros((), dtype=torch.float64)
    import torch.distributed as dist

    s = torch.tensor([float(v.numel()), float(v.sum())], dtype=torch.float64)
    dist.all_reduce(s)
    n = s[0]
    mean = s[1] / n.clamp(min=1)
    sq = ((v - mean) ** 2).sum().view(1)
    dist.all_reduce(sq)
    return (sq[0] / (n - 1)).sqrt() if n > 1 else torch.zeros((), dtype=torch.float64)


def mean_metrics(metrics: dict[str, float], d: Dist, sums: frozenset[str] = frozenset()
                 ) -> dict[str, float]:
    """Metrics over ranks in one all-reduce: the keys in `sums` (this rank's counts, e.g.
    non-OK samples) are summed, so a count stays a whole number of samples; the others
    are averaged, NaN-aware (a rank's NaN is left out; NaN when every rank's is).
    Every rank must pass the same keys."""
    if not d.enabled:
        return metrics
    import torch.distributed as dist

    keys = sorted(metrics)
    v = torch.tensor([metrics[k] for k in keys], dtype=torch.float64)
    ok = (~torch.isnan(v)).double()
    both = torch.stack([torch.nan_to_num(v) * ok, ok])
    dist.all_reduce(both)
    out = {}
    for k, total, n in zip(keys, both[0].tolist(), both[1].tolist()):
        out[k] = float("nan") if n == 0 else total if k in sums else total / n
    return out


def barrier(d: Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()


# --- wrapping --------------------------------------------------------------------------

def fully_shard_model(model, device: torch.device):
    """FSDP2 in place: each `_no_split_modules` block (a decoder layer), then the root.

    The model may sit on the CPU (load it there when it does not fit one GPU): the
    shards move to `device`'s type of mesh. Returns the same (now sharded) module.
    Build the optimizer right after this, before any forward. RuntimeError when this
    torch has no FSDP2.
    """
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError as e:  # pragma: no cover - depends on the installed torch
        raise RuntimeError(f"dist_strategy fsdp needs FSDP2 (torch.distributed.fsdp."
                           f"fully_shard, torch >= 2.6); this torch is {torch.__version__}") from e

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    blocks = set(getattr(model, "_no_split_modules", None) or ())
    for sub in model.modules():
        if sub is not model and type(sub).__name__ in blocks:
            fully_shard(sub, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def wrap(model, d: Dist, device: torch.device):
    """The module to run the gradient passes through: DDP around `model`, or `model`
    itself sharded in place by FSDP2, or `model` alone (one process)."""
    if not d.enabled:
        return model
    if d.fsdp:
        return fully_shard_model(model, device)
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def padding_batch(pad_token_id: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """A one-token prompt and one-token completion, each (1, 1): the input of a padding
    pass, which a rank with fewer micro-batches runs so the collectives stay paired."""
    ids = torch.full((1, 1), pad_token_id, dtype=torch.long, device=device)
    ones = torch.ones((1, 1), dtype=torch.long, device=device)
    return ids, ones, ids, ones


def grad_norm_value(norm) -> float:
    """clip_grad_norm_'s result as a float (FSDP2 returns a DTensor: its full value)."""
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


# --- full state dicts (checkpoints, vLLM weight sync, tests) -----------------------------

def full_state_dict(model, d: Dist, *, all_ranks: bool = False) -> dict[str, torch.Tensor] | None:
    """The whole model's weights as plain tensors, name -> tensor.

    Under FSDP every rank must call this (an all-gather); with all_ranks=False only rank 0
    gets the dict (on the CPU: get_model_state_dict(full_state_dict=True,
    cpu_offload=True)) and the others get None; with all_ranks=True every rank gets it,
    on the model's device. Otherwise the model's own state_dict().
    """
    if not d.fsdp:
        return model.state_dict() if (all_ranks or d.is_main) else None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                             cpu_offload=not all_ranks))
    return sd if (all_ranks or d.is_main) else None


def optimizer_state(model, optimizer, d: Dist) -> dict[str, Any] | None:
    """The optimizer's full state keyed by parameter name (rank 0; others None).

    Name-keyed (get_optimizer_state_dict, full_state_dict=True, cpu_offload=True), the
    same layout whatever the strategy. Collective under FSDP; under DDP rank 0 alone may call.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    osd = get_optimizer_state_dict(model, optimizer, options=StateDictOptions(
        full_state_dict=True, cpu_offload=True))
    return osd if d.is_main else None


def load_optimizer_state(model, optimizer, state: dict[str, Any]) -> None:
    """Load a name-keyed full optimizer state (every rank passes the whole dict)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state,
                             options=StateDictOptions(full_state_dict=True))


def weights_checksum(model_or_state: Any) -> str:
    """sha256 of every tensor's bytes in name order (identical weights -> same digest).

    Takes a module (its state_dict()) or a name -> tensor dict (e.g. full_state_dict()).
    """
    import hashlib

    sd = model_or_state if isinstance(model_or_state, dict) else model_or_state.state_dict()
    h = hashlib.sha256()
    for _, p in sorted(sd.items()):
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

