"""`rewardctl score FILE`: JSONL lines -> samples -> scores, in-process or through a server.

Input line: {"completion": str, "id"?: any, "prompt"?: str, "reference"?: str|object,
"metadata"?: object} plus what to score it with, one of
    "verifier": NAME (+ "params"?: object)
    "verifiers": [{"name", "version"?, "weight"?, "params"?, "gate"?, "gate_min"?}, ...]
    "spec": "NAME" | "NAME@VERSION" (a spec stored on the server) | {"components", "routes",
            "task_key"?} (inline; routes pick components by metadata[task_key or "task"])
Any other field is an error on that line. Output line: the input plus "reward" (float or
null), "status", "reason", "components", "latency_ms" (and "spec": "NAME@VERSION" when a
stored spec scored it; "stored": true when --resume took it from the run's stored scores).

Line numbers count every line of the file (blank ones too); a sample's id defaults to its
line number. A refusal of the server that names `samples[i]` is reported against the line
that sample came from. Every message goes through rewards_client (no proto here).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from tqdm import tqdm

from .audit.records import sha256

from rewards_client import (RetryPolicy, RewardCallError, RewardClient, RewardServiceError,
                            RewardServiceUnavailable, SampleScore, build_spec, make_sample, sample_score,
                            status_name)

COMPONENT_FIELDS = ("name", "version", "weight", "params", "gate", "gate_min")
LINE_FIELDS = {"id", "prompt", "completion", "reference", "metadata", "verifier", "verifiers", "params", "spec"}
VERIFIER_STATUSES = {"OK", "ABSTAIN", "TIMEOUT", "ERROR"}   # a scored line; anything else: the line failed
BATCH = 256
SCORE_TIMEOUT_S = 600.0


class LineError(ValueError):
    """A line that cannot become a sample; the message names the line and the field."""


class UsageError(ValueError):
    """A command line or input that cannot be acted on (exit status 2)."""


def _component(c: Any, where: str) -> dict[str, Any]:
    """A `{name, version?, weight?, params?, gate?, gate_min?}` object, checked field by field.
    An unknown field is an error, never dropped (a dropped `gate` changed the reward silently)."""
    if not isinstance(c, dict):
        raise LineError(f"{where}: a {{{', '.join(COMPONENT_FIELDS)}}} object")
    unknown = sorted(set(c) - set(COMPONENT_FIELDS))
    if unknown:
        raise LineError(f"{where}.{unknown[0]}: unknown field; a verifier takes {', '.join(COMPONENT_FIELDS)}")
    if not isinstance(c.get("name"), str) or not c["name"]:
        raise LineError(f"{where}.name: required, a verifier name")
    if not isinstance(c.get("version", ""), str):
        raise LineError(f"{where}.version: a string such as \"2.1.0\"")
    params = c.get("params")
    if params is not None and not isinstance(params, dict):
        raise LineError(f"{where}.params: a JSON object of the verifier's parameters, not {type(params).__name__}")
    for f in ("weight", "gate_min"):
        if f in c and (isinstance(c[f], bool) or not isinstance(c[f], (int, float))):
            raise LineError(f"{where}.{f}: a number, not {json.dumps(c[f])}")
    if "gate" in c and not isinstance(c["gate"], bool):
        raise LineError(f"{where}.gate: true or false")
    return c


def line_spec(obj: dict[str, Any], where: str) -> Any:
    """What the line is scored with, in a form rewards_client.build_spec takes."""
    given = [k for k in ("verifier", "verifiers", "spec") if k in obj]
    if len(given) > 1:
        raise LineError(f"{where}: {' and '.join(given)}: give one of verifier, verifiers or spec")
    if "params" in obj and given != ["verifier"]:
        raise LineError(f"{where}: params: goes with \"verifier\" (in \"verifiers\", each has its own)")
    if "spec" in obj:
        spec = obj["spec"]
        if isinstance(spec, str) and spec.strip():
            name, _, version = spec.strip().partition("@")
            if version and not version.isdigit():
                raise LineError(f"{where}: spec: {spec!r}: a stored spec is NAME or NAME@VERSION (an integer)")
            return spec.strip()
        if isinstance(spec, dict):
            try:
                build_spec(spec)
            except ValueError as e:
                raise LineError(f"{where}: {e}") from None
            return spec
        raise LineError(f"{where}: spec: a stored spec's name (\"math-r1\", \"math-r1@2\") or an inline "
                        f"{{\"components\", \"routes\"}} object")
    if "verifiers" in obj:
        if not isinstance(obj["verifiers"], list) or not obj["verifiers"]:
            raise LineError(f"{where}: verifiers: a non-empty list of {{{', '.join(COMPONENT_FIELDS)}}} objects")
        return [_component(c, f"{where}: verifiers[{i}]") for i, c in enumerate(obj["verifiers"])]
    if isinstance(obj.get("verifier"), str):
        return [_component({"name": obj["verifier"], **({"params": obj["params"]} if "params" in obj else {})},
                           f"{where}: verifier")]
    raise LineError(f"{where}: verifier: required (a name), or verifiers: [...], or spec: NAME")


def line_to_sample(obj: Any, lineno: int) -> Any:
    """One JSONL object -> a sample message (rewards_client.make_sample) with its own spec.
    Raises LineError naming the line and the field."""
    where = f"line {lineno}"
    if not isinstance(obj, dict):
        raise LineError(f"{where}: expected a JSON object")
    unknown = sorted(set(obj) - LINE_FIELDS)
    if unknown:
        raise LineError(f"{where}: {unknown[0]}: unknown field; a line takes {', '.join(sorted(LINE_FIELDS))}")
    if not isinstance(obj.get("completion"), str):
        raise LineError(f"{where}: completion: required, a string")
    if "prompt" in obj and not isinstance(obj["prompt"], str):
        raise LineError(f"{where}: prompt: a string")
    if "metadata" in obj and not isinstance(obj["metadata"], dict):
        raise LineError(f"{where}: metadata: a JSON object (e.g. {{\"task\": \"math\"}} picks a spec's route)")
    spec = line_spec(obj, where)
    try:
        return make_sample(str(obj.get("id", lineno)), obj["completion"], prompt=obj.get("prompt", ""),
                           reference=obj.get("reference"), metadata=obj.get("metadata"), spec=spec)
    except (ValueError, TypeError) as e:
        raise LineError(f"{where}: {e}") from None


def score_to_json(r: SampleScore) -> dict[str, Any]:
    out = {"reward": r.reward, "status": r.status, "reason": r.reason,
           "components": [{"name": c.name, "version": c.version, "weight": c.weight, "status": c.status,
                           "reward": c.reward, "reason": c.reason, "latency_ms": round(c.latency_ms, 3)}
                          for c in r.components],
           "latency_ms": round(r.latency_ms, 3)}
    if r.spec_name:
        out["spec"] = f"{r.spec_name}@{r.spec_version}"
    return out


def stored_to_json(records: list[Any]) -> dict[str, Any]:
    """The output of a sample found stored in the run (--resume): its component rows."""
    rows = sorted(records, key=lambda r: r.component_index)
    first = rows[0]
    status = status_name(first.total_status)
    reward = first.total_reward if status == "OK" and first.HasField("total_reward") else None
    comps = [{"name": r.verifier, "version": r.verifier_version, "weight": r.weight, "status": status_name(r.status),
              "reward": r.reward if r.HasField("reward") else None, "reason": r.reason,
              "latency_ms": round(r.latency_ms, 3)} for r in rows]
    reason = next((c["reason"] for c in comps if c["status"] != "OK" and c["reason"]), "")
    out = {"reward": reward, "status": status, "reason": reason, "components": comps,
           "latency_ms": round(sum(r.latency_ms for r in rows), 3), "stored": True}
    if first.spec_name:
        out["spec"] = f"{first.spec_name}@{first.spec_version}"
    return out


_SAMPLE_AT = re.compile(r"(?:request\.)?samples\[(\d+)\]\.?")


def at_line(details: str, linenos: list[int]) -> tuple[int | None, str]:
    """A server message about `samples[i]` of a batch -> (i, the message against the file's
    line): "request.samples[3].prompt: contains a NUL" -> (3, "line 12: prompt: contains a NUL")."""
    m = _SAMPLE_AT.search(details)
    if m and int(m.group(1)) < len(linenos):
        i = int(m.group(1))
        rest = (details[:m.start()] + details[m.end():]).strip()
        return i, f"line {linenos[i]}: {rest}"
    return None, details.removeprefix("request.")


def failed(status: str, reason: str) -> dict[str, Any]:
    return {"reward": None, "status": status, "reason": reason}


class _QuotaOnly(RetryPolicy):
    """The client's policy less its UNAVAILABLE retries (RemoteScorer makes those itself);
    a quota's retry-after is still waited out inside the call."""

    def may_retry(self, attempt: int, first_failure: float, deadline: float = float("inf")) -> bool:
        return False


