"""GRPO variants as pure tensor maths, no I/O: GSPO's sequence ratio, DAPO's extras,
and the start-up memory estimate.

Shapes: N = B*G sequences (prompt-major), L = completion length (padded).

Sources:
    - Sequence-level importance ratio s_i = (π_θ(y_i|x) / π_old(y_i|x))^(1/|y_i|)
      = exp(mean_t (logπ_θ − logπ_old)), clipped with a small range (3e-4 / 4e-4):
      GSPO, arXiv:2507.18071, eq. 7 and §5.1.
    - Dynamic sampling (keep only groups whose rewards are not all equal): DAPO,
      arXiv:2503.14476, eq. 11 (0 < |{o_i correct}| < G) and Algorithm 1.
    - Overlong filtering (truncated completions get no loss): DAPO §3.4.
    - Soft overlong punishment: DAPO eq. 13,
          R_len(y) = 0                             if |y| ≤ L_max − L_cache
                     ((L_max − L_cache) − |y|) / L_cache   if L_max − L_cache < |y| ≤ L_max
                     −1                            if |y| > L_max
      added to the task reward.
"""
from __future__ import annotations

from typing import Literal

import torch

ImportanceLevel = Literal["token", "sequence"]


def importance_log_ratio(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor,
                         level: ImportanceLevel = "token") -> torch.Tensor:
    """log w of the clipped surrogate, (N, L).

    "token": log w_t = logπ_θ(y_t) − logπ_old(y_t)   (GRPO, DeepSeekMath eq. 3)
    "sequence": every token of sequence i carries log s_i = Σ_t m_t (logπ_θ − logπ_old) / Σ_t m_t
        (GSPO eq. 7: the length-normalised geometric mean of the token ratios). With a
        per-sequence mean aggregation this is exactly GSPO's (1/G) Σ_i min(s_i A_i, clip(s_i) A_i).
    logp, old_logp, mask: (N, L).
    """
    delta = logp - old_logp                                              # (N, L)
    if level == "token":
        return delta
    if level != "sequence":
        raise ValueError(f"importance_sampling_level must be token or sequence, got {level!r}")
    m = mask.to(delta.dtype)
    seq = (delta * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)           # (N,)
    return seq.unsqueeze(1).expand_as(delta)                             # (N, L)


def soft_overlong_penalty(lengths: torch.Tensor, max_len: int, cache_len: int,
                          factor: float = 1.0) -> torch.Tensor:
    """DAPO eq. 13, scaled by `factor`. lengths: (N,) completion token counts -> (N,) ≤ 0.

    max_len = L_max (the sampler's max_new_tokens), cache_len = L_cache (0 < L_cache ≤ L_max).
    """
    if not 0 < cache_len <= max_len:
        raise ValueError(f"need 0 < cache_len <= max_len, got {cache_len}, {max_len}")
    n = lengths.to(torch.float64)
    start = float(max_len - cache_len)
    ramp = (start - n) / cache_len                                       # (N,) ≤ 0 past `start`
    pen = torch.where(n <= start, torch.zeros_like(n), ramp)
    pen = torch.where(n > max_len, torch.full_like(n, -1.0), pen)
    return (factor * pen).to(torch.float32)


def informative_groups(rewards: torch.Tensor, group_size: int, *,
                       valid: torch.Tensor | None = None, atol: float = 1e-9) -> torch.Tensor:
    """(B,) bool: True for groups with ≥ 2 valid rewards that are not all equal (DAPO eq. 11).

    rewards, valid: (B*G,) prompt-major; valid defaults to isfinite(rewards).
    """
    if valid is None:
        valid = torch.isfinite(rewards)
    r = torch.where(valid, rewards, torch.zeros_like(rewards)).double().view(-1, group_size)
    m = valid.view(-1, group_size)                                       # (B, G)
    hi = torch.where(m, r, torch.full_like(r, -float("inf"))).amax(dim=1)
    lo = torch.where(m, r, torch.full_like(r, float("inf"))).amin(dim=1)
    return (m.sum(dim=1) >= 2) & ((hi - lo) > atol)


def group_rows(keep_groups: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) bool group mask -> (B*G,) row indices of the kept groups' completions."""
    return torch.nonzero(keep_groups.repeat_interleave(group_size), as_tuple=False).view(-1)


