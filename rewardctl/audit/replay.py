"""`rewardctl replay RUN --verifier NAME@VERSION`: re-score a run's stored completions.

    QueryScores(RUN, include_texts) ─▶ samples (rows sharing (request_id, sample_index))
        │ texts dropped by retention / not stored: counted, not replayable
        ▼
    DryRun(first sample)            validates the verifier, version and params before anything
        ▼                           is written
    StartRun(replay_of=RUN)         the replay run: the original run is never written to
        ▼
    ScoreGroups / Score             one component: the named verifier; same step, same group_id
        ▼                           (grouped originals go through ScoreGroups to keep it);
    diff against the original       sample id "<request_id>:<sample_index>" links each replayed
        ▼                           sample to its original
    FinishRun(summary)

The diff compares each replayed sample with its *baseline*: the original component scored
by the same verifier name when the sample had one (e.g. math@1.0.0 → math@1.1.0), else the
sample's original total. A sample *passes* when it is OK with reward >= the pass threshold;
a *flip* is a change of pass/fail. Other changes: of status without a flip (ABSTAIN →
ERROR), of reward without a flip (0.2 → 0.4).
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rewards_client import RewardCallError, RewardServiceError, SampleScore, build_spec, make_sample

from .records import Sample, TextState, iter_request_chunks, recover_reference, row_from_pb

KINDS = ("to_pass", "to_fail", "status", "reward", "same")
KIND_WORDS = {"to_pass": "fail → pass", "to_fail": "pass → fail", "status": "status changed (no flip)",
              "reward": "reward changed (no flip)", "same": "unchanged"}
SKIP_WORDS = {TextState.DROPPED: "texts dropped by retention", TextState.NOT_STORED: "texts not stored by the server",
              TextState.NOT_FETCHED: "texts not fetched"}


class ReplayError(RuntimeError):
    """The replay could not go on; the message says why and what was written."""


@dataclass(frozen=True)
class VerifierSpec:
    name: str
    version: str = ""                    # "" = the server's newest
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, ref: str, params_json: str | None = None) -> VerifierSpec:
        """"math@1.0.0" + '{"rel_tol": 0.01}'. Raises ValueError naming the bad part."""
        name, _, version = ref.strip().partition("@")
        if not name:
            raise ValueError(f"--verifier: {ref!r}: give NAME or NAME@VERSION")
        params: Any = {}
        if params_json:
            try:
                params = json.loads(params_json)
            except ValueError as e:
                raise ValueError(f"--params: not valid JSON: {e}") from None
            if not isinstance(params, dict):
                raise ValueError("--params: must be a JSON object")
        return cls(name, version, params)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version or 'newest'}"

    def to_spec(self) -> Any:
        """The one-component spec (a rewards_client.build_spec message), weight 1."""
        return build_spec([{"name": self.name, "version": self.version, "weight": 1.0, "params": self.params}])


@dataclass(frozen=True)
class Outcome:
    status: str
    reward: float | None
    reason: str = ""
    version: str = ""

    def passed(self, threshold: float) -> bool:
        return self.status == "OK" and self.reward is not None and self.reward >= threshold

    def __str__(self) -> str:
        return self.status if self.reward is None else f"{self.status} {self.reward:g}"


def baseline(sample: Sample, verifier: str) -> tuple[Outcome, str, int]:
    """(the outcome to compare with, "component" | "total", its score_id)."""
    row = sample.component(verifier)
    if row is not None:
        return Outcome(row.status, row.reward, row.reason, row.verifier_version), "component", row.score_id
    f = sample.first
    return Outcome(f.total_status, f.total_reward), "total", f.score_id


def classify(old: Outcome, new: Outcome, threshold: float, atol: float = 1e-9) -> str:
    """One of KINDS: a pass/fail flip first, then a status change, then a reward change."""
    was, now = old.passed(threshold), new.passed(threshold)
    if was != now:
        return "to_pass" if now else "to_fail"
    if old.status != new.status:
        return "status"
    if old.reward is not None and new.reward is not None and abs(old.reward - new.reward) > atol:
        return "reward"
    return "same"


def outcome_from_result(r: SampleScore) -> Outcome:
    """The replayed verifier's outcome (the spec has exactly one component)."""
    if r.components:
        c = r.components[0]
        return Outcome(c.status, c.reward, c.reason, c.version)
    return Outcome(r.status, r.reward, r.reason)