class RemoteScorer:
    """Score through the server (one Score request per batch), into a run when given one.

    A refused request is atomic (nothing scored or stored): the sample the refusal names
    is marked failed and the rest re-sent; a refusal that names none is pinned down line
    by line. Outages are waited out with the client's retry policy (its outage window).
    Into a run, a Score lost to an outage may have been stored before the answer was lost:
    before sending it again the run's step is read back (QueryScores) and the samples found
    there are taken from the store, so that no sample is stored twice."""

    REFUSALS = ("INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION")

    def __init__(self, client: RewardClient, run_id: str = "", step: int = 0):
        self.client, self.run_id, self.step = client, run_id, step
        # Score is retried here, not inside the client: into a run, to look before re-sending;
        # and a call cut by a server's shutdown (CANCELLED) is an outage too.
        self.once = RewardClient(client.address, api_key=client.api_key or "", tls_ca=client.tls_ca or "",
                                 rpc_timeout_s=client.rpc_timeout_s)
        self.once.policy = _QuotaOnly(max_retries=client.policy.max_retries, backoff_s=client.policy.backoff_s,
                                      max_backoff_s=client.policy.max_backoff_s)

    def close(self) -> None:
        self.once.close()

    def score(self, items: list[tuple[int, Any]]) -> list[dict[str, Any]]:
        """items: (line number, sample) -> one output dict per item, in order."""
        if not items:
            return []
        try:
            return self._with_retries(items)
        except RewardCallError as e:
            if e.code is None or e.code.name not in self.REFUSALS:
                raise
            i, reason = at_line(e.details or str(e), [n for n, _ in items])
            if i is None and len(items) == 1:
                reason = f"line {items[0][0]}: {reason}"
                i = 0
            if i is None:
                return [x for item in items for x in self.score([item])]
            return self.score(items[:i]) + [failed(e.code.name, reason)] + self.score(items[i + 1:])

    def _with_retries(self, items: list[tuple[int, Any]]) -> list[dict[str, Any]]:
        policy, outages = self.client.policy, self.client.outages
        what = f"Score (run {self.run_id}, step {self.step})" if self.run_id else "Score"
        out: list[dict[str, Any] | None] = [None] * len(items)
        todo = list(range(len(items)))
        attempt, first_failure = 0, 0.0
        while True:
            try:
                scores = self.once.score([items[k][1] for k in todo], run_id=self.run_id, step=self.step,
                                         timeout_s=SCORE_TIMEOUT_S)
                outages.recovered(what)
                for k, r in zip(todo, scores):
                    out[k] = score_to_json(r)
                return out  # type: ignore[return-value]
            except (RewardServiceUnavailable, RewardCallError) as e:
                if isinstance(e, RewardCallError) and (e.code is None or e.code.name != "CANCELLED"):
                    raise
                first_failure = first_failure or time.monotonic()
                if not policy.may_retry(attempt, first_failure):
                    outages.gave_up(what)
                    if isinstance(e, RewardCallError):   # still cut short at the end of the window
                        raise RewardServiceUnavailable(f"reward service at {self.client.address}: {e}") from None
                    raise
                outages.failed(what, policy.give_up_at(first_failure))
                time.sleep(policy.sleep_s(attempt))
                attempt += 1
                if not self.run_id:
                    continue
                try:
                    stored = self._stored([items[k][1] for k in todo])
                except RewardServiceError:
                    continue                    # still away: look again before the next try
                for k in todo:
                    if items[k][1].id in stored:
                        out[k] = stored_to_json(stored[items[k][1].id])
                todo = [k for k in todo if out[k] is None]
                if not todo:
                    outages.recovered(what)
                    return out  # type: ignore[return-value]

    def _stored(self, samples: list[Any]) -> dict[str, list[Any]]:
        """The rows this run's step already holds for `samples` (same id, same completion)."""
        hashes = {s.id: sha256(s.completion) for s in samples}
        ids = set(hashes)
        found: dict[str, list[Any]] = {}
        for rec in self.once.iter_scores(self.run_id, step_min=self.step, step_max=self.step, timeout_s=0):
            if rec.sample_id in ids and rec.completion_sha256 == hashes[rec.sample_id]:
                found.setdefault(rec.sample_id, []).append(rec)
        return found


