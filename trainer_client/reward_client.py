"""A small typed client of the reward service (rewards.v1). Speaks only the proto.

    client = RewardClient("127.0.0.1:50051")
    client.wait_ready()                                  # RewardServiceUnavailable if not
    run_id = client.start_run("demo", config={...})
    stream = client.open_group_stream(run_id, step=1, spec=spec)
    stream.submit("1-0", samples)                        # as soon as a group is sampled
    results = stream.collect()                           # {group_id: [SampleScore, ...]}

Exceptions::

    RewardServiceError                 any failure talking to the service
    ├── RewardServiceUnavailable       not reachable / not SERVING (at start, or after retries)
    └── RewardCallError                an RPC failed for another reason (bad spec, deadline, ...)

Every unary RPC carries a deadline (`rpc_timeout_s`), a step's stream carries one
(`stream_timeout_s`), and UNAVAILABLE is retried with exponential back-off (capped at
`max_backoff_s`) at least `max_retries` times and, with `outage_timeout_s` > 0, for that
long after the first failure (a stream: until its own deadline at the latest), so a
restarted service is picked up again; a retried stream re-sends only the groups whose
results had not come back, and a group's result that arrives twice is counted once.
A group the service refuses with UNAVAILABLE (its outage signal: e.g. the score store is
down and nothing was recorded) is kept and re-sent after the same back-off, within the
same outage window, instead of failing the step at once; any other refusal (a bad
field, an unknown run: INVALID_ARGUMENT, NOT_FOUND, ...) fails the step, since a retry
would be refused again.

While the service is unreachable the client says so through `outages.log` (the trainer
points it at its console; default: this module's logger): once when an outage starts,
"still waiting" every `outage_notice_every_s`, and once when the service answers again
("reward service back after 12.3 s; resuming step 5") or the client gives up (OutageNotices).

`tls_ca` (a PEM CA file) makes the channel TLS; the API key travels as call metadata
(`authorization: Bearer <key>`) either way (rlvr_integrations.client.make_channel).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rlvr_integrations.client import make_channel
from rewards.v1 import rewards_pb2, rewards_pb2_grpc

SERVICE_NAME = "rewards.v1.RewardService"
_log = logging.getLogger(__name__)


class RewardServiceError(RuntimeError):
    """Base of every error raised by this client."""


class RewardServiceUnavailable(RewardServiceError):
    """The service cannot be reached, or does not report SERVING."""


class RewardCallError(RewardServiceError):
    """An RPC failed with a status other than UNAVAILABLE (or a stream lost results)."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ComponentScore:
    name: str
    status: str                 # "OK" | "ABSTAIN" | "TIMEOUT" | "ERROR" | "UNSPECIFIED"
    reward: float | None        # set only when status == "OK"
    reason: str = ""


