"""GRPO losses: hand-computed tables, arithmetic written out in each test."""
from __future__ import annotations

import math

import pytest
import torch

from trainer_client.losses import aggregate, clipped_surrogate, grpo_loss, k3_kl

EPS_LOW, EPS_HIGH = 0.2, 0.28          # clip range [0.8, 1.28]: asymmetric on purpose


def _ratios_to_logps(ratios):
    """old_logp = 0, logp = log(ratio) so that w = exp(logp - old_logp) = ratio."""
    r = torch.tensor(ratios, dtype=torch.float64)
    return torch.log(r), torch.zeros_like(r)


@pytest.mark.parametrize("ratio, adv, loss, clipped", [
    # A > 0: min(w A, clip(w) A); the upper bound 1 + ε_high = 1.28 binds
    (1.50, 1.0, -1.28, True),     # min(1.5, 1.28)  = 1.28  -> loss -1.28, clipped
    (1.25, 1.0, -1.25, False),    # 1.25 < 1.28: inside (would be clipped at a symmetric 1.2)
    (1.20, 2.0, -2.40, False),    # min(2.4, 2.4)   = 2.4
    (0.50, 1.0, -0.50, False),    # min(0.5, 0.8)   = 0.5   (lower bound never binds for A > 0)
    # A < 0: the lower bound 1 - ε_low = 0.8 binds
    (0.50, -1.0, 0.80, True),     # min(-0.5, -0.8) = -0.8  -> loss 0.8, clipped
    (0.75, -1.0, 0.80, True),     # min(-0.75, -0.8) = -0.8
    (0.85, -1.0, 0.85, False),    # min(-0.85, -0.85)
    (1.50, -1.0, 1.50, False),    # min(-1.5, -1.28) = -1.5 (upper bound never binds for A < 0)
    (1.00, 0.0, 0.00, False),     # A = 0: nothing to learn
])
def test_clipped_surrogate_table(ratio, adv, loss, clipped):
    logp, old = _ratios_to_logps([[ratio]])
    out, was_clipped = clipped_surrogate(logp, old, torch.tensor([adv], dtype=torch.float64),
                                         EPS_LOW, EPS_HIGH)
    assert out.shape == (1, 1) and was_clipped.shape == (1, 1)
    assert out.item() == pytest.approx(loss, abs=1e-9)
    assert was_clipped.item() is clipped


def test_surrogate_shapes_and_broadcast_of_advantages():
    # (N=2, L=3) ratios; advantages (N,) = [+1, -1] shared by each sequence's tokens
    logp, old = _ratios_to_logps([[1.0, 1.5, 0.5], [1.0, 1.5, 0.5]])
    loss, clipped = clipped_surrogate(logp, old, torch.tensor([1.0, -1.0], dtype=torch.float64),
                                      EPS_LOW, EPS_HIGH)
    assert loss.shape == (2, 3) and clipped.shape == (2, 3)
    # row 0 (A=+1): -[1, 1.28, 0.5]; row 1 (A=-1): [1, 1.5, 0.8]
    assert torch.allclose(loss, torch.tensor([[-1.0, -1.28, -0.5], [1.0, 1.5, 0.8]],
                                             dtype=torch.float64))
    assert clipped.tolist() == [[False, True, False], [False, False, True]]


def test_ratio_one_still_has_the_policy_gradient():
    # μ = 1: old_logp = logp.detach(), w = 1, but d(-w A)/d logp = -A
    logp = torch.tensor([[-0.7, -1.2]], requires_grad=True)
    loss, _ = clipped_surrogate(logp, logp.detach(), torch.tensor([2.0]), EPS_LOW, EPS_HIGH)
    loss.sum().backward()
    assert torch.allclose(loss, torch.tensor([[-2.0, -2.0]]))
    assert torch.allclose(logp.grad, torch.tensor([[-2.0, -2.0]]))


# Aggregation table. Per-token values x and two masks of different lengths:
#   row 0: x = [1, 2, 9, 9], mask [1, 1, 0, 0]  (length 2; the 9s are padding)
#   row 1: x = [3, 4, 5, 6], mask [1, 1, 1, 1]  (length 4)
X = torch.tensor([[1.0, 2.0, 9.0, 9.0], [3.0, 4.0, 5.0, 6.0]])
M = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])


@pytest.mark.parametrize("loss_type, kwargs, expected", [
    # grpo: per-sequence means (1+2)/2 = 1.5 and (3+4+5+6)/4 = 4.5, then (1.5 + 4.5)/2 = 3.0
    ("grpo", {}, 3.0),
    # grpo as one micro-batch of a 4-sequence batch: (1.5 + 4.5)/4 = 1.5
    ("grpo", {"num_sequences": 4}, 1.5),
    # bnpo: token mean (1+2+3+4+5+6)/6 = 21/6 = 3.5
    ("bnpo", {}, 3.5),
    # dapo: token mean over the whole generation batch; alone it is 21/6 = 3.5 ...
    ("dapo", {}, 3.5),
    # ... and as a micro-batch of a batch with 12 completion tokens: 21/12 = 1.75
    ("dapo", {"num_tokens": 12}, 1.75),
    # dr_grpo: constant normaliser N * L_max = 2 * 8 = 16: 21/16 = 1.3125
    ("dr_grpo", {}, 1.3125),
])
def test_aggregation_table(loss_type, kwargs, expected):
    out = aggregate(X, M, loss_type, max_completion_length=8, **kwargs)
    assert out.shape == ()
    assert out.item() == pytest.approx(expected, abs=1e-9)