class LocalScorer:
    """The server's own scoring path (validation, pool, combination) without gRPC or a store."""

    def __init__(self, workers: int):
        import asyncio

        from reward_server.scoring import Scorer
        from verifiers.sandbox.admission import default_sandbox_threads

        # sandbox threads: at least the sandbox's runs in flight (sleepers hold a thread, not a core)
        self.scorer = Scorer(workers, 2 << 30, {"sandbox": max(workers, default_sandbox_threads())})
        self.loop = asyncio.new_event_loop()

    def score(self, items: list[tuple[int, Any]]) -> list[dict[str, Any]]:
        from reward_server import convert
        from reward_server.errors import status_code_for

        out: list[dict[str, Any] | None] = [None] * len(items)
        valid = []
        for i, (n, s) in enumerate(items):
            if s.spec.name:
                out[i] = failed("INVALID_ARGUMENT", f"line {n}: spec: {s.spec.name!r} is a spec stored on a "
                                                    "server; score with --server")
                continue
            try:
                valid.append((i, convert.samples_from_pb([s], build_spec(None), "request", None)[0]))
            except Exception as e:
                code = status_code_for(e)
                if code is None:
                    raise
                out[i] = failed(code.name, at_line(str(e), [n])[1])
        outcomes = self.loop.run_until_complete(self.scorer.score_many([s for _, s in valid]))
        for (i, _), o in zip(valid, outcomes):
            out[i] = score_to_json(sample_score(convert.outcome_to_pb(o)))
        return out  # type: ignore[return-value]

    def close(self) -> None:
        self.scorer.close()
        self.loop.close()