def link_id(sample: Sample) -> str:
    """The replayed sample's id: its original's (request_id, sample_index)."""
    return f"{sample.first.request_id}:{sample.first.sample_index}"


def sample_message(sample: Sample) -> Any:
    """The sample to re-score (rewards_client.make_sample), linked to its original by id."""
    f = sample.first
    return make_sample(link_id(sample), f.completion or "", prompt=f.prompt or "",
                       reference=recover_reference(f.reference_json, f.reference_sha256))


def reference_problem(sample: Sample, spec: VerifierSpec) -> str | None:
    """The server's up-front reference check (which rejects a whole batch), run here with
    the local registry so one bad sample is skipped instead; None when it fits or the
    verifier is not known locally (the server then decides)."""
    from verifiers import registry
    from verifiers.errors import InvalidReferenceError, UnknownVerifierError

    try:
        cls = registry.get(spec.name, spec.version or None)
    except UnknownVerifierError:
        return None
    try:
        cls.check_reference(recover_reference(sample.first.reference_json, sample.first.reference_sha256))
    except InvalidReferenceError as e:
        return f"reference rejected by {spec.name}: {e}"
    return None


@dataclass
class Example:
    kind: str
    score_id: int
    step: int
    group_id: str
    sample_index: int
    old: str
    new: str
    new_reason: str
    completion: str


def _clip(text: str, n: int = 160) -> str:
    """At most about n characters, whitespace collapsed; a long text keeps its head and its
    tail (where a completion's final answer is)."""
    text = " ".join(text.split())
    if len(text) <= n:
        return text
    head = n // 3
    return text[:head] + " … " + text[-(n - head - 3):]


@dataclass
class ReplayTally:
    """Counts and examples of what changed; fed one replayed sample at a time."""

    verifier: str
    threshold: float = 0.5
    max_examples: int = 5
    samples: int = 0
    replayed: int = 0
    skipped: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    compared_to: Counter = field(default_factory=Counter)
    transitions: Counter = field(default_factory=Counter)
    both_ok: int = 0
    old_sum: float = 0.0
    new_sum: float = 0.0
    examples: list[Example] = field(default_factory=list)

    def skip(self, why: str) -> None:
        self.samples += 1
        self.skipped[why] += 1

    def add(self, sample: Sample, new: Outcome) -> str:
        old, what, score_id = baseline(sample, self.verifier)
        kind = classify(old, new, self.threshold)
        self.samples += 1
        self.replayed += 1
        self.kinds[kind] += 1
        self.compared_to[what] += 1
        if old.status != new.status:
            self.transitions[f"{old.status}→{new.status}"] += 1
        if old.reward is not None and new.reward is not None and old.status == new.status == "OK":
            self.both_ok += 1
            self.old_sum += old.reward
            self.new_sum += new.reward
        if kind != "same" and sum(e.kind == kind for e in self.examples) < self.max_examples:
            self.examples.append(Example(kind, score_id, sample.step, sample.group_id, sample.first.sample_index,
                                         str(old), str(new), new.reason, _clip(sample.first.completion or "")))
        return kind

    @property
    def flipped(self) -> int:
        return self.kinds["to_pass"] + self.kinds["to_fail"]

    def summary_metrics(self) -> dict[str, float]:
        """Numbers for the replay run's FinishRun summary."""
        out = {"samples": self.samples, "replayed": self.replayed, "not_replayable": sum(self.skipped.values()),
               "flipped": self.flipped, **{f"changed_{k}": self.kinds[k] for k in KINDS}}
        if self.both_ok:
            out.update(mean_reward_before=self.old_sum / self.both_ok, mean_reward_after=self.new_sum / self.both_ok)
        return {k: float(v) for k, v in out.items()}

    def as_dict(self) -> dict[str, Any]:
        return {"verifier": self.verifier, "pass_threshold": self.threshold, "samples": self.samples,
                "replayed": self.replayed, "not_replayable": dict(self.skipped), "flipped": self.flipped,
                "changes": {k: self.kinds[k] for k in KINDS}, "compared_to": dict(self.compared_to),
                "status_transitions": dict(self.transitions), "both_ok": self.both_ok,
                "mean_reward_before": self.old_sum / self.both_ok if self.both_ok else None,
                "mean_reward_after": self.new_sum / self.both_ok if self.both_ok else None,
                "examples": [asdict(e) for e in self.examples]}


