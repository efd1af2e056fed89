"""GroupStream: one training step's `ScoreGroups` bidi stream (the trainer's path).

    stream = client.open_group_stream(run_id, step=1, spec=spec)
    stream.submit("1-0", samples)          # as soon as a group is sampled (non-blocking)
    results = stream.collect()             # {group_id: [SampleScore, ...]}

The stream carries one deadline (the client's `stream_timeout_s`). UNAVAILABLE is
retried by the client's RetryPolicy (within the outage window, by the deadline at the
latest); a retried stream re-sends only the groups whose results had not come back, and a
group's result that arrives twice is counted once. A group the service refuses with
UNAVAILABLE (its outage signal: e.g. the score store is down and nothing was recorded) is
kept and re-sent after the same back-off, within the same outage window, instead of
failing the step at once; any other refusal (a bad field, an unknown run:
INVALID_ARGUMENT, NOT_FOUND, ...) fails the step, since a retry would be refused again.

Results are matched to groups by group_id and to samples by position, so an answer that
does not fit (a group never submitted, a different count of results, a result whose id is
not its sample's) fails the step with RewardCallError rather than being misattributed; a
group_id submitted twice in a step is a ValueError. A deadline that runs out while an
outage is being retried is raised as RewardServiceUnavailable, like the outage itself.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator

import grpc
from rewards.v1 import rewards_pb2

from .convert import SampleScore, as_sample, mismatch, sample_score
from .errors import RewardCallError, RewardServiceError, RewardServiceUnavailable

if TYPE_CHECKING:
    from .client import RewardClient


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
        self._submitted: set[str] = set()
        self._closed = False
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._deadline = time.monotonic() + client.stream_timeout_s
        self._thread = threading.Thread(target=self._consume, name=f"score-stream-{step}",
                                        daemon=True)
        self._thread.start()

    def submit(self, group_id: str, samples: list[Any]) -> None:
        """Send one group now (non-blocking): make_sample(...) messages or dicts (as_sample).
        Raises RewardServiceError after collect(), ValueError for a bad sample or a group_id
        already submitted on this stream (its answer could not be told from the first's)."""
        req = rewards_pb2.GroupRequest(run_id=self._run_id, step=self._step, group_id=group_id,
                                       samples=[as_sample(s, i) for i, s in enumerate(samples)],
                                       spec=self._spec)
        with self._lock:
            if self._closed:
                raise RewardServiceError("submit() after collect()")
            if group_id in self._submitted:
                raise ValueError(f"group_id {group_id!r}: already submitted in step {self._step}; "
                                 f"group ids are unique within a step")
            self._submitted.add(group_id)
            self._pending[group_id] = req
            self._queue.put(req)

    def collect(self, *, strict: bool = True) -> dict[str, list[SampleScore]]:
        """Close the request side and wait for every group's results.

        Raises RewardServiceUnavailable / RewardCallError if the stream failed or (with
        `strict`, the default) the service refused a group (the error names it, with the
        service's code and message). With strict=False a refused group is only left out of
        the answer: `refused` says which and why (a caller that scores stored history, e.g.
        `rewardctl replay`, skips that group and keeps the others).
        """
        with self._lock:
            self._closed = True
            self._queue.put(_CLOSE)
        self._thread.join(timeout=max(0.0, self._deadline - time.monotonic()) + 5.0)
        if self._error is not None:
            raise self._error
        if self._refused and strict:
            gid, err = next(iter(self._refused.items()))
            code = getattr(grpc.StatusCode, err.code, None)
            cls = RewardServiceUnavailable if code == grpc.StatusCode.UNAVAILABLE else RewardCallError
            msg = (f"ScoreGroups: {len(self._refused)} group(s) refused, e.g. {gid}: {err.code}: "
                   f"{err.message}")
            raise cls(msg) if cls is RewardServiceUnavailable else RewardCallError(msg, code, err.message)
        if self._pending:
            raise RewardCallError(f"ScoreGroups ended without results for groups "
                                  f"{sorted(self._pending)[:5]}... ({len(self._pending)})")
        return dict(self._results)

    @property
    def refused(self) -> dict[str, tuple[str, str]]:
        """The groups the service refused: group_id -> (gRPC status name, message)."""
        with self._lock:
            return {gid: (err.code, err.message) for gid, err in self._refused.items()}

    @property
    def arrival_order(self) -> list[str]:
        return list(self._arrival)

    def _requests(self, q: queue.Queue) -> Iterator[rewards_pb2.GroupRequest]:
        while True:
            item = q.get()
            if item is _CLOSE:
                return
            yield item

    def _resend_queue(self) -> queue.Queue:
        """A new request queue holding every group without a result yet (and the close mark
        when the caller has closed), installed as the stream's queue. Call holding _lock."""
        q: queue.Queue = queue.Queue()
        for req in self._pending.values():
            q.put(req)
        if self._closed:
            q.put(_CLOSE)
        self._queue = q
        return q

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
                    scores = [sample_score(r) for r in res.results]
                    with self._lock:
                        if res.group_id in self._results:   # a re-sent group answered twice
                            continue
                        sent = self._pending.get(res.group_id)
                        wrong = (f"results for group {res.group_id!r}, which was not submitted"
                                 if sent is None else
                                 mismatch(f"group {res.group_id!r}", sent.samples, res.results))
                        if wrong:   # a broken server: fail the step rather than misattribute
                            self._error = RewardCallError(f"ScoreGroups (step {self._step}): {wrong}")
                            call.cancel()
                            return
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
                    if not c.policy.may_retry(attempt, first_failure, self._deadline):
                        c.outages.gave_up(what)
                        self._error = RewardServiceUnavailable(
                            f"ScoreGroups (step {self._step}): the reward service at {c.address} "
                            f"kept refusing {len(refused)} group(s) as UNAVAILABLE for "
                            f"{time.monotonic() - first_failure:.0f} s ({attempt} retries), "
                            f"e.g. {gid}: {err.message}")
                        return
                    c.outages.failed(what, c.policy.give_up_at(first_failure, self._deadline),
                                     f"unavailable ({len(refused)} group(s) refused: "
                                     f"{err.message[:200]})")
                    time.sleep(c.policy.sleep_s(attempt))
                    attempt += 1
                    with self._lock:
                        self._unavailable.clear()
                        q = self._resend_queue()
                    continue
                c.outages.recovered(what)
                return
            except grpc.RpcError as e:
                code = e.code()
                if code == grpc.StatusCode.UNAVAILABLE:
                    first_failure = first_failure or time.monotonic()
                if code == grpc.StatusCode.UNAVAILABLE and c.policy.may_retry(attempt, first_failure,
                                                                        self._deadline):
                    c.outages.failed(what, c.policy.give_up_at(first_failure, self._deadline))
                    time.sleep(c.policy.sleep_s(attempt))
                    attempt += 1
                    with self._lock:
                        q.put(_CLOSE)     # ends the failed call's request iterator
                        q = self._resend_queue()
                    continue
                if code == grpc.StatusCode.UNAVAILABLE or (code == grpc.StatusCode.DEADLINE_EXCEEDED
                                                           and first_failure):
                    # the deadline ran out while retrying an outage: still the outage's error
                    c.outages.gave_up(what)
                    self._error = RewardServiceUnavailable(
                        f"ScoreGroups (step {self._step}): reward service at {c.address} "
                        f"unavailable after {attempt} retries over "
                        f"{time.monotonic() - first_failure:.0f} s; {len(self._pending)} "
                        f"group(s) unscored: {e.details()}")
                else:
                    self._error = RewardCallError(f"ScoreGroups: {code.name}: {e.details()}", code, e.details())
                return
            except BaseException as e:  # noqa: BLE001 - surfaced by collect()
                self._error = e
                return
