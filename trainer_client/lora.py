"""LoRA through the `peft` library, and the reference model that comes free with it.

With adapters, π_ref is the base model: the same module with its adapters disabled
(`with model.disable_adapter():`), so β > 0 costs no second copy of the weights.
Without adapters, the reference is a frozen deep copy. Either way `reference_logprobs`
is the one call the trainer makes.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch


def apply_lora(model, *, r: int, alpha: int = 16, dropout: float = 0.0,
               target_modules: list[str] | str = "all-linear"):
    """Wrap `model` with fresh LoRA adapters (only they are trainable). Needs `peft`."""
    try:
        from peft import LoraConfig, get_peft_model
    except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
        raise RuntimeError("LoRA (grpo.lora_r > 0) needs the `peft` package: "
                           "pip install peft") from e
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                     target_modules=target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def is_peft(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


class Reference:
    """π_ref for the KL term: adapters-off for a PEFT policy, else a frozen copy.

    `refresh()` makes the current policy the new reference (every N steps, optional):
    a weight copy for the frozen copy; for LoRA, the adapters are merged into the base
    and re-initialised to zero, so "adapters off" is again the current policy.
    `state_dict()` / `load_state_dict()` carry what a refresh changed across a resume.
    Under FSDP the trainer shards `copy` like the policy; refresh() then copies shard to
    shard (both state dicts hold DTensors with the same placements).
    """

    def __init__(self, policy):
        self.policy = policy
        self.shared = is_peft(policy)
        self.copy = None if self.shared else copy.deepcopy(policy).eval().requires_grad_(False)

    @property
    def kind(self) -> str:
        return "adapters_off" if self.shared else "copy"

    def context(self):
        return self.policy.disable_adapter() if self.shared else contextlib.nullcontext()

    def module(self):
        return self.policy if self.shared else self.copy

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What rebuilds this reference, on the CPU: the frozen copy's weights, or (LoRA)
        the base model's frozen weights, into which refresh() merges the adapters."""
        if self.shared:
            return {n: p.detach().cpu().clone() for n, p in self.policy.named_parameters()
                    if not p.requires_grad}
        return {k: v.detach().cpu().clone() for k, v in self.copy.state_dict().items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore state_dict()'s output (into the unsharded modules). Raises ValueError
        when it names tensors this reference does not have."""
        target = self.policy if self.shared else self.copy
        unknown = set(state) - set(target.state_dict())
        if unknown:
            raise ValueError(f"reference state holds tensors this model lacks: {sorted(unknown)[:3]}")
        target.load_state_dict(state, strict=not self.shared)

    @torch.no_grad()
    def refresh(self) -> None:
        if not self.shared:
            self.copy.load_state_dict(self.policy.state_dict())
            return
        # merge the adapters into the base weights, then zero the adapters (B = 0).
        base = self.policy.get_base_model()
        for mod in base.modules():
            if hasattr(mod, "merge") and hasattr(mod, "lora_B"):
                mod.merge()
                mod.merged_adapters = []           # the merge is now part of the base weights
                for b in mod.lora_B.values():
                    b.weight.zero_()


def save_model(model, tokenizer, path: Path, *, merged: bool = False,
               state_dict: dict[str, torch.Tensor] | None = None) -> str:
    """save_pretrained; for PEFT, the adapters alone or (merged=True) full merged weights.

    state_dict: the full weights of a sharded (FSDP) model, gathered on this rank.
    """
    path.mkdir(parents=True, exist_ok=True)
    if state_dict is not None:   # a copy: save_pretrained drops tied keys from its dict
        model.save_pretrained(path, state_dict=dict(state_dict))
    elif is_peft(model) and merged:
        merged_model = copy.deepcopy(model).merge_and_unload()
        merged_model.save_pretrained(path)
    else:
        model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
