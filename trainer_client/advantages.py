"""Group-relative advantages (GRPO, DeepSeekMath arXiv:2402.03300 §4.1.2).

Pure tensor maths, no I/O. Rewards arrive flat, prompt-major: the G completions of
prompt 0, then the G completions of prompt 1, ... so `rewards.view(B, G)` is the
group layout.

Non-OK samples (the reward service returned TIMEOUT, ERROR, ABSTAIN: no reward) are
marked by `valid=False` (or by a NaN reward when `valid` is None). They are left out
of their group's mean and standard deviation and of the batch standard deviation, and
their advantage is 0, so they contribute nothing to the policy-gradient term.

Worked example (the one users check first): 8 completions, 4 correct (reward 1),
4 wrong (reward 0): mean 0.5, sample std sqrt(8 * 0.25 / 7) = 0.5345, so
A = ±0.5 / 0.5345 = ±0.935.
"""
from __future__ import annotations

from typing import Literal

import torch

Scale = Literal["group", "batch", "none"]
SCALES: tuple[str, ...] = ("group", "batch", "none")


def group_advantages(rewards: torch.Tensor, group_size: int, scale: Scale = "group", *,
                     valid: torch.Tensor | None = None, eps: float = 1e-4,
                     batch_std: float | torch.Tensor | None = None) -> torch.Tensor:
    """Advantages A_i = (r_i - mean_group(r)) / (std(r) + eps).

    Args:
        rewards: (B*G,) float rewards, prompt-major. Invalid entries may hold anything
            (NaN included).
        group_size: G, completions per prompt; B*G must be divisible by it.
        scale: "group": divide by the group's sample std (GRPO);
            "batch": divide by the sample std of all valid rewards of the batch;
            "none": no division (Dr. GRPO, arXiv:2503.20783).
        valid: optional (B*G,) bool mask, False for samples without a reward
            (non-OK status). None means "valid where the reward is finite".
        eps: added to the std (the ε of the formula).
        batch_std: scale="batch" only: the std to divide by instead of this tensor's own,
            e.g. the std over every data-parallel rank's rewards (distributed.global_std),
            so that a rank's advantages are those of the whole global batch.

    Returns:
        (B*G,) float advantages; 0 for invalid samples, for groups whose valid rewards
        are all equal, and for groups with fewer than 2 valid samples (no spread to learn
        from). The sample (Bessel-corrected, n-1) standard deviation is used.
    """
    if rewards.dim() != 1:
        raise ValueError(f"rewards must have shape (B*G,), got {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size != 0:
        raise ValueError(f"group_size={group_size} does not divide {rewards.numel()} rewards")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if valid is None:
        valid = torch.isfinite(rewards)
    if valid.shape != rewards.shape:
        raise ValueError(f"valid has shape {tuple(valid.shape)}, rewards {tuple(rewards.shape)}")

    r = torch.where(valid, rewards, torch.zeros_like(rewards)).double()
    m = valid.double()
    r_g, m_g = r.view(-1, group_size), m.view(-1, group_size)          # (B, G)

    n_g = m_g.sum(dim=1, keepdim=True)                                   # (B, 1) valid per group
    mean_g = (r_g * m_g).sum(dim=1, keepdim=True) / n_g.clamp(min=1)     # (B, 1)
    centred = (r_g - mean_g) * m_g                                       # (B, G), 0 where invalid

    if scale == "group":
        var_g = (centred ** 2).sum(dim=1, keepdim=True) / (n_g - 1).clamp(min=1)
        adv = centred / (var_g.sqrt() + eps)
    elif scale == "batch" and batch_std is not None:
        adv = centred / (torch.as_tensor(batch_std, dtype=torch.float64) + eps)
    elif scale == "batch":
        n = m.sum()
        batch_mean = (r * m).sum() / n.clamp(min=1)
        batch_var = (((r - batch_mean) * m) ** 2).sum() / (n - 1).clamp(min=1)
        adv = centred / (batch_var.sqrt() + eps)
    else:  # "none"
        adv = centred

    # A group with < 2 valid samples has no spread: its lone sample gets 0 (already 0
    # from centring), kept explicit here for readability.
    adv = torch.where(n_g >= 2, adv, torch.zeros_like(adv))
    return adv.view(-1).to(rewards.dtype if rewards.is_floating_point() else torch.float32)


def zero_spread_fraction(rewards: torch.Tensor, group_size: int, *,
                         valid: torch.Tensor | None = None, atol: float = 1e-9) -> float:
    """Fraction of groups whose valid rewards are all equal (no learning signal).

    rewards, valid: (B*G,) as in `group_advantages`. A group with fewer than 2 valid
    samples counts as zero-spread.
    """
    if valid is None:
        valid = torch.isfinite(rewards)
    r = torch.where(valid, rewards, torch.zeros_like(rewards)).double().view(-1, group_size)
    m = valid.view(-1, group_size)
    hi = torch.where(m, r, torch.full_like(r, -float("inf"))).amax(dim=1)   # (B,)
    lo = torch.where(m, r, torch.full_like(r, float("inf"))).amin(dim=1)    # (B,)
    flat = (m.sum(dim=1) < 2) | ((hi - lo) <= atol)
    return float(flat.double().mean()) if flat.numel() else 0.0


NonOkPolicy = Literal["exclude", "zero", "drop_group"]


def apply_non_ok_policy(rewards: torch.Tensor, valid: torch.Tensor, group_size: int,
                        policy: NonOkPolicy = "exclude") -> tuple[torch.Tensor, torch.Tensor, int]:
    """What happens to samples the service returned without a reward (TIMEOUT, ERROR,
    ABSTAIN), before the advantages.

    Args:
        rewards: (B*G,) float, prompt-major; entries where `valid` is False are ignored.
        valid: (B*G,) bool, False for a non-OK sample.
        policy: "exclude" (default, DESIGN.md §2): left out of their group's mean and std
            and of the loss (the group's other samples still train);
            "zero": scored as reward 0 and trained on like a wrong answer (what TRL and
            verl do with a failed reward function; a policy may learn to avoid timeouts,
            but a service outage then reads as wrong answers);
            "drop_group": every sample of a group with any non-OK sample is left out.
    Returns:
        (rewards (B*G,), valid (B*G,), groups_dropped): groups_dropped counts the groups
        "drop_group" removed (0 for the other policies).

    Example, G = 4, rewards [1, 0, nan, 1], valid [T, T, F, T]:
        exclude    -> valid [T, T, F, T]; the group's mean is (1+0+1)/3 = 0.667
        zero       -> rewards [1, 0, 0, 1], valid all True; mean 0.5
        drop_group -> valid all False; groups_dropped 1
    """
    valid = valid.bool()
    if policy == "exclude":
        return rewards, valid, 0
    if policy == "zero":
        return torch.where(valid, rewards, torch.zeros_like(rewards)), torch.ones_like(valid), 0
    if policy == "drop_group":
        groups = valid.view(-1, group_size)                      # (B, G)
        keep = groups.all(dim=1, keepdim=True)                   # (B, 1)
        dropped = int((~keep).sum())
        return rewards, (groups & keep).reshape(-1), dropped
    raise ValueError(f"non_ok_policy must be exclude, zero or drop_group, got {policy!r}")
