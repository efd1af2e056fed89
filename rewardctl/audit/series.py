"""Per-step series of a run, from its scored samples and the trainer's step metrics. Pure.

Every series is a list aligned with `RunSeries.steps`; a step with nothing to average
holds NaN (a gap in the plots, skipped by the flags).

Definitions (S_t = the samples scored at step t, OK_t = those whose total status is OK):
    reward_mean[t], reward_std[t]  mean and sample std (n-1) of total_reward over OK_t
    status_counts[s][t]            |{x in S_t : total status of x = s}|
    component_mean[c][t]           mean reward of component c over its OK rows at t
    contribution[c][t]             mean of weight_c * reward_c over c's OK rows at t (weight ≠ 0)
                                   (Σ_c contribution ≈ reward_mean when nothing is gated)
    gate_pass[t]                   fraction of gated samples whose every gate component is
                                   OK with reward >= GATE_MIN (the stored row has no gate_min)
    correctness_mean[t]            mean reward over OK rows of the correctness verifiers
    length_mean[t]                 the trainer's completion-length metric when it logged
                                   one (tokens), else mean len(completion) over samples
                                   whose text is present (characters)
    zero_spread[t]                 fraction of the step's groups (rows sharing (step,
                                   group_id), group_id non-empty) whose OK totals are all
                                   equal within ZERO_SPREAD_ATOL; a group with fewer than 2
                                   OK samples counts as zero-spread (the trainer's rule,
                                   trainer_client.advantages.zero_spread_fraction)
"""
from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .records import NON_OK, Sample

GATE_MIN = 1.0
ZERO_SPREAD_ATOL = 1e-9
# Trainer metric names, first match wins (trainer_client logs the second of each pair).
LENGTH_METRICS = ("completion_length_mean", "completion_len_mean")
ZERO_SPREAD_METRICS = ("frac_zero_std_groups", "zero_spread_frac")
TRAINER_PANELS = ("kl", "entropy", "clip_frac", "truncated_frac")
NAN = float("nan")


def mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else NAN