def test_aggregations_differ_by_length_bias():
    # The same per-token value 1 on a short and a long sequence:
    #   grpo weighs sequences equally: (1 + 1)/2 = 1 -> each token of the short one counts more
    #   dapo weighs tokens equally:   (2 + 6)/8 = 1
    #   dr_grpo:                      (2 + 6)/(2 * 6) = 0.6667 (L_max = 6)
    x = torch.ones(2, 6)
    m = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    assert aggregate(x, m, "grpo", max_completion_length=6).item() == pytest.approx(1.0)
    assert aggregate(x, m, "dapo", max_completion_length=6).item() == pytest.approx(1.0)
    assert aggregate(x, m, "dr_grpo", max_completion_length=6).item() == pytest.approx(8 / 12)
    # gradients: grpo gives each token of row 0 weight 1/(2*2) = 0.25, of row 1 1/(2*6) = 1/12
    x.requires_grad_(True)
    aggregate(x, m, "grpo", max_completion_length=6).backward()
    assert x.grad[0, 0].item() == pytest.approx(0.25) and x.grad[1, 0].item() == pytest.approx(1 / 12)
    assert x.grad[0, 5].item() == 0.0          # padding gets no gradient


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_micro_batches_add_up_to_the_full_batch(loss_type):
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    m = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1],
                      [1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    full = aggregate(x, m, loss_type, max_completion_length=5)
    parts = sum(aggregate(x[s], m[s], loss_type, max_completion_length=5, num_sequences=6,
                          num_tokens=float(m.sum())) for s in (slice(0, 2), slice(2, 6)))
    assert parts.item() == pytest.approx(full.item(), abs=1e-6)


def test_unknown_loss_type():
    with pytest.raises(ValueError, match="loss_type"):
        aggregate(X, M, "gspo", max_completion_length=4)  # type: ignore[arg-type]


def test_k3_table():
    # k3 = exp(ref - logp) - (ref - logp) - 1
    #   p = 0.5, ref = 0.25: d = log(0.5) = -0.693147; 0.5 + 0.693147 - 1 = 0.193147
    #   p = 0.25, ref = 0.5: d = log(2)  =  0.693147; 2   - 0.693147 - 1 = 0.306853
    #   p = ref:             d = 0;                    1   - 0        - 1 = 0
    logp = torch.log(torch.tensor([[0.5, 0.25, 0.3]]))
    ref = torch.log(torch.tensor([[0.25, 0.5, 0.3]]))
    kl = k3_kl(logp, ref)
    assert kl.shape == (1, 3)
    expected = [0.5 + math.log(2) - 1, 2 - math.log(2) - 1, 0.0]
    assert kl[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert (kl >= 0).all()


def test_k3_is_an_unbiased_estimate_of_kl():
    # KL(p || q) for p = [0.7, 0.2, 0.1], q = [0.4, 0.4, 0.2]: sum p log(p/q)
    p = torch.tensor([0.7, 0.2, 0.1])
    q = torch.tensor([0.4, 0.4, 0.2])
    exact = float((p * (p / q).log()).sum())
    g = torch.Generator().manual_seed(0)
    x = torch.multinomial(p, 200_000, replacement=True, generator=g)
    estimate = k3_kl(p.log()[x], q.log()[x]).mean().item()
    assert estimate == pytest.approx(exact, abs=5e-3)


def test_grpo_loss_adds_beta_kl():
    # one sequence, 2 tokens, A = 1, w = 1 (old = logp):  surrogate = -1 per token
    # ref - logp = log(0.25) - log(0.5) = -log 2 -> k3 = 0.193147 per token
    # per token: -1 + 0.1 * 0.193147 = -0.980685; grpo mean over the 2 tokens: -0.980685
    logp = torch.log(torch.tensor([[0.5, 0.5]]))
    ref = torch.log(torch.tensor([[0.25, 0.25]]))
    mask = torch.ones(1, 2)
    out = grpo_loss(logp, logp, torch.tensor([1.0]), mask, eps_low=0.2, eps_high=0.28, beta=0.1,
                    ref_logp=ref, loss_type="grpo", max_completion_length=2)
    assert out.item() == pytest.approx(-1 + 0.1 * (0.5 + math.log(2) - 1), abs=1e-6)
    with pytest.raises(ValueError, match="ref_logp"):
        grpo_loss(logp, logp, torch.tensor([1.0]), mask, eps_low=0.2, eps_high=0.28, beta=0.1,
                  max_completion_length=2)
