"""Run-health monitors: pure functions over the metric history, no I/O.

`history` is the trainer's list of per-step metric dicts (oldest first), each with at
least "step" and some of: entropy, kl, reward_mean, completion_len_mean,
zero_spread_frac. Each monitor returns a `MonitorEvent` (or None); the trainer prints
`event.message` as a warning and logs the LogStep metric ``monitor/<name>`` = 1.

Monitors and their thresholds (`MonitorThresholds`, defaults in brackets):

- entropy_collapse: the last entropy is below `entropy_ratio` [0.1] × the mean of the
  first `baseline_steps` [3] entropies, or below `entropy_floor` [0.01 nats/token].
- kl_growth: KL rose by more than `kl_slope` [0.05 per step] on average over the last
  `window` [3] steps, or the last KL exceeds `kl_max` [1.0].
- length_collapse / length_explosion: reward_mean rose by at least `reward_rise` [0.05]
  over the last `window` steps while completion_len_mean shrank below `length_low`
  [0.5] × or grew above `length_high` [2.0] × its value `window` steps ago (reward
  hacking by length).
- zero_spread: zero_spread_frac >= `zero_spread` [0.8] on each of the last
  `zero_spread_steps` [2] steps (most groups give no learning signal).

A monitor needs enough history (window + 1 points, or baseline + 1) to fire; NaN or
missing values never fire it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

History = Sequence[dict[str, float]]


@dataclass(frozen=True)
class MonitorThresholds:
    baseline_steps: int = 3
    entropy_ratio: float = 0.1
    entropy_floor: float = 0.01
    window: int = 3
    kl_slope: float = 0.05
    kl_max: float = 1.0
    reward_rise: float = 0.05
    length_low: float = 0.5
    length_high: float = 2.0
    zero_spread: float = 0.8
    zero_spread_steps: int = 2


@dataclass(frozen=True)
class MonitorEvent:
    name: str
    step: int
    message: str

    @property
    def metric(self) -> str:
        return f"monitor/{self.name}"


def _series(history: History, key: str) -> list[float]:
    """Values of `key` in order; a missing value becomes NaN."""
    return [float(h.get(key, math.nan)) for h in history]


def _step(history: History) -> int:
    return int(history[-1].get("step", len(history))) if history else 0


def _ok(*xs: float) -> bool:
    return all(not math.isnan(x) for x in xs)


def entropy_collapse(history: History, t: MonitorThresholds = MonitorThresholds()
                     ) -> MonitorEvent | None:
    e = _series(history, "entropy")
    if len(e) < t.baseline_steps + 1:
        return None
    base = sum(e[:t.baseline_steps]) / t.baseline_steps
    last = e[-1]
    if not _ok(base, last):
        return None
    if last < t.entropy_floor or last < t.entropy_ratio * base:
        return MonitorEvent("entropy_collapse", _step(history),
                            f"entropy collapsed: {last:.4g} vs baseline {base:.4g} "
                            f"(< {t.entropy_ratio:g}x or < {t.entropy_floor:g})")
    return None


def kl_growth(history: History, t: MonitorThresholds = MonitorThresholds()) -> MonitorEvent | None:
    k = _series(history, "kl")
    if not k or math.isnan(k[-1]):
        return None
    if k[-1] > t.kl_max:
        return MonitorEvent("kl_growth", _step(history),
                            f"KL {k[-1]:.4g} above the bound {t.kl_max:g}")
    if len(k) < t.window + 1 or math.isnan(k[-1 - t.window]):
        return None
    slope = (k[-1] - k[-1 - t.window]) / t.window
    if slope > t.kl_slope:
        return MonitorEvent("kl_growth", _step(history),
                            f"KL growing {slope:.4g}/step over {t.window} steps "
                            f"(bound {t.kl_slope:g}/step)")
    return None


def _length_vs_reward(history: History, t: MonitorThresholds) -> tuple[float, float] | None:
    r, n = _series(history, "reward_mean"), _series(history, "completion_len_mean")
    if len(r) < t.window + 1:
        return None
    r0, r1, n0, n1 = r[-1 - t.window], r[-1], n[-1 - t.window], n[-1]
    if not _ok(r0, r1, n0, n1) or n0 <= 0 or r1 - r0 < t.reward_rise:
        return None
    return r1 - r0, n1 / n0


def length_collapse(history: History, t: MonitorThresholds = MonitorThresholds()
                    ) -> MonitorEvent | None:
    got = _length_vs_reward(history, t)
    if got and got[1] < t.length_low:
        return MonitorEvent("length_collapse", _step(history),
                            f"reward +{got[0]:.3g} while completion length fell to "
                            f"{got[1]:.2f}x in {t.window} steps")
    return None


def length_explosion(history: History, t: MonitorThresholds = MonitorThresholds()
                     ) -> MonitorEvent | None:
    got = _length_vs_reward(history, t)
    if got and got[1] > t.length_high:
        return MonitorEvent("length_explosion", _step(history),
                            f"reward +{got[0]:.3g} while completion length grew to "
                            f"{got[1]:.2f}x in {t.window} steps")
    return None


def zero_spread(history: History, t: MonitorThresholds = MonitorThresholds()
                ) -> MonitorEvent | None:
    z = _series(history, "zero_spread_frac")[-t.zero_spread_steps:]
    if len(z) < t.zero_spread_steps or not _ok(*z):
        return None
    if all(v >= t.zero_spread for v in z):
        return MonitorEvent("zero_spread", _step(history),
                            f"{z[-1]:.0%} of groups have zero reward spread "
                            f"(>= {t.zero_spread:.0%} for {t.zero_spread_steps} steps)")
    return None


MONITORS: dict[str, Callable[[History, MonitorThresholds], MonitorEvent | None]] = {
    "entropy_collapse": entropy_collapse,
    "kl_growth": kl_growth,
    "length_collapse": length_collapse,
    "length_explosion": length_explosion,
    "zero_spread": zero_spread,
}


def check(history: History, t: MonitorThresholds = MonitorThresholds()) -> list[MonitorEvent]:
    """Every monitor that fires on the history's last step."""
    return [ev for fn in MONITORS.values() if (ev := fn(history, t)) is not None]
