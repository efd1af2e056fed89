"""`rewardctl report RUN`: fetch a run over gRPC and render one self-contained HTML page.

    fetch_run(client, run_id) -> RunData            (GetRun, ListSteps, QueryScores, ListRuns)
    build_report(data)       ->  Report             (series, findings, plots)
    render_html(report)      ->  str                (no scripts, no external resources:
                                                     plots are PNG data: URIs)

Texts are fetched (include_texts) only when the trainer logged no completion length,
and only their lengths are kept.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

from typing import Any

from rewards_client import RewardServiceError, message_to_dict

from .flags import Finding, Thresholds, run_checks
from .plots import Plot, all_plots
from .records import NON_OK, Sample, TextState, group_samples, row_from_pb
from .series import GATE_MIN, LENGTH_METRICS, RunSeries, build_series


@dataclass
class RunData:
    run: Any                                   # rewards.v1 Run, as rewards_client returns it
    steps: dict[int, dict[str, float]]
    samples: list[Sample]
    texts_fetched: bool
    replays: list[Any] = field(default_factory=list)


def fetch_run(client, run_id: str, *, team: str = "", texts: bool | None = None) -> RunData:
    """Everything the report needs about `run_id` (of `team`: admins; "" = as GetRun finds
    it), through a rewards_client.RewardClient. texts: None = only when no length metric.
    Raises RewardCallError (NOT_FOUND: no such run)."""
    run = client.get_run(run_id, team=team)
    steps = {r.step: dict(r.metrics) for r in client.list_steps(run_id, team=run.team)}
    if texts is None:
        texts = not any(k in m for m in steps.values() for k in LENGTH_METRICS)
    # team=run.team: an admin reading another team's run sees its scores too.
    records = client.iter_scores(run_id, team=run.team, include_texts=texts, timeout_s=0)
    samples = group_samples(row_from_pb(r, texts, keep_texts=False) for r in records)
    try:
        replays = [r for r in client.list_runs(limit=1000, team=run.team) if r.replay_of == run_id]
    except RewardServiceError:
        replays = []
    return RunData(run, steps, samples, texts, replays)


@dataclass
class Report:
    data: RunData
    series: RunSeries
    findings: list[Finding]
    plots: list[Plot]
    thresholds: Thresholds
    generated_at: str
    source: str = ""


def build_report(data: RunData, *, correctness: tuple[str, ...] = ("math", "code"),
                 thresholds: Thresholds = Thresholds(), source: str = "") -> Report:
    series = build_series(data.samples, data.steps, correctness)
    return Report(data, series, run_checks(series, thresholds), all_plots(series), thresholds,
                  datetime.now(timezone.utc).isoformat(timespec="seconds"), source)


CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.finding { border-left: 6px solid #999; padding: .4em .8em; margin: .5em 0; background: #fafafa; }
.finding.raised { border-color: #c0392b; background: #fdecea; } .finding.clear { border-color: #27ae60; }
.finding.skipped { border-color: #bbb; color: #666; }
.badge { font-weight: bold; text-transform: uppercase; font-size: .8em; margin-right: .6em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; } .muted { color: #777; } code, pre { font-size: .9em; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; }
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _table(head: list[str], rows: list[list[str]], num_cols: set[int] = frozenset()) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f'<td class="num">{_e(c)}</td>' if i in num_cols else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>")
    return "".join(out) + "</table>"


def _notes(rep: Report) -> list[str]:
    s, d = rep.series, rep.data
    notes = []
    dropped = s.text_states.get(TextState.DROPPED, 0)
    if dropped:
        notes.append(f"{dropped} of {sum(s.text_states.values())} samples had their texts dropped by the retention "
                     "policy (hashes, rewards and provenance remain); they cannot be replayed.")
    not_stored = s.text_states.get(TextState.NOT_STORED, 0)
    if not_stored:
        notes.append(f"{not_stored} samples were scored while the server did not store texts.")
    if s.length_source:
        notes.append(f"Completion length: {s.length_source}.")
    else:
        notes.append("Completion length: unavailable (no trainer metric "
                     f"{' / '.join(LENGTH_METRICS)}, and no stored completion texts).")
    if any(c.gate for c in s.components):
        notes.append(f"A gate counts as passed when its component is OK with reward ≥ {GATE_MIN:g} (the default "
                     "gate_min; the stored rows do not record a per-component gate_min).")
    if s.correctness_labels:
        notes.append(f"Correctness verifiers: {', '.join(s.correctness_labels)}.")
    steps_without = [t for t, n in zip(s.steps, s.n_samples) if n == 0]
    if steps_without:
        notes.append(f"{len(steps_without)} logged steps have no stored scores.")
    if not d.samples:
        notes.append("This run has no stored scores: the plots use the trainer's metrics only.")
    return notes


TASK_METRIC_PREFIX = "reward/task/"


def _per_task_section(steps: dict[int, dict[str, float]]) -> str:
    """Mean training reward per task (a row's `task`: the spec route it was scored by), from
    the `reward/task/<task>` metrics the trainer logs each step: one row per task, its mean
    over the logged steps, the first and the last step's value. Empty when none are logged."""
    tasks = sorted({k[len(TASK_METRIC_PREFIX):] for m in steps.values() for k in m if k.startswith(TASK_METRIC_PREFIX)})
    if not tasks:
        return ""
    rows = []
    for task in tasks:
        series = [(t, m[TASK_METRIC_PREFIX + task]) for t, m in sorted(steps.items()) if TASK_METRIC_PREFIX + task in m]
        values = [v for _, v in series]
        rows.append([task, str(len(series)), _num(sum(values) / len(values)),
                     f"{_num(series[0][1])} (step {series[0][0]})", f"{_num(series[-1][1])} (step {series[-1][0]})"])
    return ('<section id="tasks"><h2>Per task</h2><p class="muted">Mean training reward of each task\'s samples, '
            'as the trainer logged it (<code>reward/task/&lt;task&gt;</code>).</p>'
            + _table(["task", "steps", "mean reward", "first", "last"], rows, {1, 2}) + "</section>")


def render_html(rep: Report) -> str:
    d, s = rep.data, rep.series
    run = d.run
    title = f"Reward report: {run.name or run.run_id}"
    meta = [["run_id", run.run_id], ["name", run.name], ["team", run.team], ["state", run.state],
            ["created", run.created_at], ["finished", run.finished_at or "–"],
            ["steps", f"{len(s.steps)} ({s.steps[0]}…{s.steps[-1]})" if s.steps else "0"],
            ["score rows", str(sum(len(x.rows) for x in d.samples))], ["samples", str(len(d.samples))],
            ["sample outcomes", ", ".join(f"{k} {s.totals.get(k, 0)}" for k in ("OK", *NON_OK))]]
    if run.replay_of:
        meta.append(["replay of", run.replay_of])
    if d.replays:
        meta.append(["replayed as", ", ".join(f"{r.run_id} ({r.name})" for r in d.replays)])
    if run.summary:
        meta.append(["summary", ", ".join(f"{k}={v:g}" for k, v in sorted(run.summary.items()))])

    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1>",
             f'<p class="muted">generated {_e(rep.generated_at)} by rewardctl'
             + (f" from {_e(rep.source)}" if rep.source else "") + "</p>",
             '<section id="run"><h2>Run</h2>' + _table(["", ""], meta) + "</section>"]

    raised = [f for f in rep.findings if f.state == "raised"]
    parts.append('<section id="flags"><h2>Flags</h2>')
    parts.append(f"<p><b>{len(raised)} flag(s) raised.</b> " if raised else "<p><b>No flags raised.</b> ")
    parts.append("Patterns that usually mean reward hacking or a starved learning signal; thresholds below.</p>")
    for f in rep.findings:
        parts.append(f'<div class="finding {f.state}" data-check="{_e(f.check)}"><span class="badge">{_e(f.state)}'
                     f"</span><b>{_e(f.title)}</b><br>{_e(f.detail)}</div>")
    parts.append("</section>")

    parts.append('<section id="plots"><h2>Plots</h2>')
    if not rep.plots:
        parts.append("<p>Nothing to plot: no scores and no step metrics.</p>")
    for p in rep.plots:
        parts.append(f'<figure id="fig-{_e(p.key)}"><h3>{_e(p.title)}</h3>'
                     f'<img id="plot-{_e(p.key)}" alt="{_e(p.title)}" src="{p.data_uri}">'
                     f"<figcaption>{_e(p.caption)}</figcaption></figure>")
    parts.append("</section>")

    rows = []
    for v in s.verifiers:
        rows.append([v.verifier, ", ".join(sorted(v.versions)), str(v.rows),
                     *(str(v.statuses.get(k, 0)) for k in ("OK", *NON_OK)),
                     _num(sum(v.rewards) / len(v.rewards) if v.rewards else None),
                     _num(sum(v.latency_ms) / len(v.latency_ms) if v.latency_ms else None, ".1f"),
                     f"{v.cached / v.rows:.0%}" if v.rows else "–"])
    parts.append('<section id="verifiers"><h2>Verifiers</h2>'
                 + _table(["verifier", "versions", "rows", "OK", "ABSTAIN", "TIMEOUT", "ERROR", "mean reward",
                           "mean latency ms", "cached"], rows, set(range(2, 10))) + "</section>")

    parts.append(_per_task_section(d.steps))

    step_rows = [[str(t), str(s.n_samples[i]), _num(s.reward_mean[i]), _num(s.reward_std[i]),
                  *(str(s.status_counts[k][i]) for k in NON_OK), _num(s.length_mean[i], ".1f"),
                  _num(s.zero_spread[i], ".2f")] for i, t in enumerate(s.steps)]
    parts.append('<section id="steps"><h2>Per step</h2>'
                 + _table(["step", "samples", "reward mean", "reward std", *NON_OK, "length", "zero-spread groups"],
                          step_rows, set(range(0, 9))) + "</section>")

    parts.append('<section id="notes"><h2>Notes</h2><ul>'
                 + "".join(f"<li>{_e(n)}</li>" for n in _notes(rep)) + "</ul>")
    parts.append("<h3>Thresholds</h3>" + _table(["threshold", "value"], [list(x) for x in rep.thresholds.describe()]))
    config = message_to_dict(run.config) if run.HasField("config") else {}
    parts.append("<details><summary>Run configuration</summary><pre>"
                 + _e(json.dumps(config, indent=2, sort_keys=True)) + "</pre></details></section>")
    parts.append("</body></html>")
    return "\n".join(parts)
