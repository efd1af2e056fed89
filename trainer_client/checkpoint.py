"""Resumable checkpoints: everything a run needs to continue bit-for-bit on CPU.

A checkpoint directory ``checkpoint-{step}/`` holds

    config.json, model.safetensors, tokenizer files   the policy (save_pretrained; a
                                                      usable HF model on its own)
    trainer_state.pt                                  optimizer, scheduler, RNG states
                                                      (python, numpy, torch CPU/CUDA),
                                                      step, data position, run id, and
                                                      the reference model when it moved
    trainer_state.json                                the same scalars, human-readable

With LoRA (some parameters frozen) the trainable tensors are also kept in
trainer_state.pt and restored from there (save_pretrained writes only the adapters).
The optimizer state is keyed by parameter name (torch.distributed.checkpoint's
get_optimizer_state_dict with full_state_dict=True), the same for one process, DDP and
FSDP, so a checkpoint written under one strategy loads under another (tested: FSDP's
into one process); checkpoints from before that, keyed by index, still load into an
unsharded run. When the reference model has been
refreshed (`ref_refresh_every`) it is no longer the starting model, so its weights are
saved too (`reference`: Reference.state_dict()) and a resumed run's KL term is the same.
Under FSDP the caller gathers the full weights on rank 0 and passes them as
`model_state`; rank 0 alone writes.
The data position is the number of prompt batches consumed; `batches()` is
deterministic given the seed, so the resumed run skips that many. Writes go to a
temporary directory renamed into place, so a crash never leaves a half checkpoint.
"""
from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "trainer_state.pt"


def capture_rng() -> dict[str, Any]:
    """The python, numpy and torch (CPU and every CUDA device) generator states."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CountingIterator:
    """Wraps the endless prompt-batch iterator and counts what was drawn (the data position)."""

    def __init__(self, it):
        self._it, self.consumed = it, 0

    def __iter__(self) -> "CountingIterator":
        return self

    def __next__(self):
        self.consumed += 1
        return next(self._it)

    def skip(self, n: int) -> None:
        for _ in range(n):
            next(self)


@dataclass
class TrainState:
    """What `load_checkpoint` returns besides the model weights."""

    step: int                          # last completed step
    batches_consumed: int              # data position
    run_id: str
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    rng: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    optimizer_format: str = "name"     # "name": parameter-name keys; "index": older checkpoints
    reference: dict[str, Any] | None = None   # Reference.state_dict() when it was saved


def save_checkpoint(path: str | Path, model, tokenizer, optimizer_state: dict[str, Any],
                    scheduler, *, step: int, batches_consumed: int, run_id: str,
                    rng: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                    model_state: dict[str, torch.Tensor] | None = None,
                    reference_state: dict[str, Any] | None = None) -> str:
    """Write a resumable checkpoint to `path` atomically; returns the path.

    optimizer_state: distributed.optimizer_state() (parameter-name keys).
    model_state: the full weights when `model` is sharded (FSDP); None = model's own.
    reference_state: Reference.state_dict() once the reference has been refreshed.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if model_state is not None:       # save_pretrained drops tied keys from the dict it gets
        model.save_pretrained(tmp, state_dict=dict(model_state))
    else:
        model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    params = list(model.named_parameters())
    policy = ({n: p.detach().cpu() for n, p in params if p.requires_grad}
              if not all(p.requires_grad for _, p in params) else None)
    torch.save({"step": step, "policy": policy, "batches_consumed": batches_consumed, "run_id": run_id,
                "optimizer": optimizer_state, "optimizer_format": "name",
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": rng if rng is not None else capture_rng(),
                "reference": reference_state,
                "extra": extra or {}}, tmp / STATE_FILE)
    (tmp / "trainer_state.json").write_text(json.dumps(
        {"step": step, "batches_consumed": batches_consumed, "run_id": run_id}, indent=1))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return str(path)


def is_checkpoint(path: str | Path) -> bool:
    return (Path(path) / STATE_FILE).exists()


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The resumable checkpoint-N with the largest N under `output_dir`, if any."""
    found = [(int(p.name.split("-")[1]), p) for p in Path(output_dir).glob("checkpoint-*")
             if p.name.split("-")[1].isdigit() and is_checkpoint(p)]
    return max(found)[1] if found else None


def load_checkpoint(path: str | Path, model) -> TrainState:
    """Copy the checkpoint's weights into `model` and return the rest of the state.

    `model` is the unsharded policy (under FSDP: before fully_shard); the optimizer
    state, the reference weights and the RNG states come back in the TrainState.

    `path` may be a checkpoint directory or an output directory (its latest checkpoint).
    Raises FileNotFoundError naming the path when there is no resumable checkpoint.
    """
    from transformers import AutoModelForCausalLM

    p = Path(path)
    if not is_checkpoint(p):
        latest = latest_checkpoint(p) if p.is_dir() else None
        if latest is None:
            raise FileNotFoundError(f"{p} is not a resumable checkpoint (no {STATE_FILE}) and "
                                    f"holds no checkpoint-N with one")
        p = latest
    s = torch.load(p / STATE_FILE, weights_only=False)
    if s.get("policy") is not None:          # LoRA: the trainable tensors only
        missing = set(s["policy"]) - {n for n, _ in model.named_parameters()}
        if missing:
            raise ValueError(f"checkpoint {p} holds parameters this model lacks: "
                             f"{sorted(missing)[:3]}")
        model.load_state_dict(s["policy"], strict=False)
    else:
        saved = AutoModelForCausalLM.from_pretrained(p, dtype=next(model.parameters()).dtype)
        model.load_state_dict(saved.state_dict())
        del saved
    return TrainState(step=s["step"], batches_consumed=s["batches_consumed"], run_id=s["run_id"],
                      optimizer=s["optimizer"], scheduler=s["scheduler"], rng=s["rng"],
                      extra=s.get("extra", {}),
                      optimizer_format=s.get("optimizer_format", "index"),
                      reference=s.get("reference"))
