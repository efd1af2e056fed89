"""Monitors on synthetic metric series: each fires on its pattern and not on a healthy run."""
from __future__ import annotations

import math

from trainer_client.monitors import (MonitorThresholds, check, entropy_collapse, kl_growth,
                                     length_collapse, length_explosion, zero_spread)


def hist(**series):
    n = len(next(iter(series.values())))
    return [{"step": i + 1, **{k: v[i] for k, v in series.items()}} for i in range(n)]


HEALTHY = hist(entropy=[1.0, 0.95, 0.9, 0.85, 0.8], kl=[0.0, 0.01, 0.02, 0.03, 0.04],
               reward_mean=[0.1, 0.2, 0.3, 0.4, 0.5], completion_len_mean=[20, 21, 19, 22, 20],
               zero_spread_frac=[0.5, 0.9, 0.3, 0.4, 0.2])


def test_a_healthy_run_fires_nothing():
    assert check(HEALTHY) == []


def test_entropy_collapse_against_the_first_three_steps():
    # baseline = (1.0 + 0.9 + 0.8) / 3 = 0.9; 0.1 x 0.9 = 0.09 > 0.05 -> fires
    ev = entropy_collapse(hist(entropy=[1.0, 0.9, 0.8, 0.05]))
    assert ev and ev.name == "entropy_collapse" and ev.step == 4
    assert ev.metric == "monitor/entropy_collapse"
    assert entropy_collapse(hist(entropy=[1.0, 0.9, 0.8, 0.1])) is None      # 0.1 > 0.09
    assert entropy_collapse(hist(entropy=[1.0, 0.9, 0.05])) is None          # too short
    assert entropy_collapse(hist(entropy=[0.005] * 4)) is not None           # below the floor


def test_kl_slope_and_ceiling():
    # (0.4 - 0.1) / 3 = 0.1 per step > 0.05
    assert kl_growth(hist(kl=[0.1, 0.2, 0.3, 0.4])).name == "kl_growth"
    # (0.25 - 0.1) / 3 = 0.05: not strictly greater
    assert kl_growth(hist(kl=[0.1, 0.15, 0.2, 0.25])) is None
    assert kl_growth(hist(kl=[1.5])) is not None                             # above kl_max
    assert kl_growth(hist(kl=[math.nan] * 4)) is None
    assert kl_growth(hist(reward_mean=[0.1] * 4)) is None                    # no KL (β = 0)


def test_length_collapse_and_explosion_only_when_reward_rises():
    rising = [0.1, 0.2, 0.3, 0.4]
    assert length_collapse(hist(reward_mean=rising, completion_len_mean=[40, 30, 25, 15]))
    assert length_explosion(hist(reward_mean=rising, completion_len_mean=[10, 15, 20, 25]))
    # 15/40 = 0.375 < 0.5 but reward flat (+0.0 < 0.05): no event
    assert length_collapse(hist(reward_mean=[0.3] * 4, completion_len_mean=[40, 30, 25, 15])) is None
    # 18/10 = 1.8 < 2.0
    assert length_explosion(hist(reward_mean=rising, completion_len_mean=[10, 12, 15, 18])) is None


def test_zero_spread_needs_two_consecutive_steps():
    assert zero_spread(hist(zero_spread_frac=[0.2, 0.9, 0.85])).name == "zero_spread"
    assert zero_spread(hist(zero_spread_frac=[0.9, 0.5, 0.95])) is None
    t = MonitorThresholds(zero_spread=0.5, zero_spread_steps=1)
    assert zero_spread(hist(zero_spread_frac=[0.6]), t) is not None


def test_check_reports_every_firing_monitor():
    h = hist(entropy=[1.0, 1.0, 1.0, 0.001], kl=[0.0, 0.0, 0.0, 2.0],
             reward_mean=[0.0, 0.0, 0.0, 0.0], completion_len_mean=[10] * 4,
             zero_spread_frac=[1.0] * 4)
    assert sorted(e.name for e in check(h)) == ["entropy_collapse", "kl_growth", "zero_spread"]
