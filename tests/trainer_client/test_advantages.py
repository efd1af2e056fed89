"""Group-relative advantages: hand-computed tables, arithmetic written out."""
from __future__ import annotations

import math

import pytest
import torch

from trainer_client.advantages import group_advantages, zero_spread_fraction


def test_worked_example_four_of_eight_correct():
    # 8 completions, 4 correct: mean = 4/8 = 0.5
    # sample std = sqrt(sum((r - 0.5)^2) / (8 - 1)) = sqrt(8 * 0.25 / 7) = sqrt(2/7) = 0.53452
    # A = ±0.5 / (0.53452 + 1e-4) = ±0.93523  (±0.93541 without the ε)
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    adv = group_advantages(rewards, group_size=8, scale="group")
    std = math.sqrt(2 / 7)
    assert std == pytest.approx(0.5345, abs=1e-4)
    expected = torch.tensor([1, -1, 1, -1, 1, -1, 1, -1], dtype=torch.float32) * 0.5 / (std + 1e-4)
    assert torch.allclose(adv, expected, atol=1e-6)
    assert adv[0].item() == pytest.approx(0.935, abs=1e-3)
    assert adv[1].item() == pytest.approx(-0.935, abs=1e-3)
    assert adv.shape == (8,)


def test_group_scale_two_groups_are_independent():
    # group 0: [1, 0, 0, 0] mean 0.25, std = sqrt((0.5625 + 3 * 0.0625) / 3) = sqrt(0.25) = 0.5
    # group 1: [2, 2, 4, 4] mean 3,    std = sqrt(4 * 1 / 3) = 1.15470
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 4.0, 4.0])
    adv = group_advantages(rewards, group_size=4, scale="group", eps=0.0)
    s1 = math.sqrt(4 / 3)
    expected = torch.tensor([0.75 / 0.5, -0.25 / 0.5, -0.25 / 0.5, -0.25 / 0.5,
                             -1 / s1, -1 / s1, 1 / s1, 1 / s1])
    assert torch.allclose(adv, expected, atol=1e-6)


def test_batch_scale_uses_group_mean_and_batch_std():
    # groups [1,0,0,0] (mean 0.25) and [1,1,1,0] (mean 0.75)
    # batch: 4 ones, 4 zeros: mean 0.5, sample std sqrt(8 * 0.25 / 7) = 0.53452
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    adv = group_advantages(rewards, group_size=4, scale="batch", eps=0.0)
    s = math.sqrt(2 / 7)
    expected = torch.tensor([0.75, -0.25, -0.25, -0.25, 0.25, 0.25, 0.25, -0.75]) / s
    assert torch.allclose(adv, expected, atol=1e-6)


def test_batch_scale_takes_a_given_std_the_data_parallel_one():
    # rewards [0, 1 | 1, 1], G = 2: group means 0.5 and 1 -> centred [-0.5, 0.5, 0, 0].
    # Divided by a pooled std of 2 (say, every rank's rewards), eps 0: [-0.25, 0.25, 0, 0];
    # this tensor's own std (0.5) would give ±1.
    r = torch.tensor([0.0, 1.0, 1.0, 1.0])
    adv = group_advantages(r, 2, "batch", eps=0.0, batch_std=2.0)
    assert adv.tolist() == [-0.25, 0.25, 0.0, 0.0]
    assert group_advantages(r, 2, "batch", eps=0.0).tolist() == [-1.0, 1.0, 0.0, 0.0]
    # the group scale ignores it
    assert torch.equal(group_advantages(r, 2, "group", batch_std=2.0), group_advantages(r, 2))


def test_no_std_scaling_is_just_centred():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 3.0, 1.0, 1.0, 3.0])
    adv = group_advantages(rewards, group_size=4, scale="none")
    # means 0.25 and 2.0
    expected = torch.tensor([0.75, -0.25, -0.25, -0.25, 1.0, -1.0, -1.0, 1.0])
    assert torch.allclose(adv, expected, atol=1e-7)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_all_equal_rewards_give_zeros(scale):
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    adv = group_advantages(rewards, group_size=4, scale=scale)
    assert torch.equal(adv, torch.zeros(8))


def test_invalid_entries_are_excluded_from_their_group():
    # group [1, 0, <non-OK>, 1]: statistics over the 3 valid rewards [1, 0, 1]
    # mean 2/3; deviations 1/3, -2/3, 1/3; var = (1/9 + 4/9 + 1/9) / 2 = 1/3; std = 0.57735
    # A = [ (1/3)/0.57735, (-2/3)/0.57735, 0, (1/3)/0.57735 ] = [0.57735, -1.15470, 0, 0.57735]
    s = math.sqrt(1 / 3)
    expected = torch.tensor([(1 / 3) / s, (-2 / 3) / s, 0.0, (1 / 3) / s])
    nan = torch.tensor([1.0, 0.0, float("nan"), 1.0])
    assert torch.allclose(group_advantages(nan, 4, eps=0.0), expected, atol=1e-6)
    # the same with an explicit mask: the masked value (here 0, or 7) is ignored
    valid = torch.tensor([True, True, False, True])
    for filler in (0.0, 7.0):
        r = torch.tensor([1.0, 0.0, filler, 1.0])
        assert torch.allclose(group_advantages(r, 4, valid=valid, eps=0.0), expected, atol=1e-6)