def sample_std(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else NAN


def zero_spread(totals: list[float], atol: float = ZERO_SPREAD_ATOL) -> bool:
    """A group's OK totals carry no learning signal: fewer than 2, or all equal within atol."""
    return len(totals) < 2 or max(totals) - min(totals) <= atol


@dataclass(frozen=True)
class ComponentInfo:
    label: str          # "math", or "format·1a2b3c" when a verifier ran with several parameter sets
    verifier: str
    params_hash: str
    weight: float       # the most common weight it had
    gate: bool

    @property
    def counted(self) -> bool:
        return self.weight != 0 or self.gate


@dataclass
class VerifierStats:
    verifier: str
    versions: set[str] = field(default_factory=set)
    rows: int = 0
    statuses: Counter = field(default_factory=Counter)
    rewards: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    cached: int = 0


@dataclass
class RunSeries:
    steps: list[int]
    n_samples: list[int]
    reward_mean: list[float]
    reward_std: list[float]
    status_counts: dict[str, list[int]]               # OK, ABSTAIN, TIMEOUT, ERROR
    components: list[ComponentInfo]
    component_mean: dict[str, list[float]]
    contribution: dict[str, list[float]]
    gate_pass: list[float]
    correctness_mean: list[float]
    correctness_labels: list[str]
    length_mean: list[float]
    length_source: str                                 # "" when there is none
    zero_spread: list[float]
    n_groups: list[int]
    trainer: dict[str, list[float]]                    # logged metrics, aligned with steps
    verifiers: list[VerifierStats]
    totals: Counter                                    # sample-level status counts, whole run
    text_states: Counter                               # TextState -> samples

    def trainer_metric(self, *names: str) -> tuple[str, list[float]] | None:
        """The first of `names` the trainer logged at any step."""
        for n in names:
            if n in self.trainer and any(not math.isnan(v) for v in self.trainer[n]):
                return n, self.trainer[n]
        return None

    @property
    def non_ok_frac(self) -> list[float]:
        return [sum(self.status_counts[s][i] for s in NON_OK) / n if n else NAN
                for i, n in enumerate(self.n_samples)]


def _labels(samples: list[Sample]) -> dict[tuple[str, str], ComponentInfo]:
    weights: dict[tuple[str, str], Counter] = defaultdict(Counter)
    gates: dict[tuple[str, str], bool] = {}
    for s in samples:
        for r in s.rows:
            k = (r.verifier, r.params_hash)
            weights[k][r.weight] += 1
            gates[k] = gates.get(k, False) or r.gate
    per_name = Counter(v for v, _ in weights)
    return {k: ComponentInfo(label=k[0] if per_name[k[0]] == 1 else f"{k[0]}·{k[1][:6]}", verifier=k[0],
                             params_hash=k[1], weight=weights[k].most_common(1)[0][0], gate=gates[k])
            for k in sorted(weights)}


def build_series(samples: list[Sample], step_metrics: Mapping[int, Mapping[str, float]],
                 correctness: Iterable[str] = ("math", "code")) -> RunSeries:
    """The per-step series of a run (definitions: module docstring).

    samples: every scored sample of the run (`records.group_samples`).
    step_metrics: step -> the metrics the trainer logged (ListSteps).
    correctness: verifier names that measure whether the answer is right.
    """
    correctness = set(correctness)
    comps = _labels(samples)
    steps = sorted({s.step for s in samples} | set(step_metrics))
    at = {t: i for i, t in enumerate(steps)}
    n = len(steps)

    by_step: list[list[Sample]] = [[] for _ in steps]
    for s in samples:
        by_step[at[s.step]].append(s)

    status_counts = {st: [0] * n for st in ("OK", *NON_OK)}
    reward_mean, reward_std, gate_pass, correct, lengths = [NAN] * n, [NAN] * n, [NAN] * n, [NAN] * n, [NAN] * n
    comp_mean = {c.label: [NAN] * n for c in comps.values()}
    contribution = {c.label: [NAN] * n for c in comps.values() if c.weight != 0}
    zero, n_groups = [NAN] * n, [0] * n
    verifiers: dict[str, VerifierStats] = {}
    totals: Counter = Counter()
    text_states: Counter = Counter()

    for i, group in enumerate(by_step):
        ok_totals = [s.total_reward for s in group if s.total_status == "OK" and s.total_reward is not None]
        reward_mean[i], reward_std[i] = mean(ok_totals), sample_std(ok_totals)
        comp_rewards: dict[str, list[float]] = defaultdict(list)
        comp_contrib: dict[str, list[float]] = defaultdict(list)
        correct_rewards: list[float] = []
        gated = gate_ok = 0
        chars: list[int] = []
        groups: dict[str, list[float]] = defaultdict(list)
        for s in group:
            st = s.total_status if s.total_status in status_counts else "ERROR"
            status_counts[st][i] += 1
            totals[st] += 1
            text_states[s.text_state] += 1
            if s.first.completion_chars is not None:
                chars.append(s.first.completion_chars)
            if s.group_id:
                g = groups[s.group_id]
                if s.total_status == "OK" and s.total_reward is not None:
                    g.append(s.total_reward)
            gates = [r for r in s.rows if r.gate]
            if gates:
                gated += 1
                gate_ok += all(r.status == "OK" and (r.reward or 0.0) >= GATE_MIN for r in gates)
            for r in s.rows:
                info = comps[(r.verifier, r.params_hash)]
                vs = verifiers.setdefault(r.verifier, VerifierStats(r.verifier))
                vs.versions.add(r.verifier_version)
                vs.rows += 1
                vs.statuses[r.status] += 1
                vs.latency_ms.append(r.latency_ms)
                vs.cached += r.cached
                if r.status != "OK" or r.reward is None:
                    continue
                vs.rewards.append(r.reward)
                comp_rewards[info.label].append(r.reward)
                if info.weight != 0:
                    comp_contrib[info.label].append(r.weight * r.reward)
                if r.verifier in correctness and not r.gate:
                    correct_rewards.append(r.reward)
        for label, xs in comp_rewards.items():
            comp_mean[label][i] = mean(xs)
        for label, xs in comp_contrib.items():
            contribution[label][i] = mean(xs)
        correct[i] = mean(correct_rewards)
        gate_pass[i] = gate_ok / gated if gated else NAN
        lengths[i] = mean(chars)
        n_groups[i] = len(groups)
        zero[i] = (sum(zero_spread(g) for g in groups.values()) / len(groups)) if groups else NAN

    names = sorted({k for m in step_metrics.values() for k in m})
    trainer = {k: [float(step_metrics.get(t, {}).get(k, NAN)) for t in steps] for k in names}
    length_source = ""
    logged = next((k for k in LENGTH_METRICS if k in trainer), None)
    if logged:
        lengths, length_source = trainer[logged], f"trainer metric {logged} (tokens)"
    elif any(not math.isnan(x) for x in lengths):
        length_source = "completion texts (characters)"

    return RunSeries(steps=steps, n_samples=[len(g) for g in by_step], reward_mean=reward_mean,
                     reward_std=reward_std, status_counts=status_counts, components=list(comps.values()),
                     component_mean=comp_mean, contribution=contribution, gate_pass=gate_pass,
                     correctness_mean=correct,
                     correctness_labels=sorted({c.verifier for c in comps.values()} & correctness),
                     length_mean=lengths, length_source=length_source, zero_spread=zero, n_groups=n_groups,
                     trainer=trainer, verifiers=[verifiers[k] for k in sorted(verifiers)], totals=totals,
                     text_states=text_states)
