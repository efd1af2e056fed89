"""The reward-hacking flags on synthetic series, with the arithmetic written out.

Windows (flags module docstring): n finite points, k = max(1, floor(n · 0.25)); the check
compares the mean of the first k points with the mean of the last k.
"""
from __future__ import annotations

import math

import pytest

from rewardctl.audit.flags import (Thresholds, check_component_dominance, check_failures,
                                       check_gate_vs_correctness, check_reward_vs_length, check_zero_spread,
                                       run_checks, windows)
from rewardctl.audit.records import Row, group_samples
from rewardctl.audit.series import build_series

NAN = float("nan")
TH = Thresholds()


def test_windows_take_the_first_and_last_quarter_of_the_finite_points():
    # 8 points -> k = 2: first (0.1+0.2)/2 = 0.15, last (0.7+0.8)/2 = 0.75
    assert windows([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], TH) == pytest.approx((0.15, 0.75))
    # NaNs are dropped before windowing: 4 finite points -> k = 1
    assert windows([0.2, NAN, 0.4, 0.6, NAN, 0.9], TH) == pytest.approx((0.2, 0.9))
    assert windows([0.2, 0.4, 0.6], TH) is None               # 3 < min_steps = 4


def test_reward_up_while_length_collapses():
    reward = [0.2, 0.3, 0.5, 0.6]          # k = 1: 0.2 -> 0.6, rise +0.4 >= 0.1
    length = [400, 300, 150, 180]          # 400 -> 180: ratio 0.45 <= 0.5
    f = check_reward_vs_length(reward, length, TH, "tokens")
    assert f.state == "raised" and f.title == "Reward up while completion length collapses"
    assert "0.200 → 0.600 (+0.400)" in f.detail and "×0.45" in f.detail


def test_reward_up_while_length_explodes():
    f = check_reward_vs_length([0.2, 0.3, 0.5, 0.6], [100, 150, 190, 200])   # ratio 200/100 = 2.0 >= 2.0
    assert f.state == "raised" and f.title == "Reward up while completion length explodes"


@pytest.mark.parametrize("reward, length", [
    ([0.2, 0.3, 0.5, 0.6], [400, 380, 300, 210]),   # ratio 0.525: length fell, not collapsed
    ([0.5, 0.5, 0.55, 0.55], [400, 300, 200, 100]), # collapse, but rise +0.05 < 0.1
    ([0.6, 0.5, 0.3, 0.2], [100, 200, 300, 400]),   # reward down: not this pattern
])
def test_reward_vs_length_clear(reward, length):
    assert check_reward_vs_length(reward, length).state == "clear"


def test_reward_vs_length_skipped_without_enough_points():
    f = check_reward_vs_length([0.1, 0.5, 0.9, 1.0], [NAN, 300, 100, 50])
    assert f.state == "skipped" and "completion length" in f.detail


def test_non_correctness_component_dominating_the_level():
    # Last window (k = 1): format 0.9, math 0.1 -> format's share 0.9 / 1.0 = 90% >= 80%.
    contribution = {"format": [0.2, 0.5, 0.8, 0.9], "math": [0.1, 0.1, 0.1, 0.1]}
    f = check_component_dominance(contribution, {"math"})
    assert f.state == "raised" and "format makes 90% of the total reward" in f.detail


def test_non_correctness_component_dominating_the_rise():
    # Level shares at the end: format 0.5/(0.5+0.7) = 42%, not dominant. Rise: format +0.45, math +0.05,
    # total +0.5 >= 0.1; format's share of the gains 0.45 / 0.5 = 90% >= 80%.
    contribution = {"format": [0.05, 0.2, 0.4, 0.5], "math": [0.65, 0.6, 0.7, 0.7]}
    f = check_component_dominance(contribution, {"math"})
    assert f.state == "raised" and "format makes 90% of the total's rise (+0.500)" in f.detail


def test_correctness_component_may_dominate():
    contribution = {"format": [0.1, 0.1, 0.1, 0.1], "math": [0.2, 0.5, 0.8, 0.9]}   # math: 90% of level and rise
    assert check_component_dominance(contribution, {"math"}).state == "clear"
    # With no correctness verifier known, any dominating component is flagged.
    assert check_component_dominance(contribution, set()).state == "raised"


def test_component_dominance_skipped_with_one_component():
    assert check_component_dominance({"math": [0.1, 0.2, 0.3, 0.4]}, {"math"}).state == "skipped"