def read_lines(f: TextIO) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed JSON or None, error) for every non-blank line."""
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:  # without its line ending: an error at the end of the line is in its last column
            yield n, json.loads(line.rstrip("\r\n")), None
        except json.JSONDecodeError as e:
            yield n, None, f"line {n}: not valid JSON: {e.msg} at column {e.colno}"


def complete_lines(path: str) -> list[dict[str, Any]]:
    """The complete output lines of an earlier run (--resume); a last line cut short by a
    kill is dropped from the file. Raises UsageError for a file that is not our output."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    end = data.rfind(b"\n") + 1
    out = []
    for k, raw in enumerate(data[:end].splitlines(), 1):
        try:
            out.append(json.loads(raw))
        except ValueError:
            raise UsageError(f"--resume: {path} line {k} is not a complete JSON line; not rewardctl's "
                             f"output?") from None
    if end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    return out


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    rewards: list[float] = field(default_factory=list)
    first_failure: str = ""

    def add(self, res: dict[str, Any]) -> None:
        self.counts[res["status"]] += 1
        if res.get("reward") is not None:
            self.rewards.append(res["reward"])
        if res["status"] not in VERIFIER_STATUSES and not self.first_failure:
            self.first_failure = res["reason"]

    @property
    def failed(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in VERIFIER_STATUSES)