def test_invalid_entries_are_excluded_from_the_batch_std():
    # valid rewards [1, 0 | 1, 1] (the 3rd of each group is non-OK)
    # group means 0.5 and 1.0; batch of valid: mean 0.75, var = (3 * 0.0625 + 0.5625) / 3 = 0.25
    rewards = torch.tensor([1.0, 0.0, 99.0, 1.0, 1.0, 99.0])
    valid = torch.tensor([True, True, False, True, True, False])
    adv = group_advantages(rewards, 3, scale="batch", valid=valid, eps=0.0)
    expected = torch.tensor([0.5 / 0.5, -0.5 / 0.5, 0.0, 0.0, 0.0, 0.0])
    assert torch.allclose(adv, expected, atol=1e-6)


def test_group_with_one_valid_sample_gets_zero():
    rewards = torch.tensor([float("nan"), 1.0, float("nan"), 1.0, 0.0, 1.0])
    adv = group_advantages(rewards, 3)
    assert adv[:3].tolist() == [0.0, 0.0, 0.0]
    assert adv[3].item() > 0 and adv[4].item() < 0


def test_shapes_and_errors():
    rewards = torch.rand(6 * 4)
    assert group_advantages(rewards, 4).shape == (24,)
    assert group_advantages(rewards, 4).dtype == torch.float32
    with pytest.raises(ValueError, match="shape"):
        group_advantages(rewards.view(6, 4), 4)
    with pytest.raises(ValueError, match="does not divide"):
        group_advantages(torch.rand(10), 4)
    with pytest.raises(ValueError, match="scale"):
        group_advantages(rewards, 4, scale="sequence")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="valid"):
        group_advantages(rewards, 4, valid=torch.ones(5, dtype=torch.bool))


def test_zero_spread_fraction():
    # groups: [1,1] flat, [0,1] spread, [nan,1] one valid -> flat, [0,0] flat  => 3/4
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, float("nan"), 1.0, 0.0, 0.0])
    assert zero_spread_fraction(rewards, 2) == pytest.approx(0.75)


def test_non_ok_policies_table():
    """G = 4, two groups. Group 0: rewards [1, 0, -, 1] (sample 2 TIMEOUT); group 1 all OK
    [1, 0, 0, 0]."""
    from trainer_client.advantages import apply_non_ok_policy

    nan = float("nan")
    rewards = torch.tensor([1.0, 0.0, nan, 1.0, 1.0, 0.0, 0.0, 0.0])
    valid = torch.tensor([True, True, False, True, True, True, True, True])

    # exclude (default): group 0's mean is (1+0+1)/3 = 2/3, sample std sqrt(((1/3)^2*2 +
    # (2/3)^2) / 2) = 0.5774; A = (1 - 2/3)/0.5774 = 0.5774, (0 - 2/3)/0.5774 = -1.1547
    r, v, dropped = apply_non_ok_policy(rewards, valid, 4, "exclude")
    adv = group_advantages(r, 4, valid=v, eps=0.0)
    assert dropped == 0 and v.tolist() == valid.tolist()
    assert torch.allclose(adv[:4], torch.tensor([0.5774, -1.1547, 0.0, 0.5774]), atol=1e-4)

    # zero: group 0 becomes [1, 0, 0, 1]: mean 0.5, std sqrt(4 * 0.25 / 3) = 0.5774,
    # A = ±0.5 / 0.5774 = ±0.8660; the timed-out sample is pushed down like a wrong answer
    r, v, dropped = apply_non_ok_policy(rewards, valid, 4, "zero")
    adv = group_advantages(r, 4, valid=v, eps=0.0)
    assert dropped == 0 and bool(v.all()) and r[2] == 0.0
    assert torch.allclose(adv[:4], torch.tensor([0.8660, -0.8660, -0.8660, 0.8660]), atol=1e-4)

    # drop_group: group 0 is out entirely (advantages 0), group 1 untouched:
    # [1, 0, 0, 0]: mean 0.25, std sqrt((0.5625 + 3 * 0.0625) / 3) = 0.5, A = 1.5, -0.5
    r, v, dropped = apply_non_ok_policy(rewards, valid, 4, "drop_group")
    adv = group_advantages(r, 4, valid=v, eps=0.0)
    assert dropped == 1 and v.tolist() == [False] * 4 + [True] * 4
    assert adv[:4].tolist() == [0.0] * 4
    assert torch.allclose(adv[4:], torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-4)

    with pytest.raises(ValueError, match="non_ok_policy"):
        apply_non_ok_policy(rewards, valid, 4, "ignore")