@dataclass
class ReplayResult:
    run_id: str
    spec: VerifierSpec
    version_used: str
    replay_run: Any                     # the replay's rewards.v1 Run, None when none was written
    tally: ReplayTally

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "replay_run_id": self.replay_run.run_id if self.replay_run else None,
                "verifier": self.spec.name, "version": self.version_used, "params": self.spec.params,
                **self.tally.as_dict()}

    def render_text(self) -> str:
        t = self.tally
        lines = [f"replay of run {self.run_id} with {self.spec.name}@{self.version_used or self.spec.version}"
                 + (f" params {json.dumps(self.spec.params, sort_keys=True)}" if self.spec.params else "")]
        if self.replay_run is not None:
            lines.append(f"replay run: {self.replay_run.run_id} ({self.replay_run.name}; replay_of={self.run_id})")
        else:
            lines.append("replay run: none written (nothing could be replayed)")
        skipped = sum(t.skipped.values())
        why = ", ".join(f"{reason}: {n}" for reason, n in sorted(t.skipped.items()))
        lines.append(f"samples: {t.samples}; replayed: {t.replayed}; not replayable: {skipped}"
                     + (f" ({why})" if skipped else ""))
        if t.replayed:
            comp = t.compared_to
            lines.append(f"compared with: the original {t.verifier} component ({comp['component']}), "
                         f"the original total ({comp['total']})")
            lines.append(f"flipped: {t.flipped} (pass → fail: {t.kinds['to_fail']}, fail → pass: "
                         f"{t.kinds['to_pass']}); pass = OK and reward ≥ {t.threshold:g}")
            lines.append(f"status changed without a flip: {t.kinds['status']}; reward changed without a flip: "
                         f"{t.kinds['reward']}; unchanged: {t.kinds['same']}")
            if t.transitions:
                lines.append("status transitions: " + ", ".join(f"{k} {v}" for k, v in sorted(t.transitions.items())))
            if t.both_ok:
                lines.append(f"mean reward over the {t.both_ok} samples OK before and after: "
                             f"{t.old_sum / t.both_ok:.4f} → {t.new_sum / t.both_ok:.4f}")
        if t.examples:
            lines.append("examples (score_id is the original's: `rewardctl show SCORE_ID`):")
            for e in t.examples:
                lines.append(f"  [{KIND_WORDS[e.kind]}] score {e.score_id}  step {e.step}  group {e.group_id or '–'}"
                             f"  sample {e.sample_index}: {e.old} → {e.new}  ({_clip(e.new_reason, 120)})")
                lines.append(f"      completion: {e.completion!r}")
        return "\n".join(lines)


def _score_ungrouped(client, run_id: str, step: int, samples: list[Sample], spec: Any,
                     results: dict[str, SampleScore], rejected: dict[str, str]) -> None:
    """One original request outside a group -> Score (the client waits out quotas and
    outages); a batch refused as invalid is retried sample by sample (the refusal is
    atomic: nothing was scored or stored)."""
    try:
        scores = client.score([sample_message(s) for s in samples], spec, run_id=run_id, step=step, timeout_s=600)
        results.update((r.id, r) for r in scores)
    except RewardCallError as e:
        if e.code is None or e.code.name != "INVALID_ARGUMENT":
            raise
        if len(samples) == 1:
            rejected[link_id(samples[0])] = f"rejected by the server: {e.details}"
            return
        for s in samples:
            _score_ungrouped(client, run_id, step, [s], spec, results, rejected)