def run_score(args: argparse.Namespace, client: RewardClient | None) -> int:
    """The `score` command. Returns 0, or 1 when some lines failed; raises UsageError and the
    client's errors (mapped to exit statuses by the CLI)."""
    if args.resume and not args.output:
        raise UsageError("--resume needs -o OUT (the output of the run to resume)")
    try:
        with open(args.file) as f:
            total = sum(1 for line in f if line.strip())
    except OSError as e:
        raise UsageError(f"{args.file}: {e.strerror}") from None
    done = complete_lines(args.output) if args.resume else []
    stored: dict[str, list[Any]] = {}
    if client is not None and args.run:
        client.get_run(args.run)       # an unknown run is NOT_FOUND before any line is sent
        if args.resume:
            for rec in client.iter_scores(args.run, step_min=args.step, step_max=args.step, timeout_s=0):
                stored.setdefault(rec.sample_id, []).append(rec)
    scorer: Any = RemoteScorer(client, args.run or "", args.step) if client is not None else LocalScorer(args.workers)
    tally, from_store = Tally(), 0
    progress = args.progress or sys.stderr.isatty()
    out = open(args.output, "a" if args.resume else "w") if args.output else sys.stdout
    try:
        with open(args.file) as f, tqdm(total=total, unit="sample", disable=not progress, file=sys.stderr,
                                        mininterval=0 if args.progress else 0.1, miniters=1) as bar:
            if client is not None:
                client.outages.log = lambda line: tqdm.write(f"rewardctl: {line}", file=sys.stderr)
            # (line number, the input object, a sample to score, or its result already known)
            batch: list[tuple[int, dict[str, Any], Any, dict[str, Any] | None]] = []

            def flush() -> None:
                results = iter(scorer.score([(n, s) for n, _, s, res in batch if res is None]))
                for n, obj, s, res in batch:
                    res = res if res is not None else next(results)
                    tally.add(res)
                    out.write(json.dumps({**obj, **res}) + "\n")
                out.flush()             # complete lines only: what --resume reads back
                bar.update(len(batch))
                batch.clear()

            for k, (n, obj, err) in enumerate(read_lines(f)):
                if k < len(done):       # in OUT already (lines are written in input order)
                    if isinstance(obj, dict) and isinstance(done[k], dict) and obj.get("id") != done[k].get("id"):
                        raise UsageError(f"--resume: {args.output} line {k + 1} has id {done[k].get('id')!r} but "
                                         f"{args.file} line {n} has {obj.get('id')!r}; not the output of this file")
                    tally.add(done[k])
                    if k + 1 == len(done):
                        bar.update(len(done))
                    continue
                shown = obj if isinstance(obj, dict) else {"line": n, **({"value": obj} if obj is not None else {})}
                if obj is None:
                    batch.append((n, shown, None, failed("INVALID_ARGUMENT", err or "")))
                else:
                    try:
                        sample = line_to_sample(obj, n)
                    except LineError as e:
                        batch.append((n, shown, None, failed("INVALID_ARGUMENT", str(e))))
                    else:
                        hit = stored.get(sample.id)
                        if hit and hit[0].completion_sha256 == sha256(sample.completion):
                            # stored in the run by an earlier, interrupted rewardctl: not scored again
                            batch.append((n, shown, None, stored_to_json(stored.pop(sample.id))))
                            from_store += 1
                        else:
                            batch.append((n, shown, sample, None))
                if len(batch) >= args.batch_size:
                    flush()
            if batch:
                flush()
    finally:
        if args.output:
            out.close()
        scorer.close()
    mean = sum(tally.rewards) / len(tally.rewards) if tally.rewards else float("nan")
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(tally.counts.items()))
    if args.resume:
        print(f"resumed: skipped {len(done)} lines already in {args.output}, {from_store} found stored in "
              f"run {args.run}" if args.run else f"resumed: skipped {len(done)} lines already in {args.output}",
              file=sys.stderr)
    print(f"scored {sum(tally.counts.values())} samples ({summary}); mean reward of OK samples {mean:.4f}",
          file=sys.stderr)
    if tally.failed:
        print(f"rewardctl: {tally.failed} line(s) failed, e.g. {tally.first_failure}", file=sys.stderr)
        return 1
    return 0

