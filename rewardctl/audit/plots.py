"""The report's figures: PNGs as `data:` URIs, drawn with matplotlib's Agg canvas.

`matplotlib.figure.Figure` is used directly (no pyplot), so nothing global is touched and
no display is needed. Each function returns a `Plot` or None when it has nothing to draw.
"""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .series import TRAINER_PANELS, ZERO_SPREAD_METRICS, RunSeries

STATUS_COLOURS = {"ABSTAIN": "#f2b134", "TIMEOUT": "#e4572e", "ERROR": "#8e1b1b"}
DPI = 100


@dataclass(frozen=True)
class Plot:
    key: str            # stable id, used as the <img> id
    title: str
    caption: str
    data_uri: str       # data:image/png;base64,...


def _step_axis(ax, steps: list[int]) -> None:
    """Integer steps, and the run's whole step range on every plot (so they line up)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if steps:
        pad = max(0.5, 0.03 * (steps[-1] - steps[0]))
        ax.set_xlim(steps[0] - pad, steps[-1] + pad)


def _figure(s: RunSeries, height_in: float = 3.2) -> tuple[Figure, object]:
    fig = Figure(figsize=(9, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    ax.set_xlabel("step")
    _step_axis(ax, s.steps)
    return fig, ax


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _any(xs: list[float]) -> bool:
    return any(not math.isnan(x) for x in xs)


def reward_plot(s: RunSeries) -> Plot | None:
    trainer = s.trainer_metric("reward_mean")
    if not _any(s.reward_mean) and trainer is None:
        return None
    fig, ax = _figure(s)
    if _any(s.reward_mean):
        lo = [m - (d if not math.isnan(d) else 0.0) for m, d in zip(s.reward_mean, s.reward_std)]
        hi = [m + (d if not math.isnan(d) else 0.0) for m, d in zip(s.reward_mean, s.reward_std)]
        ax.fill_between(s.steps, lo, hi, alpha=0.2, color="C0", label="± std (scores)")
        ax.plot(s.steps, s.reward_mean, "o-", color="C0", label="mean total reward (scores)")
    if trainer is not None:
        ax.plot(s.steps, trainer[1], "s--", color="C3", alpha=0.7, label="reward_mean (trainer)")
    ax.set_ylabel("reward")
    ax.legend(loc="best", fontsize="small")
    return Plot("reward", "Reward per step",
                "Mean and sample standard deviation of the total reward over OK samples, from the stored "
                "scores; dashed: the trainer's logged reward_mean.", _png(fig))


def component_plot(s: RunSeries) -> Plot | None:
    series = {c: v for c, v in s.component_mean.items() if _any(v)}
    if not series:
        return None
    fig, ax = _figure(s)
    info = {c.label: c for c in s.components}
    for label, ys in sorted(series.items()):
        c = info[label]
        tag = " (gate)" if c.gate else " (logged only)" if not c.counted else f" (w={c.weight:g})"
        ax.plot(s.steps, ys, "o-", label=label + tag)
    ax.set_ylabel("mean component reward")
    ax.legend(loc="best", fontsize="small")
    return Plot("components", "Reward per component (verifier)",
                "Mean reward of each component over its OK rows; w is the component's weight in the total.",
                _png(fig))


def status_plot(s: RunSeries) -> Plot | None:
    if not any(s.n_samples):
        return None
    fig, ax = _figure(s)
    bottom = [0] * len(s.steps)
    for st, colour in STATUS_COLOURS.items():
        ys = s.status_counts[st]
        ax.bar(s.steps, ys, bottom=bottom, color=colour, label=st, width=0.8)
        bottom = [b + y for b, y in zip(bottom, ys)]
    ax2 = ax.twinx()
    ax2.plot(s.steps, s.status_counts["OK"], "o-", color="C2", label="OK")
    ax2.set_ylabel("OK samples")
    for a in (ax, ax2):
        a.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_ylim(bottom=0, top=max(1, max(s.status_counts["OK"])) * 1.15)
    ax.set_ylabel("samples without a reward")
    ax.set_ylim(bottom=0, top=max(1, max(bottom)) * 1.15)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    fig.legend(h1 + h2, l1 + l2, loc="outside upper center", ncols=4, fontsize="small")
    return Plot("status", "Sample outcomes per step",
                "Bars: samples whose total status was ABSTAIN, TIMEOUT or ERROR (no reward; the trainer "
                "excludes them); line: OK samples.", _png(fig))


def length_plot(s: RunSeries) -> Plot | None:
    if not s.length_source or not _any(s.length_mean):
        return None
    fig, ax = _figure(s)
    ax.plot(s.steps, s.length_mean, "o-", color="C4")
    ax.set_ylabel("tokens" if "tokens" in s.length_source else "characters")
    ax.set_ylim(bottom=0)
    return Plot("length", "Completion length per step", f"Mean completion length; source: {s.length_source}.",
                _png(fig))


def zero_spread_plot(s: RunSeries) -> Plot | None:
    trainer = s.trainer_metric(*ZERO_SPREAD_METRICS)
    if not _any(s.zero_spread) and trainer is None:
        return None
    fig, ax = _figure(s)
    if _any(s.zero_spread):
        ax.plot(s.steps, s.zero_spread, "o-", color="C1", label="from the scores")
    if trainer is not None:
        ax.plot(s.steps, trainer[1], "s--", color="C3", alpha=0.7, label=f"{trainer[0]} (trainer)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("fraction of groups")
    ax.legend(loc="best", fontsize="small")
    return Plot("zero_spread", "Groups with no reward spread",
                "Fraction of groups (same step and group_id) whose OK samples all got the same total reward, "
                "or that have fewer than 2 OK samples: GRPO gets no signal from them.", _png(fig))


def trainer_plot(s: RunSeries) -> Plot | None:
    panels = [k for k in TRAINER_PANELS if k in s.trainer and _any(s.trainer[k])]
    if not panels:
        return None
    fig = Figure(figsize=(9, 2.2 * len(panels)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, k in zip(axes, panels):
        ax.plot(s.steps, s.trainer[k], "o-", color="C5")
        ax.set_ylabel(k)
        ax.grid(alpha=0.3)
        _step_axis(ax, s.steps)
    axes[-1].set_xlabel("step")
    return Plot("trainer", "Trainer metrics", f"As logged by the trainer: {', '.join(panels)}.", _png(fig))


def all_plots(s: RunSeries) -> list[Plot]:
    makers = (reward_plot, component_plot, status_plot, length_plot, zero_spread_plot, trainer_plot)
    return [p for p in (m(s) for m in makers) if p is not None]