def test_gate_passing_while_correctness_falls():
    gate = [0.6, 0.8, 0.9, 0.95]           # 0.6 -> 0.95: not falling, ends >= 0.5
    correct = [0.5, 0.45, 0.4, 0.3]        # 0.5 -> 0.3: falls by 0.2 >= 0.1
    f = check_gate_vs_correctness(gate, correct)
    assert f.state == "raised" and "60% → 95%" in f.detail and "0.500 → 0.300 (-0.200)" in f.detail


@pytest.mark.parametrize("gate, correct", [
    ([0.9, 0.8, 0.7, 0.6], [0.5, 0.45, 0.4, 0.3]),   # the gate falls too: the model got worse overall
    ([0.2, 0.3, 0.3, 0.4], [0.5, 0.45, 0.4, 0.3]),   # gate ends at 40% < 50%: not "passing"
    ([0.6, 0.8, 0.9, 0.95], [0.5, 0.5, 0.45, 0.45]), # correctness falls by 0.05 < 0.1
])
def test_gate_vs_correctness_clear(gate, correct):
    assert check_gate_vs_correctness(gate, correct).state == "clear"


def test_gate_vs_correctness_skipped_without_a_gate():
    assert check_gate_vs_correctness([NAN] * 4, [0.5] * 4).state == "skipped"


def test_zero_spread_and_failures_use_the_last_window():
    # 4 points, k = 1: last value only.
    assert check_zero_spread([0.1, 0.2, 0.3, 0.5]).state == "raised"    # 0.5 >= 0.5
    assert check_zero_spread([0.9, 0.9, 0.9, 0.4]).state == "clear"
    assert check_failures([0.0, 0.0, 0.05, 0.12]).state == "raised"     # 0.12 >= 0.1
    assert check_failures([0.5, 0.0, 0.0, 0.0]).state == "clear"
    assert check_failures([NAN, NAN]).state == "skipped"


def test_thresholds_are_parameters():
    strict = Thresholds(length_collapse_ratio=0.6)
    assert check_reward_vs_length([0.2, 0.3, 0.5, 0.6], [400, 380, 300, 210], strict).state == "raised"  # 0.525
    assert ("dominance_share", "0.8") in TH.describe()


def _row(step, group, i, reward, verifier="math", weight=1.0, gate=False, status="OK", total=None, **kw):
    return Row(score_id=0, run_id="r", step=step, group_id=group, request_id=f"{step}{group}", sample_index=i,
               verifier=verifier, status=status, reward=reward if status == "OK" else None,
               total_status="OK" if total is not None else status, total_reward=total, weight=weight, gate=gate,
               params_hash=verifier, **kw)


def test_run_checks_on_a_hacked_run():
    """A gated run where format is learned while math is forgotten, and answers get short."""
    rows = []
    for step in range(4):
        math_right = [1.0, 1.0, 0.0, 0.0] if step < 2 else [1.0, 0.0, 0.0, 0.0]   # 0.5, 0.5, 0.25, 0.25
        for i in range(4):
            fmt = 1.0 if (i < step + 1) else 0.0                                     # gate passes more and more
            total = (0.2 * fmt + math_right[i]) if fmt >= 1.0 else 0.0
            completion = "x" * (100 if step == 0 else 30)
            rows.append(_row(step, "g", i, fmt, "format", weight=0.2, gate=True, total=total, component_index=0,
                             completion=completion))
            rows.append(_row(step, "g", i, math_right[i], "math", total=total, component_index=1,
                             completion=completion))
    s = build_series(group_samples(rows), {})
    findings = {f.check: f for f in run_checks(s)}
    # gate pass: 1/4 -> 4/4; correctness (math mean): 0.5 -> 0.25, a fall of 0.25 >= 0.1
    assert s.gate_pass == [0.25, 0.5, 0.75, 1.0] and s.correctness_mean == [0.5, 0.5, 0.25, 0.25]
    assert findings["gate_vs_correctness"].state == "raised"
    # totals: step 0: only i=0 passes the gate: 0.2+1 = 1.2, the rest 0 -> mean 0.3;
    # step 3: 1.2, 0.2, 0.2, 0.2 -> mean 0.45; rise 0.15 >= 0.1; length 100 -> 30 (×0.3)
    assert s.reward_mean[0] == pytest.approx(0.3) and s.reward_mean[3] == pytest.approx(0.45)
    assert findings["reward_vs_length"].state == "raised"
    assert s.length_source == "completion texts (characters)"
    assert math.isclose(s.zero_spread[0], 0.0)
