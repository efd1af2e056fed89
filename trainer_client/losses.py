"""GRPO policy losses, written as in the papers. Pure tensor maths, no I/O.

Shapes: N = B*G sequences (B prompts x G completions), L = completion length (padded).
    logp, old_logp, ref_logp : (N, L)  per-token log-probabilities of the sampled tokens
    mask                     : (N, L)  1.0 for completion tokens (up to and including EOS)
    advantages               : (N,)    one advantage per sequence, shared by its tokens

Sources:
    - Clipped surrogate with per-token ratio and the group advantage: DeepSeekMath,
      arXiv:2402.03300, eq. 3.
    - Decoupled clip range (clip-higher: ε_low ≠ ε_high) and token-level normalisation
      ("dapo"): DAPO, arXiv:2503.14476, eq. 8 and §3.3.
    - Constant normaliser, no length bias ("dr_grpo"): Dr. GRPO, arXiv:2503.20783, §3.
    - KL estimator k3 = exp(ref − logπ) − (ref − logπ) − 1 (unbiased, ≥ 0):
      J. Schulman, "Approximating KL divergence" (2020).
"""
from __future__ import annotations

from typing import Callable, Literal

import torch

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo"]


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(π_θ ‖ π_ref) estimate, k3 = exp(ref − logp) − (ref − logp) − 1.

    logp, ref_logp: (N, L). Returns (N, L), every entry ≥ 0.
    """
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      eps_low: float, eps_high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO-style loss −min(w·A, clip(w, 1−ε_low, 1+ε_high)·A), w = π_θ / π_old.

    logp, old_logp: (N, L); advantages: (N,). With old_logp = logp.detach() (μ = 1) the
    ratio is 1 but its gradient is ∇logπ, so the policy gradient still flows.

    Returns:
        loss: (N, L) per-token loss (not masked).
        clipped: (N, L) bool, True where the clipped branch is the one taken (the
            gradient is zero there): w < 1−ε_low with A < 0, or w > 1+ε_high with A > 0.
    """
    ratio = torch.exp(logp - old_logp)                                   # (N, L)
    adv = advantages.unsqueeze(1)                                        # (N, 1)
    unclipped = ratio * adv
    clipped_obj = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    loss = -torch.min(unclipped, clipped_obj)
    clipped = ((ratio < 1.0 - eps_low) & (adv < 0)) | ((ratio > 1.0 + eps_high) & (adv > 0))
    return loss, clipped


# --- aggregation: (N, L) per-token loss -> scalar -----------------------------------
# Each takes (per_token, mask, num_sequences, num_tokens, max_completion_length).
# num_sequences / num_tokens are the whole batch's counts when the batch is split into
# micro-batches (so the micro-batch losses add up to the full-batch loss); they default
# to this tensor's own counts.

def _grpo(x, mask, num_sequences, num_tokens, max_len):
    """Mean over each sequence's tokens, then mean over sequences (arXiv:2402.03300 eq. 3)."""
    per_seq = (x * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)   # (N,)
    return per_seq.sum() / num_sequences


def _bnpo(x, mask, num_sequences, num_tokens, max_len):
    """Token mean over this (micro-)batch: Σ x·m / Σ m."""
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def _dapo(x, mask, num_sequences, num_tokens, max_len):
    """Token mean over the whole generation batch (arXiv:2503.14476 eq. 8): Σ x·m / num_tokens."""
    return (x * mask).sum() / max(float(num_tokens), 1.0)


def _dr_grpo(x, mask, num_sequences, num_tokens, max_len):
    """Constant normaliser (arXiv:2503.20783): Σ x·m / (num_sequences · L_max)."""
    return (x * mask).sum() / (num_sequences * max_len)


AGGREGATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "grpo": _grpo, "bnpo": _bnpo, "dapo": _dapo, "dr_grpo": _dr_grpo,
}


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_type: LossType, *,
              max_completion_length: int, num_sequences: int | None = None,
              num_tokens: float | None = None) -> torch.Tensor:
    """Reduce a (N, L) per-token loss to a scalar, as `loss_type` prescribes.

    per_token, mask: (N, L). max_completion_length: L_max of Dr. GRPO's normaliser
    (the sampler's max_new_tokens). num_sequences / num_tokens: the whole batch's
    sequence and completion-token counts when this is one micro-batch of it.
    """
    if loss_type not in AGGREGATIONS:
        raise ValueError(f"loss_type must be one of {sorted(AGGREGATIONS)}, got {loss_type!r}")
    mask = mask.to(per_token.dtype)
    n_seq = per_token.shape[0] if num_sequences is None else num_sequences
    n_tok = float(mask.sum()) if num_tokens is None else num_tokens
    return AGGREGATIONS[loss_type](per_token, mask, n_seq, n_tok, max_completion_length)


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor, *, eps_low: float, eps_high: float, beta: float = 0.0,
              ref_logp: torch.Tensor | None = None, loss_type: LossType = "grpo",
              max_completion_length: int, num_sequences: int | None = None,
              num_tokens: float | None = None,
              importance_sampling_level: str = "token") -> torch.Tensor:
    """The full objective: aggregate(−min(w·A, clip(w)·A) + β·k3(π_θ, π_ref)).

    logp, old_logp, ref_logp, mask: (N, L); advantages: (N,). ref_logp is required
    when beta > 0. importance_sampling_level "sequence" uses GSPO's sequence ratio
    (arXiv:2507.18071; see variants.importance_log_ratio). Returns a scalar to minimise.
    """
    from .variants import importance_log_ratio

    log_w = importance_log_ratio(logp, old_logp, mask, importance_sampling_level)  # (N, L)
    per_token, _ = clipped_surrogate(log_w, torch.zeros_like(log_w), advantages, eps_low, eps_high)
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs ref_logp (the frozen reference model's log-probs)")
        per_token = per_token + beta * k3_kl(logp, ref_logp)
    return aggregate(per_token, mask, loss_type, max_completion_length=max_completion_length,
                     num_sequences=num_sequences, num_tokens=num_tokens)