@dataclass(frozen=True)
class SampleScore:
    """One completion's score: the weighted reward (only when OK) and its components."""

    status: str
    reward: float | None
    reason: str = ""
    components: tuple[ComponentScore, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def component(self, name: str) -> ComponentScore | None:
        return next((c for c in self.components if c.name == name), None)


def _status_name(value: int) -> str:
    return rewards_pb2.Status.Name(value).removeprefix("STATUS_")


def sample_score_from_proto(r: rewards_pb2.SampleResult) -> SampleScore:
    comps = tuple(ComponentScore(c.name, _status_name(c.status),
                                 c.reward if c.HasField("reward") else None, c.reason)
                  for c in r.components)
    return SampleScore(_status_name(r.status), r.reward if r.HasField("reward") else None,
                       r.reason, comps)


def _refs(components: Iterable[Any]) -> list[rewards_pb2.VerifierRef]:
    refs = []
    for c in components:
        params = struct_pb2.Struct()
        params.update(dict(c.params or {}))
        refs.append(rewards_pb2.VerifierRef(name=c.name, weight=float(c.weight), weight_set=True,
                                            params=params))
    return refs


def make_spec(components: Iterable[Any],
              routes: dict[str, Iterable[Any]] | None = None) -> rewards_pb2.RewardSpec:
    """RewardSpec from objects with .name, .weight, .params (e.g. config.RewardComponent):
    `components` apply to every sample, `routes` (task -> components) to the samples whose
    metadata.task is that task ("*" = any other task)."""
    return rewards_pb2.RewardSpec(
        components=_refs(components),
        routes={task: rewards_pb2.ComponentList(components=_refs(cs))
                for task, cs in (routes or {}).items()})


def make_sample(sample_id: str, prompt: str, completion: str, reference: Any,
                metadata: dict[str, Any] | None = None) -> rewards_pb2.Sample:
    ref = struct_pb2.Value()
    if isinstance(reference, str):
        ref.string_value = reference
    else:  # objects (tests, rubrics) go as a Struct/ListValue
        holder = struct_pb2.Struct()
        holder.update({"v": reference})
        ref.CopyFrom(holder.fields["v"])
    md = struct_pb2.Struct()
    md.update(metadata or {})
    return rewards_pb2.Sample(id=sample_id, prompt=prompt, completion=completion,
                              reference=ref, metadata=md)


class OutageNotices:
    """The few lines said about one outage, whichever calls retry through it.

    failed() on every UNAVAILABLE that will be retried: the first of an outage says what
    was interrupted and how long the client will keep trying; later ones are silent but
    for a "still waiting" line every `every_s`. recovered() on the next answer: how long
    the service was away and what resumes. gave_up() when the retries are spent.
    Thread-safe (a step's stream retries on its own thread); `log` takes one line.
    """

    def __init__(self, address: str, log: Callable[[str], None] | None = None,
                 every_s: float = 30.0):
        self.address, self.every_s = address, every_s
        self.log: Callable[[str], None] = log or _log.warning
        self._lock = threading.Lock()
        self._since: float | None = None      # time.monotonic() of the outage's first failure
        self._last_notice = 0.0

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    def failed(self, what: str, give_up_at: float, why: str = "unreachable") -> None:
        """`what` was interrupted ("step 5", "LogStep (step 5)"); retries end by `give_up_at`;
        `why` says how ("unreachable", or the service's own outage signal)."""
        now = time.monotonic()
        with self._lock:
            if self._since is None:
                self._since = self._last_notice = now
                line = (f"reward service at {self.address} {why} during {what}; waiting "
                        f"for it (gives up after {max(give_up_at - now, 0.0):.0f} s)")
            elif now - self._last_notice >= self.every_s:
                self._last_notice = now
                line = (f"still waiting for the reward service at {self.address} "
                        f"({now - self._since:.0f} s so far, gives up in "
                        f"{max(give_up_at - now, 0.0):.0f} s)")
            else:
                return
        self.log(line)

    def recovered(self, what: str) -> None:
        with self._lock:
            if self._since is None:
                return
            away, self._since = time.monotonic() - self._since, None
        self.log(f"reward service back after {away:.1f} s; resuming {what}")

    def gave_up(self, what: str) -> None:
        with self._lock:
            if self._since is None:
                return
            away, self._since = time.monotonic() - self._since, None
        self.log(f"reward service at {self.address} still unreachable after {away:.0f} s; "
                 f"giving up on {what}")


def _rpc_name(method: Any) -> str:
    name = getattr(method, "_method", None)
    if isinstance(name, bytes):
        name = name.decode()
    return str(name or method).rsplit("/", 1)[-1]


class RewardClient:
    """Typed wrapper around `RewardServiceStub` with deadlines and retries.

    `outages` (OutageNotices) reports unreachable periods through `log` (default: this
    module's logger; `outage_notice_every_s` between "still waiting" lines).
    """

    def __init__(self, address: str, *, api_key: str | None = None, rpc_timeout_s: float = 30.0,
                 stream_timeout_s: float = 300.0, max_retries: int = 3,
                 backoff_s: float = 0.25, outage_timeout_s: float = 0.0,
                 max_backoff_s: float = 5.0, tls_ca: str | Path | None = None,
                 log: Callable[[str], None] | None = None, outage_notice_every_s: float = 30.0):
        self.address = address
        self.outages = OutageNotices(address, log, outage_notice_every_s)
        self.rpc_timeout_s = rpc_timeout_s
        self.stream_timeout_s = stream_timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.outage_timeout_s = outage_timeout_s
        self.max_backoff_s = max_backoff_s
        options = [("grpc.max_receive_message_length", 64 << 20),
                   ("grpc.max_send_message_length", 64 << 20),
                   # reconnect soon after a restarted service comes back (default: up to 120 s)
                   ("grpc.initial_reconnect_backoff_ms", 200),
                   ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", int(max_backoff_s * 1000))]
        self.channel = make_channel(address, tls_ca, api_key=api_key, options=options)
        self.stub = rewards_pb2_grpc.RewardServiceStub(self.channel)
        self.scores_returned = 0          # SampleResults received, all RPCs together
        self.components_returned = 0      # ComponentResults received
        self._count_lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------
    def wait_ready(self, timeout_s: float = 15.0) -> None:
        """Block until the channel connects and health says SERVING, else raise.

        Raises RewardServiceUnavailable with the address and what was seen.
        """
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise RewardServiceUnavailable(
                f"reward service at {self.address} is unreachable (no connection within "
                f"{timeout_s:.0f} s); start it with `reward-server --port ...` or fix "
                f"reward.address") from None
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

    def __enter__(self) -> "RewardClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- retry policy -----------------------------------------------------------------
    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (0-based): exponential, capped."""
        return min(self.backoff_s * 2 ** attempt, self.max_backoff_s)

    def may_retry(self, attempt: int, first_failure: float, deadline: float = float("inf")) -> bool:
        """Retry UNAVAILABLE? At least max_retries times, then while the outage is shorter
        than outage_timeout_s; never past `deadline` (time.monotonic())."""
        now = time.monotonic()
        if now + self.backoff(attempt) >= deadline:
            return False
        return attempt < self.max_retries or now - first_failure < self.outage_timeout_s

    def give_up_at(self, first_failure: float, deadline: float = float("inf")) -> float:
        """About when (time.monotonic()) retries from `first_failure` end: after the
        outage window or the max_retries back-offs, whichever is longer; by `deadline`."""
        retries_s = sum(self.backoff(i) for i in range(self.max_retries))
        return min(deadline, first_failure + max(self.outage_timeout_s, retries_s))

    # --- unary RPCs -------------------------------------------------------------------
    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        """One unary RPC with deadline; retry UNAVAILABLE with exponential back-off."""
        attempt, first_failure = 0, 0.0
        step = getattr(request, "step", 0)
        what = f"{_rpc_name(method)} (step {step})" if step else _rpc_name(method)
        while True:
            try:
                out = method(request, timeout=self.rpc_timeout_s)
                self.outages.recovered(what)
                return out
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    first_failure = first_failure or time.monotonic()
                    if self.may_retry(attempt, first_failure):
                        self.outages.failed(what, self.give_up_at(first_failure))
                        time.sleep(self.backoff(attempt))
                        attempt += 1
                        continue
                    self.outages.gave_up(what)
                    raise RewardServiceUnavailable(
                        f"reward service at {self.address} unavailable after {attempt} retries "
                        f"({time.monotonic() - first_failure:.0f} s): {e.details()}") from None
                raise RewardCallError(f"{_rpc_name(method)}: {e.code().name}: {e.details()}", e.code()) from None

    def start_run(self, name: str, config: dict[str, Any] | None = None,
                  run_id: str = "") -> str:
        cfg = struct_pb2.Struct()
        cfg.update(config or {})
        run = self._call(self.stub.StartRun,
                         rewards_pb2.StartRunRequest(name=name, config=cfg, run_id=run_id))
        return run.run_id

    def log_step(self, run_id: str, step: int, metrics: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None}
        self._call(self.stub.LogStep,
                   rewards_pb2.LogStepRequest(run_id=run_id, step=step, metrics=clean))

    def finish_run(self, run_id: str, state: str = "finished",
                   summary: dict[str, float] | None = None) -> rewards_pb2.Run:
        return self._call(self.stub.FinishRun, rewards_pb2.FinishRunRequest(
            run_id=run_id, state=state, summary={k: float(v) for k, v in (summary or {}).items()}))

    def get_spec(self, ref: str) -> rewards_pb2.StoredSpec:
        """A stored reward spec by "name" (newest) or "name@version"."""
        name, _, version = ref.partition("@")
        return self._call(self.stub.GetSpec, rewards_pb2.GetSpecRequest(name=name, version=int(version or 0)))

    def list_runs(self, limit: int = 0) -> list[rewards_pb2.Run]:
        return list(self._call(self.stub.ListRuns, rewards_pb2.ListRunsRequest(limit=limit)).runs)

    def query_scores(self, run_id: str, **filters: Any) -> list[rewards_pb2.ScoreRecord]:
        """Every stored score record of `run_id` (QueryScores is server-streaming)."""
        req = rewards_pb2.QueryScoresRequest(run_id=run_id, **filters)
        try:
            return list(self.stub.QueryScores(req, timeout=self.rpc_timeout_s))
        except grpc.RpcError as e:
            raise RewardCallError(f"QueryScores: {e.code().name}: {e.details()}", e.code()) from None

    def score(self, samples: list[rewards_pb2.Sample], spec: rewards_pb2.RewardSpec, *,
              run_id: str = "", step: int = 0) -> list[SampleScore]:
        """Score a batch with the unary `Score` RPC; results in request order."""
        resp = self._call(self.stub.Score, rewards_pb2.ScoreRequest(
            run_id=run_id, step=step, samples=samples, spec=spec))
        out = [sample_score_from_proto(r) for r in resp.results]
        self._count(out)
        return out

    def _count(self, scores: list[SampleScore]) -> None:
        with self._count_lock:
            self.scores_returned += len(scores)
            self.components_returned += sum(len(s.components) for s in scores)

    # --- the trainer's stream -----------------------------------------------------------
    def open_group_stream(self, run_id: str, step: int,
                          spec: rewards_pb2.RewardSpec) -> "GroupStream":
        return GroupStream(self, run_id, step, spec)


_CLOSE = object()


class GroupStream:
    """One step's `ScoreGroups` bidi stream: submit groups as they are sampled, results
    are consumed by a background thread as the service returns them (in any order).
    """

    def __init__(self, client: RewardClient, run_id: str, step: int,
                 spec: rewards_pb2.RewardSpec):
        self._client, self._run_id, self._step, self._spec = client, run_id, step, spec
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._pending: dict[str, rewards_pb2.GroupRequest] = {}   # sent, no result yet
        self._results: dict[str, list[SampleScore]] = {}
        self._arrival: list[str] = []                              # group ids, arrival order
        self._refused: dict[str, rewards_pb2.GroupError] = {}      # groups the service refused
        self._unavailable: dict[str, rewards_pb2.GroupError] = {}  # refused UNAVAILABLE: re-send
        self._closed = False
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._deadline = time.monotonic() + client.stream_timeout_s
        self._thread = threading.Thread(target=self._consume, name=f"score-stream-{step}",
                                        daemon=True)
        self._thread.start()

    def submit(self, group_id: str, samples: list[rewards_pb2.Sample]) -> None:
        """Send one group now (non-blocking)."""
        req = rewards_pb2.GroupRequest(run_id=self._run_id, step=self._step, group_id=group_id,
                                       samples=samples, spec=self._spec)
        with self._lock:
            if self._closed:
                raise RewardServiceError("submit() after collect()")
            self._pending[group_id] = req
            self._queue.put(req)

    def collect(self) -> dict[str, list[SampleScore]]:
        """Close the request side and wait for every group's results.

        Raises RewardServiceUnavailable / RewardCallError if the stream failed or the
        service refused a group (the error names it, with the service's code and message).
        """
        with self._lock:
            self._closed = True
            self._queue.put(_CLOSE)
        self._thread.join(timeout=max(0.0, self._deadline - time.monotonic()) + 5.0)
        if self._error is not None:
            raise self._error
        if self._refused:
            gid, err = next(iter(self._refused.items()))
            code = getattr(grpc.StatusCode, err.code, None)
            cls = RewardServiceUnavailable if code == grpc.StatusCode.UNAVAILABLE else RewardCallError
            msg = (f"ScoreGroups: {len(self._refused)} group(s) refused, e.g. {gid}: {err.code}: "
                   f"{err.message}")
            raise cls(msg) if cls is RewardServiceUnavailable else RewardCallError(msg, code)
        if self._pending:
            raise RewardCallError(f"ScoreGroups ended without results for groups "
                                  f"{sorted(self._pending)[:5]}... ({len(self._pending)})")
        return dict(self._results)

    @property
    def arrival_order(self) -> list[str]:
        return list(self._arrival)

    def _requests(self, q: queue.Queue) -> Iterator[rewards_pb2.GroupRequest]:
        while True:
            item = q.get()
            if item is _CLOSE:
                return
            yield item

    def _consume(self) -> None:
        c = self._client
        attempt, first_failure = 0, 0.0
        q = self._queue
        what = f"step {self._step}"
        while True:
            remaining = self._deadline - time.monotonic()
            try:
                call = c.stub.ScoreGroups(self._requests(q), timeout=max(remaining, 0.001))
                for res in call:
                    if res.HasField("error"):  # this group alone was refused
                        with self._lock:
                            if res.error.code == "UNAVAILABLE" and res.group_id in self._pending:
                                # the service's outage signal: keep it, re-send after back-off
                                self._unavailable[res.group_id] = res.error
                                continue
                            self._pending.pop(res.group_id, None)
                            self._refused[res.group_id] = res.error
                        c.outages.recovered(what)   # a refusal is an answer: it is up
                        continue
                    c.outages.recovered(what)       # an answer: the service is back
                    scores = [sample_score_from_proto(r) for r in res.results]
                    with self._lock:
                        if res.group_id in self._results:   # a re-sent group answered twice
                            continue
                        c._count(scores)
                        self._pending.pop(res.group_id, None)
                        self._results[res.group_id] = scores
                        self._arrival.append(res.group_id)
                        self._unavailable.pop(res.group_id, None)
                with self._lock:
                    refused = dict(self._unavailable)
                if refused:   # groups refused as UNAVAILABLE: wait out the outage, re-send them
                    first_failure = first_failure or time.monotonic()
                    gid, err = next(iter(refused.items()))
                    if not c.may_retry(attempt, first_failure, self._deadline):
                        c.outages.gave_up(what)
                        self._error = RewardServiceUnavailable(
                            f"ScoreGroups (step {self._step}): the reward service at {c.address} "
                            f"kept refusing {len(refused)} group(s) as UNAVAILABLE for "
                            f"{time.monotonic() - first_failure:.0f} s ({attempt} retries), "
                            f"e.g. {gid}: {err.message}")
                        return
                    c.outages.failed(what, c.give_up_at(first_failure, self._deadline),
                                     f"unavailable ({len(refused)} group(s) refused: "
                                     f"{err.message[:200]})")
                    time.sleep(c.backoff(attempt))
                    attempt += 1
                    with self._lock:
                        self._unavailable.clear()
                        q = queue.Queue()
                        for req in self._pending.values():
                            q.put(req)
                        if self._closed:
                            q.put(_CLOSE)
                        self._queue = q
                    continue
                c.outages.recovered(what)
                return
            except grpc.RpcError as e:
                code = e.code()
                if code == grpc.StatusCode.UNAVAILABLE:
                    first_failure = first_failure or time.monotonic()
                if code == grpc.StatusCode.UNAVAILABLE and c.may_retry(attempt, first_failure,
                                                                        self._deadline):
                    c.outages.failed(what, c.give_up_at(first_failure, self._deadline))
                    time.sleep(c.backoff(attempt))
                    attempt += 1
                    with self._lock:  # new queue: re-send what has no result yet
                        q.put(_CLOSE)     # ends the failed call's request iterator
                        q = queue.Queue()
                        for req in self._pending.values():
                            q.put(req)
                        if self._closed:
                            q.put(_CLOSE)
                        self._queue = q
                    continue
                if code == grpc.StatusCode.UNAVAILABLE:
                    c.outages.gave_up(what)
                    self._error = RewardServiceUnavailable(
                        f"ScoreGroups (step {self._step}): reward service at {c.address} "
                        f"unavailable after {attempt} retries over "
                        f"{time.monotonic() - first_failure:.0f} s; {len(self._pending)} "
                        f"group(s) unscored: {e.details()}")
                else:
                    self._error = RewardCallError(f"ScoreGroups: {code.name}: {e.details()}", code)
                return
            except BaseException as e:  # noqa: BLE001 - surfaced by collect()
                self._error = e
                return
