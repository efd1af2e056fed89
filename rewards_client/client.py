"""RewardClient: blocking calls to every RPC of rewards.v1.RewardService.

    client = RewardClient("127.0.0.1:50051", api_key=None, tls_ca=None)  # None: from the env
    client.wait_ready()                                   # RewardServiceUnavailable if not
    scores = client.score([make_sample("0", r"\\boxed{4}", reference="4")], ["math"])
    scores[0].reward                                      # 1.0 (None unless status "OK")

Every unary RPC carries a deadline (`rpc_timeout_s`) and follows the one RetryPolicy
(rewards_client.retry): UNAVAILABLE retried with back-off and jitter within the outage
window, RESOURCE_EXHAUSTED with `retry-after-s` retried after the server's wait, anything
else raised at once as RewardCallError with its `.code`. A retried `Score` may be stored
twice if the first attempt reached the server before the connection broke; the rewards
returned are the same. The trainer's step stream is `open_group_stream` (GroupStream).

Raises (see rewards_client.errors): RewardServiceUnavailable, RewardCallError;
ValueError for a bad argument (a spec, a sample, a status name) before anything is sent.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

from .channel import (ENV_ADDRESS, ENV_API_KEY, SERVICE_NAME, channel_options, make_channel,
                      resolve_address, resolve_api_key, resolve_tls_ca)
from .convert import (SampleScore, as_sample, build_spec, integer, mismatch, sample_score, status_value,
                      to_struct)
from .errors import RewardCallError, RewardServiceError, RewardServiceUnavailable
from .retry import OutageNotices, RetryPolicy

if TYPE_CHECKING:
    from .stream import GroupStream

_log = logging.getLogger("rewards_client")


class RewardClient:
    """Blocking, thread-safe client of the reward service with deadlines and retries.

    `address`/`api_key`/`tls_ca` default to $REWARD_SERVER_ADDRESS / $REWARD_API_KEY /
    $REWARD_TLS_CA when None ("" turns the key / TLS off). Retries: `max_retries`,
    `backoff_s`, `max_backoff_s`, `outage_timeout_s` (RetryPolicy). `rpc_timeout_s`: each
    unary call's deadline; `stream_timeout_s`: a step stream's. `outages` (OutageNotices)
    reports unreachable periods through `log` (default: the `rewards_client` logger), a
    "still waiting" line every `outage_notice_every_s`.

    Messages returned as they are (pb.Run, pb.StoredSpec, ...) are rewards.v1 messages;
    scores come back as SampleScore.
    """

    def __init__(self, address: str | None = None, *, api_key: str | None = None,
                 tls_ca: str | Path | None = None, rpc_timeout_s: float = 30.0,
                 stream_timeout_s: float = 300.0, max_retries: int = 3, backoff_s: float = 0.25,
                 max_backoff_s: float = 5.0, outage_timeout_s: float = 0.0,
                 max_quota_retries: int | None = None,
                 log: Callable[[str], None] | None = None, outage_notice_every_s: float = 30.0):
        self.address = resolve_address(address)
        self.api_key = resolve_api_key(api_key)
        self.tls_ca = resolve_tls_ca(tls_ca)
        self.rpc_timeout_s = rpc_timeout_s
        self.stream_timeout_s = stream_timeout_s
        self.policy = RetryPolicy(max_retries=max_retries, backoff_s=backoff_s,
                                  max_backoff_s=max_backoff_s, outage_timeout_s=outage_timeout_s,
                                  max_quota_retries=max_quota_retries)
        self.outages = OutageNotices(self.address, log, outage_notice_every_s)
        self.channel = make_channel(self.address, self.tls_ca, api_key=self.api_key,
                                    options=channel_options(max_backoff_s))
        self.stub = pb_grpc.RewardServiceStub(self.channel)
        self.retries = 0                  # retried attempts, all calls together
        self.scores_returned = 0          # SampleResults received, all RPCs together
        self.components_returned = 0      # ComponentResults received
        self._count_lock = threading.Lock()

    # --- retry settings (the RetryPolicy's, readable and settable here) ------------------
    max_retries = property(lambda self: self.policy.max_retries,
                           lambda self, v: setattr(self.policy, "max_retries", v))
    backoff_s = property(lambda self: self.policy.backoff_s,
                         lambda self, v: setattr(self.policy, "backoff_s", v))
    max_backoff_s = property(lambda self: self.policy.max_backoff_s,
                             lambda self, v: setattr(self.policy, "max_backoff_s", v))
    outage_timeout_s = property(lambda self: self.policy.outage_timeout_s,
                                lambda self, v: setattr(self.policy, "outage_timeout_s", v))

    def backoff(self, attempt: int) -> float:
        return self.policy.backoff(attempt)

    def may_retry(self, attempt: int, first_failure: float, deadline: float = float("inf")) -> bool:
        return self.policy.may_retry(attempt, first_failure, deadline)

    def give_up_at(self, first_failure: float, deadline: float = float("inf")) -> float:
        return self.policy.give_up_at(first_failure, deadline)

    # --- lifecycle --------------------------------------------------------------------
    def wait_ready(self, timeout_s: float = 15.0) -> None:
        """Block until the channel connects and health says SERVING, else raise
        RewardServiceUnavailable with the address and what was seen."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise RewardServiceUnavailable(
                f"reward service at {self.address} is unreachable (no connection within "
                f"{timeout_s:.0f} s); start it with `reward-server --port ...` or fix the address "
                f"(argument, config or ${ENV_ADDRESS})") from None
        health = health_pb2_grpc.HealthStub(self.channel)
        deadline = time.monotonic() + timeout_s
        status = "UNKNOWN"
        while time.monotonic() < deadline:
            try:
                resp = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                                    timeout=min(5.0, self.rpc_timeout_s))
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as e:
                status = e.code().name
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return  # no health service: the channel is up, trust it
            time.sleep(0.1)
        raise RewardServiceUnavailable(
            f"reward service at {self.address} is not SERVING (health: {status})")

    def close(self) -> None:
        self.channel.close()

    def __repr__(self) -> str:   # never the key itself
        return (f"{type(self).__name__}(address={self.address!r}, tls_ca={self.tls_ca!r}, "
                f"api_key={'set' if self.api_key else None})")

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------
    def call(self, method: str, request: Any, *, timeout_s: float | None = None) -> Any:
        """One unary RPC by name ("Score", "StartRun", ...) with deadline and the retry
        policy; returns the response message. Raises RewardServiceUnavailable /
        RewardCallError."""
        rpc = getattr(self.stub, method)
        timeout = self.rpc_timeout_s if timeout_s is None else timeout_s
        step = getattr(request, "step", 0)
        what = f"{method} (step {step})" if step else method
        attempt, first_failure, t0 = 0, 0.0, time.monotonic()
        while True:
            try:
                out = rpc(request, timeout=timeout)
                self.outages.recovered(what)
                return out
            except grpc.RpcError as e:
                wait = self._retry_wait(e, what, attempt, first_failure)
                if wait is None:
                    raise self.error(method, e, attempt, time.monotonic() - t0) from None
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    first_failure = first_failure or time.monotonic()
                self._sleep(wait, attempt)
                attempt += 1

    def _retry_wait(self, e: grpc.RpcError, what: str, attempt: int, first_failure: float,
                    deadline: float = float("inf")) -> float | None:
        """The wait before retrying `e`, or None: raise it (saying so on the outage log)."""
        code = e.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            first_failure = first_failure or time.monotonic()
            if self.policy.may_retry(attempt, first_failure, deadline):
                self.outages.failed(what, self.policy.give_up_at(first_failure, deadline))
                return self.policy.sleep_s(attempt)
            self.outages.gave_up(what)
            return None
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            wait = self.policy.quota_wait_s(attempt, e)
            if wait is not None:
                _log.warning("reward service %s: %s RESOURCE_EXHAUSTED (%s); retry %d/%d in %.2f s",
                             self.address, what, e.details(), attempt + 1, self.policy.max_retries, wait)
            return wait
        return None

    def _sleep(self, wait: float, attempt: int) -> None:
        with self._count_lock:
            self.retries += 1
        time.sleep(wait)

    def error(self, method: str, e: grpc.RpcError, attempt: int = 0,
              elapsed: float = 0.0) -> RewardServiceError:
        """The typed error for a failed RPC after `attempt` retries over `elapsed` s."""
        code, details = e.code(), e.details() or ""
        tries = f"after {attempt + 1} attempt{'s' if attempt else ''} over {elapsed:.1f} s"
        if code == grpc.StatusCode.UNAVAILABLE:
            return RewardServiceUnavailable(
                f"reward service at {self.address} is unreachable {tries} (unavailable after "
                f"{attempt} retries: {details}); is `reward-server` running there? (address: the "
                f"`address` argument or ${ENV_ADDRESS}"
                f"{'; TLS with ' + self.tls_ca if self.tls_ca else '; plaintext'})")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            msg = f"{method}: UNAUTHENTICATED: {details} (pass api_key=... or set ${ENV_API_KEY})"
        elif code == grpc.StatusCode.RESOURCE_EXHAUSTED and attempt:
            msg = f"{method}: RESOURCE_EXHAUSTED {tries}: {details}"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            msg = (f"{method}: DEADLINE_EXCEEDED: no answer from {self.address} within the deadline "
                   f"({details}; raise the client's rpc_timeout_s for slow verifiers)")
        else:
            msg = f"{method}: {code.name}: {details}"
        return RewardCallError(msg, code, details)

    def _count(self, scores: Sequence[SampleScore]) -> None:
        with self._count_lock:
            self.scores_returned += len(scores)
            self.components_returned += sum(len(s.components) for s in scores)

    # --- scoring ----------------------------------------------------------------------
    def score(self, samples: Sequence[Any], spec: Any = None, *, run_id: str = "", step: int = 0,
              timeout_s: float | None = None) -> list[SampleScore]:
        """Score a batch with one `Score` request; one SampleScore per sample, in order.

        `samples`: make_sample(...) messages or dicts (as_sample); `spec`: any build_spec()
        form (None: each sample's own). With `run_id`, the scores are stored under (run, step).
        """
        request = pb.ScoreRequest(run_id=run_id, step=integer(step, "step"), spec=build_spec(spec),
                                  samples=[as_sample(s, i) for i, s in enumerate(samples)])
        results = self.call("Score", request, timeout_s=timeout_s).results
        wrong = mismatch("Score", request.samples, results)
        if wrong:
            raise RewardCallError(wrong)
        out = [sample_score(r) for r in results]
        self._count(out)
        return out

    def dry_run(self, sample: Any, spec: Any = None) -> SampleScore:
        """Validate a spec and score one sample without storing or caching it."""
        resp = self.call("DryRun", pb.DryRunRequest(sample=as_sample(sample), spec=build_spec(spec)))
        return sample_score(resp.result)

    def open_group_stream(self, run_id: str, step: int, spec: Any) -> GroupStream:
        """One step's ScoreGroups stream (see GroupStream); `spec` in any build_spec() form."""
        from .stream import GroupStream
        return GroupStream(self, run_id, integer(step, "step"), build_spec(spec))

    def list_verifiers(self, all_versions: bool = False) -> list[pb.VerifierInfo]:
        """The verifiers the server offers (with `all_versions`, older versions kept too)."""
        return list(self.call("ListVerifiers",
                              pb.ListVerifiersRequest(all_versions=all_versions)).verifiers)

    # --- stored specs -----------------------------------------------------------------
    def put_spec(self, name: str, spec: Any, description: str = "") -> pb.StoredSpec:
        """Store `spec` (inline components/routes, any build_spec() form) under `name`; a new
        version is made when the body changed. Returns the StoredSpec (name, version)."""
        return self.call("PutSpec", pb.PutSpecRequest(name=name, spec=build_spec(spec),
                                                      description=description))

    def get_spec(self, ref: str, version: int = 0) -> pb.StoredSpec:
        """A stored spec by "name" (newest), "name@version", or name and `version`."""
        name, _, at = ref.partition("@")
        try:
            number = int(at) if at else int(version)
        except ValueError:
            raise ValueError(f"spec ref {ref!r}: the version after '@' must be an integer") from None
        return self.call("GetSpec", pb.GetSpecRequest(name=name, version=number))

    def list_specs(self) -> list[pb.StoredSpec]:
        """The newest version of each stored spec."""
        return list(self.call("ListSpecs", pb.ListSpecsRequest()).specs)

    def get_stats(self) -> pb.Stats:
        """Cache and store counts: the caller's team's, or the whole replica's (admin key)."""
        return self.call("GetStats", pb.GetStatsRequest())

    # --- runs -------------------------------------------------------------------------
    def start_run(self, name: str, config: Mapping[str, Any] | None = None, run_id: str = "",
                  replay_of: str = "", replay_of_team: str = "") -> str:
        """Start (or, for an existing `run_id` of the caller's team, resume) a run; returns
        its id. Run ids are per team. `config` is stored verbatim (JSON-able values);
        `replay_of` links a replay to the run it re-scores (of `replay_of_team`: admins)."""
        request = pb.StartRunRequest(name=name, config=to_struct(config), run_id=run_id,
                                     replay_of=replay_of, replay_of_team=replay_of_team)
        try:
            return self.call("StartRun", request).run_id
        except RewardCallError as e:
            # Several processes starting the same run_id at once: one insert wins, the others
            # fail; starting it again resumes the run the winner created.
            if run_id and e.code == grpc.StatusCode.INTERNAL:
                return self.call("StartRun", request).run_id
            raise

    def log_step(self, run_id: str, step: int, metrics: Mapping[str, float | None]) -> None:
        """Store a step's metrics (None values are left out)."""
        step = integer(step, "step")
        clean = {k: _metric(v, f"metrics.{k}") for k, v in metrics.items() if v is not None}
        self.call("LogStep", pb.LogStepRequest(run_id=run_id, step=step, metrics=clean))

    def finish_run(self, run_id: str, state: str = "finished",
                   summary: Mapping[str, float] | None = None) -> pb.Run:
        """Mark a run finished | failed, with summary metrics; returns the Run."""
        return self.call("FinishRun", pb.FinishRunRequest(
            run_id=run_id, state=state,
            summary={k: _metric(v, f"summary.{k}") for k, v in (summary or {}).items()}))

    def get_run(self, run_id: str, team: str = "") -> pb.Run:
        """The caller's run `run_id` (admins: of `team`; "" = their own team's, else the one
        team's that has it). Raises RewardCallError (NOT_FOUND; INVALID_ARGUMENT when an
        admin's id is ambiguous across teams)."""
        return self.call("GetRun", pb.GetRunRequest(run_id=run_id, team=team))

    def list_runs(self, limit: int = 0, team: str = "") -> list[pb.Run]:
        """The newest runs (limit 0 = the server's 100); `team` for admins ("*" = all)."""
        return list(self.call("ListRuns", pb.ListRunsRequest(limit=limit, team=team)).runs)

    def list_steps(self, run_id: str, team: str = "") -> list[pb.StepRecord]:
        """Every logged step of the run, by step (the server answers a page at a time)."""
        steps: list[pb.StepRecord] = []
        token = ""
        while True:
            page = self.call("ListSteps", pb.ListStepsRequest(run_id=run_id, team=team, page_token=token))
            steps.extend(page.steps)
            token = page.next_page_token
            if not token:
                return steps

    # --- history ----------------------------------------------------------------------
    def query_scores(self, run_id: str = "", **filters: Any) -> list[pb.ScoreRecord]:
        """Every stored score record that matches, as a list (iter_scores' filters and errors)."""
        return list(self.iter_scores(run_id, **filters))

    def iter_scores(self, run_id: str = "", *, step_min: int | None = None, step_max: int | None = None,
                     verifier: str = "", status: str | int | None = None, limit: int = 0,
                     created_after: str = "", created_before: str = "", reward_min: float | None = None,
                     reward_max: float | None = None, include_texts: bool = False, team: str = "",
                     timeout_s: float | None = None) -> Iterator[pb.ScoreRecord]:
        """Stored score records (one per component) as they stream in.

        Filters as QueryScoresRequest (status by name, e.g. "OK"; times RFC 3339). The whole
        stream has one deadline (`timeout_s`, default rpc_timeout_s; 0 = none). UNAVAILABLE
        before the first record is retried by the policy; a failure after records came is
        raised (RewardServiceUnavailable / RewardCallError), never a silently short list.
        """
        request = pb.QueryScoresRequest(
            run_id=run_id, verifier=verifier, limit=limit, created_after=created_after,
            created_before=created_before, include_texts=include_texts, team=team,
            status=status_value(status) if status is not None else pb.STATUS_UNSPECIFIED)
        for key, v in (("step_min", step_min), ("step_max", step_max)):
            if v is not None:
                setattr(request, key, integer(v, key))
        for key, v in (("reward_min", reward_min), ("reward_max", reward_max)):
            if v is not None:
                setattr(request, key, _metric(v, key))
        timeout = self.rpc_timeout_s if timeout_s is None else (timeout_s or None)
        return self._stream_records(request, timeout)

    def _stream_records(self, request: pb.QueryScoresRequest, timeout: float | None) -> Iterator[pb.ScoreRecord]:
        attempt, first_failure, t0 = 0, 0.0, time.monotonic()
        while True:
            got = 0
            try:
                for record in self.stub.QueryScores(request, timeout=timeout):
                    got += 1
                    yield record
                self.outages.recovered("QueryScores")
                return
            except grpc.RpcError as e:
                wait = None if got else self._retry_wait(e, "QueryScores", attempt, first_failure)
                if wait is None:
                    raise self.error("QueryScores", e, attempt, time.monotonic() - t0) from None
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    first_failure = first_failure or time.monotonic()
                self._sleep(wait, attempt)
                attempt += 1

    def get_score(self, score_id: int) -> pb.ScoreRecord:
        """One stored score with its full provenance (texts while retained)."""
        return self.call("GetScore", pb.GetScoreRequest(score_id=integer(score_id, "score_id")))



def _metric(v: Any, where: str) -> float:
    """A metric as a float (NaN kept: a diverged loss is worth recording; a bool as 0/1);
    ValueError naming `where` for what is not a number ("0.5" included)."""
    if isinstance(v, (str, bytes)):
        raise ValueError(f"{where}: a number, got {type(v).__name__} {v!r}")
    try:
        return float(v)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: a number, got {type(v).__name__}") from None