def score_chunk(client, run_id: str, samples: list[Sample], spec: Any
                ) -> tuple[dict[str, SampleScore], dict[str, str]]:
    """Score one chunk into run `run_id`: ({link id: result}, {link id: why rejected}).

    Samples that were in a group go through ScoreGroups (one stream per original step, one
    group per original request, its group_id kept); a group the server refuses is skipped
    with its reason, the others go on. The others go through Score.
    """
    requests: dict[str, list[Sample]] = {}
    for s in samples:
        requests.setdefault(s.first.request_id, []).append(s)
    by_step: dict[int, dict[str, list[Sample]]] = {}
    for ss in requests.values():
        if ss[0].group_id:
            by_step.setdefault(ss[0].step, {}).setdefault(ss[0].group_id, []).extend(ss)
    results: dict[str, SampleScore] = {}
    rejected: dict[str, str] = {}
    for step, groups in by_step.items():
        stream = client.open_group_stream(run_id, step, spec)
        try:
            for group_id, ss in groups.items():
                stream.submit(group_id, [sample_message(s) for s in ss])
            answered = stream.collect(strict=False)
        except RewardServiceError as e:
            raise ReplayError(f"ScoreGroups (step {step}) failed: {e}") from e
        for scores in answered.values():
            results.update((r.id, r) for r in scores)
        for group_id, (code, message) in stream.refused.items():
            for s in groups.get(group_id, []):
                rejected[link_id(s)] = f"rejected by the server: {code}: {message}"
    for ss in requests.values():
        if not ss[0].group_id:
            _score_ungrouped(client, run_id, ss[0].step, ss, spec, results, rejected)
    return results, rejected


def replay(client, run_id: str, spec: VerifierSpec, *, team: str = "", name: str = "", threshold: float = 0.5,
           max_examples: int = 5, chunk_samples: int = 256,
           progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Re-score `run_id`'s stored completions with `spec` into a new, linked replay run.

    `client`: a rewards_client.RewardClient (its retry policy waits out quotas and outages).
    Raises RewardCallError for a bad verifier/params (before any run is created) and
    ReplayError when scoring fails midway (the replay run is then marked failed).
    """
    run = client.get_run(run_id, team=team)
    tally = ReplayTally(spec.name, threshold, max_examples)
    records = client.iter_scores(run_id, team=run.team, include_texts=True, timeout_s=0)
    rows: Iterable = (row_from_pb(r, texts_fetched=True) for r in records)
    spec_msg = spec.to_spec()
    replay_run: Any = None              # the replay's Run once one is written
    version = spec.version
    try:
        for chunk in iter_request_chunks(rows, chunk_samples):
            todo = []
            for s in chunk:
                if s.text_state is not TextState.PRESENT:
                    tally.skip(SKIP_WORDS[s.text_state])
                elif (why := reference_problem(s, spec)) is not None:
                    tally.skip(why)
                else:
                    todo.append(s)
            if not todo:
                continue
            if replay_run is None:
                # Validate name, version and params on a real sample before writing anything.
                check = client.dry_run(sample_message(todo[0]), spec_msg)
                version = check.components[0].version if check.components else spec.version
                config = {"replay": {"of": run_id, "verifier": spec.name, "version": version,
                                     "params": spec.params, "pass_threshold": threshold,
                                     "sample_id": "<original request_id>:<original sample_index>"}}
                replay_id = client.start_run(name or f"replay of {run.name or run_id}: {spec.name}@{version}",
                                             config=config, replay_of=run_id, replay_of_team=run.team)
                replay_run = client.get_run(replay_id)
            results, rejected = score_chunk(client, replay_run.run_id, todo, spec_msg)
            for s in todo:
                key = link_id(s)
                if key in results:
                    tally.add(s, outcome_from_result(results[key]))
                else:
                    tally.skip(_clip(rejected.get(key, "no result returned"), 200))
            if progress:
                progress(len(chunk))
    except BaseException as e:
        if replay_run is not None:
            try:
                client.finish_run(replay_run.run_id, "failed", tally.summary_metrics())
            except RewardServiceError:
                pass
            if isinstance(e, ReplayError):
                raise ReplayError(f"{e} (replay run {replay_run.run_id} is marked failed; the original run "
                                  f"{run_id} is untouched)") from e
        raise
    if replay_run is not None:
        replay_run = client.finish_run(replay_run.run_id, "finished", tally.summary_metrics())
    return ReplayResult(run_id, spec, version, replay_run, tally)

