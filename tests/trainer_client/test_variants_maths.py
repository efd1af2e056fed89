"""GSPO and DAPO maths (trainer_client/variants.py): hand-computed tables, arithmetic in
the comments."""
from __future__ import annotations

import math

import pytest
import torch

from trainer_client.losses import grpo_loss
from trainer_client.rollout import Rollout
from trainer_client.variants import (dynamic_fill, group_rows, importance_log_ratio,
                                     select_informative,
                                     informative_groups, memory_estimate_bytes,
                                     soft_overlong_penalty)

GSPO_LOW, GSPO_HIGH = 3e-4, 4e-4           # GSPO §5.1 clip range


def test_sequence_ratio_is_the_length_normalised_geometric_mean():
    # row 0: token log-ratios [0.1, 0.3], both masked in -> log s = (0.1 + 0.3)/2 = 0.2
    # row 1: [-0.2, 0.2, 9.0] with the 9.0 padded out -> log s = (-0.2 + 0.2)/2 = 0
    logp = torch.tensor([[0.1, 0.3, 0.0], [-0.2, 0.2, 9.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    lw = importance_log_ratio(logp, torch.zeros_like(logp), mask, "sequence")
    assert lw.shape == (2, 3)
    assert torch.allclose(lw[0], torch.full((3,), 0.2, dtype=torch.float64))
    assert torch.allclose(lw[1], torch.zeros(3, dtype=torch.float64))
    # s_0 = exp(0.2) = 1.2214 = (e^0.1 · e^0.3)^(1/2), the geometric mean of the token ratios
    assert math.exp(lw[0, 0].item()) == pytest.approx(math.sqrt(math.exp(0.1) * math.exp(0.3)))
    # "token" is the plain difference
    assert torch.equal(importance_log_ratio(logp, torch.zeros_like(logp), mask, "token"), logp)
    with pytest.raises(ValueError, match="importance_sampling_level"):
        importance_log_ratio(logp, logp, mask, "seq")  # type: ignore[arg-type]


def test_gspo_loss_and_gradient_differ_from_token_level():
    # One sequence, A = +1, token log-ratios [+0.001, -0.001], clip range [1-3e-4, 1+4e-4].
    #   token:    w = [e^0.001, e^-0.001] = [1.0010005, 0.9990005]
    #             token 1: min(1.0010005, 1.0004) = 1.0004 (clipped, no gradient)
    #             token 2: min(0.9990005, 0.9997 lower clip) -> A > 0 so min = 0.9990005
    #             grpo mean: -(1.0004 + 0.9990005)/2 = -0.99970025
    #             d/dlogp: [0, -w2/2] = [0, -0.49950025]
    #   sequence: log s = (0.001 - 0.001)/2 = 0, s = 1 inside the range -> loss -1
    #             d/dlogp_t = -A·s/|y| = -1/2 each
    old = torch.zeros(1, 2, dtype=torch.float64)
    adv = torch.tensor([1.0], dtype=torch.float64)
    mask = torch.ones(1, 2)
    out = {}
    for level in ("token", "sequence"):
        logp = torch.tensor([[0.001, -0.001]], dtype=torch.float64, requires_grad=True)
        loss = grpo_loss(logp, old, adv, mask, eps_low=GSPO_LOW, eps_high=GSPO_HIGH,
                         loss_type="grpo", max_completion_length=2,
                         importance_sampling_level=level)
        loss.backward()
        out[level] = (loss.item(), logp.grad[0].tolist())
    assert out["token"][0] == pytest.approx(-(1.0004 + math.exp(-0.001)) / 2, abs=1e-12)
    assert out["token"][1] == pytest.approx([0.0, -math.exp(-0.001) / 2], abs=1e-12)
    assert out["sequence"][0] == pytest.approx(-1.0, abs=1e-12)
    assert out["sequence"][1] == pytest.approx([-0.5, -0.5], abs=1e-12)


def test_gspo_clips_whole_sequences():
    # A = +1, log s = 0.2 -> s = 1.2214 > 1.0004: every token takes the clipped branch,
    # loss -1.0004 and no gradient at all.
    logp = torch.tensor([[0.1, 0.3]], dtype=torch.float64, requires_grad=True)
    loss = grpo_loss(logp, torch.zeros(1, 2, dtype=torch.float64),
                     torch.tensor([1.0], dtype=torch.float64), torch.ones(1, 2),
                     eps_low=GSPO_LOW, eps_high=GSPO_HIGH, loss_type="grpo",
                     max_completion_length=2, importance_sampling_level="sequence")
    loss.backward()
    assert loss.item() == pytest.approx(-1.0004)
    assert logp.grad.abs().sum().item() == 0.0


@pytest.mark.parametrize("factor, expected", [
    # L_max = 10, L_cache = 4 -> the ramp starts after 10 - 4 = 6 tokens:
    #   |y| = 3, 6 -> 0; 7 -> (6-7)/4 = -0.25; 8 -> -0.5; 10 -> (6-10)/4 = -1; 11 > L_max -> -1
    (1.0, [0.0, 0.0, -0.25, -0.5, -1.0, -1.0]),
    (0.5, [0.0, 0.0, -0.125, -0.25, -0.5, -0.5]),
])
def test_soft_overlong_penalty_table(factor, expected):
    pen = soft_overlong_penalty(torch.tensor([3, 6, 7, 8, 10, 11]), 10, 4, factor)
    assert pen.shape == (6,)
    assert pen.tolist() == pytest.approx(expected)


def test_soft_overlong_penalty_rejects_a_bad_cache():
    with pytest.raises(ValueError, match="cache_len"):
        soft_overlong_penalty(torch.tensor([1]), 4, 5)


def test_informative_groups_and_rows():
    # G = 3: [1,1,1] flat -> F; [0,1,0] spread -> T; [nan,1,1] valid pair equal -> F;
    #        [nan,nan,1] one valid sample -> F
    nan = float("nan")
    r = torch.tensor([1, 1, 1, 0, 1, 0, nan, 1, 1, nan, nan, 1.0])
    keep = informative_groups(r, 3)
    assert keep.tolist() == [False, True, False, False]
    assert group_rows(keep, 3).tolist() == [3, 4, 5]


def _fake_rollout(n: int, offset: int) -> Rollout:
    ids = torch.arange(offset, offset + n).unsqueeze(1)                  # (n, 1): row id
    return Rollout(ids, torch.ones_like(ids), ids, torch.ones_like(ids),
                   [f"t{offset + i}" for i in range(n)], torch.zeros(n, dtype=torch.bool))


def _draws(*reward_lists):
    def draw(d):
        r = torch.tensor(reward_lists[d], dtype=torch.float32)
        ro = _fake_rollout(len(r), 100 * d)
        return ro, [f"s{100 * d + i}" for i in range(len(r))], r, torch.ones(len(r), dtype=torch.bool)
    return draw


def test_dynamic_fill_draws_until_full_and_cuts_the_surplus():
    # G = 2, 2 groups wanted. draw 0: [1,1 | 0,1] keeps group 1 (rows 2,3), drops group 0;
    # draw 1: [0,1 | 1,0] both informative, room for one -> rows 100,101; surplus cut.
    parts, stats = dynamic_fill(_draws([1, 1, 0, 1], [0, 1, 1, 0]), 2, 2, max_extra_draws=3)
    assert stats == {"groups_dropped": 1.0, "extra_draws": 1.0, "groups_kept": 2.0}
    assert [p[1] for p in parts] == [["s2", "s3"], ["s100", "s101"]]
    assert parts[0][0].completion_ids.view(-1).tolist() == [2, 3]
    assert parts[0][0].texts == ["t2", "t3"] and parts[1][2].tolist() == [0.0, 1.0]


def test_dynamic_fill_respects_the_cap_and_never_returns_nothing():
    # cap 0: one informative group of the two wanted, no extra draw
    parts, stats = dynamic_fill(_draws([1, 1, 0, 1], [0, 1, 1, 0]), 2, 2, max_extra_draws=0)
    assert stats["extra_draws"] == 0.0 and stats["groups_kept"] == 1.0 and len(parts) == 1
    # nothing informative in 2 draws (cap 1): 4 groups dropped, draw 0 returned unfiltered
    parts, stats = dynamic_fill(_draws([1, 1, 0, 0], [1, 1, 1, 1]), 2, 2, max_extra_draws=1)
    assert stats == {"groups_dropped": 4.0, "extra_draws": 1.0, "groups_kept": 0.0}
    assert parts[0][1] == ["s0", "s1", "s2", "s3"]


def test_select_informative_takes_the_first_groups_in_global_order():
    # W = 2: rank r's group j is item j*2 + r. Informative: rank 0 groups 0, 2 (items 0, 4),
    # rank 1 groups 0, 1 (items 1, 3). In item order 0, 1, 3, 4; room 3 -> items 0, 1, 3.
    T, F = True, False
    sel = select_informative([torch.tensor([T, F, T]), torch.tensor([T, T])], 3)
    assert [s.tolist() for s in sel] == [[T, F, F], [T, T]]
    sel = select_informative([torch.tensor([T, F, T]), torch.tensor([T, T])], 0)
    assert [s.tolist() for s in sel] == [[F, F, F], [F, F]]
    # one rank: the first `room` informative groups, as before
    assert select_informative([torch.tensor([F, T, T, T])], 2)[0].tolist() == [F, T, T, F]


def _other_rank(*masks):
    """A gather standing in for the all-gather: this rank's mask, then rank 1's for draw d."""
    calls = iter(masks)
    return lambda keep: [keep, torch.tensor(next(calls))]


def test_dynamic_fill_counts_and_stops_globally():
    # G = 2, 2 groups wanted over 2 ranks; this is rank 0.
    # draw 0: ours [1,1 | 0,0] both flat; rank 1 [T, F] -> 1 kept (rank 1's), 3 dropped.
    # draw 1: ours [0,1 | 1,1] -> [T, F]; rank 1 [T, T]. Room 1; item order: our group 0
    #   (item 0) first -> we keep rows 100, 101; 1 more dropped (ours). Total kept 2.
    parts, stats = dynamic_fill(_draws([1, 1, 0, 0], [0, 1, 1, 1]), 2, 2, max_extra_draws=3,
                                gather=_other_rank([True, False], [True, True]), rank=0)
    assert stats == {"groups_dropped": 4.0, "extra_draws": 1.0, "groups_kept": 2.0}
    assert [p[1] for p in parts] == [["s100", "s101"]]


def test_dynamic_fill_a_rank_may_keep_nothing():
    # ours flat, rank 1's two groups informative and enough: we keep zero rows, no redraw
    parts, stats = dynamic_fill(_draws([1, 1, 0, 0]), 2, 2, max_extra_draws=3,
                                gather=_other_rank([True, True]), rank=0)
    assert stats == {"groups_dropped": 2.0, "extra_draws": 0.0, "groups_kept": 2.0}
    assert len(parts) == 1 and parts[0][1] == [] and parts[0][0].completion_ids.shape[0] == 0
    assert parts[0][2].numel() == 0 and parts[0][3].numel() == 0


def test_memory_estimate_from_parameter_counts():
    # Linear(10, 5): 50 weights + 5 biases = 55 float32 parameters = 220 bytes
    lin = torch.nn.Linear(10, 5)
    est = memory_estimate_bytes(lin, reference="copy")
    # policy 220, gradients 220, frozen reference copy 220, AdamW m and v 2·220 = 440
    assert est == {"policy": 220, "gradients": 220, "reference": 220, "optimizer": 440,
                   "total": 1100}
    # bias frozen, bfloat16 weights: policy 50·2 + 5·4 = 120; trainable 50·2 = 100
    lin.weight.data = lin.weight.data.bfloat16()
    lin.bias.requires_grad_(False)
    est = memory_estimate_bytes(lin, reference="adapters_off")
    assert est == {"policy": 120, "gradients": 100, "reference": 0, "optimizer": 200,
                   "total": 420}