def memory_estimate_bytes(model, *, reference: Literal["none", "copy", "adapters_off"],
                          optimizer: str = "adamw") -> dict[str, int]:
    """Bytes of policy weights, their gradients, the reference model and the optimiser state.

    From parameter counts and dtypes only (activations are not counted):
        policy    = Σ numel·itemsize over all parameters
        gradients = Σ numel·itemsize over trainable parameters
        reference = policy ("copy", a frozen deep copy) or 0 ("none"; "adapters_off":
                    LoRA's reference is the base with adapters disabled, no second copy)
        optimiser = 2 · Σ numel·itemsize over trainable parameters (AdamW's m and v)
    """
    policy = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    ref = policy if reference == "copy" else 0
    opt = 2 * trainable if optimizer == "adamw" else 0
    out = {"policy": policy, "gradients": trainable, "reference": ref, "optimizer": opt}
    out["total"] = sum(out.values())
    return out


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.1f} GiB"


def select_informative(keeps: list[torch.Tensor], room: int) -> list[torch.Tensor]:
    """Which informative groups to keep, over all ranks: the first `room` in global order.

    keeps[r]: (n_r,) bool, rank r's informative groups of one prompt batch. Rank r holds
    the batch's items r, r+W, r+2W, ... (distributed.shard), so its group j is item
    j*W + r; the kept groups are the first `room` informative ones in item order, as one
    process drawing the whole batch would keep them. Returns per-rank (n_r,) bool masks.
    """
    W = len(keeps)
    order = sorted((j * W + r, r, j) for r, k in enumerate(keeps)
                   for j in torch.nonzero(k).view(-1).tolist())
    out = [torch.zeros_like(k) for k in keeps]
    for _, r, j in order[:max(room, 0)]:
        out[r][j] = True
    return out


def dynamic_fill(draw, target_groups: int, group_size: int, max_extra_draws: int, *,
                 gather=None, rank: int = 0):
    """DAPO dynamic sampling (Algorithm 1): keep informative groups, draw more until full.

    draw(d) -> (rollout, samples, rewards (n*G,), valid (n*G,)) samples and scores the d-th
    prompt batch (d = 0 is the step's own batch; under data parallelism this rank's
    share of it). Draws stop once `target_groups` informative groups are kept or after
    `max_extra_draws` extra batches; surplus groups are cut. If no group is
    informative at all, draw 0 is returned unfiltered (its advantages are all 0: a step
    with no gradient, as without dynamic sampling).

    Data parallel: gather(keep (n,) bool) -> every rank's mask, in rank order (an
    all-gather), and `rank` is this rank's index. The counts and the decision to draw
    again are then global, so every rank draws the same number of batches (the
    collectives inside each draw stay paired) and the kept groups are those one process
    would keep (select_informative); a rank may keep fewer groups than another, or none:
    it then returns draw 0 cut to zero rows. Alone, gather defaults to [keep].

    Returns (parts, stats): parts = [(rollout, samples, rewards, valid)] restricted to this
    rank's kept groups; stats = {"groups_dropped", "extra_draws", "groups_kept"}, global
    counts (the same on every rank).
    """
    from .rollout import select_rows

    gather = gather or (lambda k: [k])
    parts, kept, dropped, first = [], 0, 0, None
    d = 0
    while True:
        ro, samples, rewards, valid = draw(d)
        first = first or (ro, samples, rewards, valid)
        keeps = gather(informative_groups(rewards, group_size, valid=valid))   # [(n_r,)]
        dropped += sum(int((~k).sum()) for k in keeps)
        sel = select_informative(keeps, target_groups - kept)[rank]            # (n,)
        if sel.any():
            rows = group_rows(sel, group_size)                                 # (k*G,)
            parts.append((select_rows(ro, rows), [samples[i] for i in rows.tolist()],
                          rewards[rows], valid[rows]))
        kept += min(sum(int(k.sum()) for k in keeps), target_groups - kept)
        if kept >= target_groups or d >= max_extra_draws:
            break
        d += 1
    stats = {"groups_dropped": float(dropped), "extra_draws": float(d), "groups_kept": float(kept)}
    if kept == 0:
        return [first], stats
    if not parts:  # other ranks kept groups, this one none: zero rows of draw 0
        ro, samples, rewards, valid = first
        none = torch.zeros(0, dtype=torch.long)
        parts = [(select_rows(ro, none), [], rewards[none], valid[none])]
    return parts, stats
