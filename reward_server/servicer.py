"""The gRPC servicer: thin. Convert the message, call the scorer or the store, convert back.

Errors are mapped to status codes in one place (`errors.status_code_for`) by `_rpc`.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import re
import time
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from verifiers import registry

from . import convert
from .config import ServerConfig
from .auth import Authenticator, Principal, require_admin, team_scope
from .errors import InvalidRequestError, QuotaExceededError, TooLargeError, status_code_for
from .metrics import NO_METRICS, NoMetrics, ServiceMetrics
from .quotas import QuotaManager
from .scoring import Scorer, SampleInput
from .store import ScoreStore

log = logging.getLogger(__name__)
SPEC_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code = status_code_for(exc)
    if isinstance(exc, QuotaExceededError):
        context.set_trailing_metadata((("retry-after-s", f"{exc.retry_after_s:.3f}"),))
    if code is None:
        log.exception("internal error", exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
    await context.abort(code, str(exc))


def _group_error(g: pb.GroupRequest, exc: Exception) -> pb.GroupResult | None:
    """The GroupResult that reports `exc` for this group alone, or None when `exc` must end
    the stream (authentication, internal errors)."""
    code = status_code_for(exc)
    if code is None or code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return None
    return pb.GroupResult(group_id=g.group_id, step=g.step, error=pb.GroupError(code=code.name, message=str(exc)))


def _rpc(fn: Callable) -> Callable:
    """Map request errors raised by a unary handler to their gRPC status."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if isinstance(e, grpc.aio.AbortError):
                raise
            await _abort(context, e)

    return wrapper


@dataclass
class TeamCounts:
    """One team's share of GetStats since the process started (updated on the event loop only)."""

    cache_hits: int = 0
    cache_misses: int = 0
    rows_written: int = 0
    rows_pending: int = 0

    def to_pb(self, team: str, replica: str) -> pb.Stats:
        lookups = self.cache_hits + self.cache_misses
        return pb.Stats(cache_hits=self.cache_hits, cache_misses=self.cache_misses,
                        cache_hit_rate=self.cache_hits / lookups if lookups else 0.0,
                        score_rows_written=self.rows_written, score_rows_pending=self.rows_pending, team=team,
                        replica=replica)


class RewardServicer(pb_grpc.RewardServiceServicer):
    metrics: ServiceMetrics | NoMetrics = NO_METRICS  # set by the app when metrics_port is on

    def __init__(self, config: ServerConfig, scorer: Scorer, store: ScoreStore, auth: Authenticator,
                 quotas: QuotaManager):
        self.config, self.scorer, self.store, self.auth, self.quotas = config, scorer, store, auth, quotas
        self._known_runs: set[tuple[str, str]] = set()  # (team, run_id)
        # Stored spec versions are immutable, so they are cached for good; "newest"
        # lookups are cached briefly so a PutSpec elsewhere is seen within NEWEST_TTL_S.
        self._spec_versions: dict[tuple[str, int], tuple[str, int, pb.RewardSpec]] = {}
        self._spec_newest: dict[str, tuple[float, int]] = {}
        self._team_counts: defaultdict[str, TeamCounts] = defaultdict(TeamCounts)

    NEWEST_TTL_S = 2.0

    # -- stored specs -------------------------------------------------------------
    def _load_spec(self, name: str, version: int) -> tuple[str, int, pb.RewardSpec]:
        """Blocking: fetch a stored spec into the caches."""
        if not version:
            hit = self._spec_newest.get(name)
            if hit and hit[0] > time.monotonic():
                version = hit[1]
        if version and (name, version) in self._spec_versions:
            return self._spec_versions[(name, version)]
        row = self.store.get_spec(name, version)
        entry = (row.name, row.version, convert.spec_from_json(row.body))
        self._spec_versions[(row.name, row.version)] = entry
        if not version:
            self._spec_newest[name] = (time.monotonic() + self.NEWEST_TTL_S, row.version)
        return entry

    async def _preload_specs(self, specs: list[pb.RewardSpec], where: str) -> None:
        for spec in specs:
            if spec.name:
                await asyncio.to_thread(self._load_spec, *convert.parse_spec_ref(spec.name, where))

    # -- helpers ------------------------------------------------------------------
    async def _who(self, context: grpc.aio.ServicerContext) -> Principal:
        return await self.auth.principal(context)

    async def _check_run(self, run_id: str, who: Principal) -> None:
        """The run exists and is the caller's team's (admins: any team's)."""
        if run_id and (who.team, run_id) not in self._known_runs:
            await asyncio.to_thread(self.store.get_run, run_id, None if who.admin else who.team)
            self._known_runs.add((who.team, run_id))

    @staticmethod
    def _usage(samples: list[SampleInput]) -> tuple[int, int]:
        """(judge requests, sandboxed components) a batch will cost."""
        pools = [c.thread_pool for s in samples for c in s.components]
        return pools.count("judge"), pools.count("sandbox")

    async def _samples(self, samples: Any, spec: pb.RewardSpec, where: str) -> list[SampleInput]:
        if len(samples) > self.config.max_samples_per_request:
            raise TooLargeError(f"{where}.samples: {len(samples)} samples, the limit is "
                                f"{self.config.max_samples_per_request} per message; split the batch")
        await self._preload_specs([spec, *(s.spec for s in samples)], where)
        return convert.samples_from_pb(samples, spec, where, self.config.timeout_s, self._load_spec)

    async def _score_and_store(self, samples: list[SampleInput], *, who: Principal, run_id: str, step: int,
                               group_id: str) -> list[pb.SampleResult]:
        outcomes = await self.scorer.score_many(samples, team=who.team)
        self.metrics.scored(outcomes, who.team, self.scorer.cache.enabled)
        request_id = convert.new_request_id()
        rows = [row for o in outcomes for row in convert.outcome_rows(
            o, run_id=run_id, step=step if run_id else None, group_id=group_id, team=who.team,
            request_id=request_id, store_texts=self.config.store_texts)]
        counts = self._team_counts[who.team]
        if self.scorer.cache.enabled:  # one cache lookup per component, as the cache counts them
            hits = sum(co.cached for o in outcomes for co in o.components)
            counts.cache_hits += hits
            counts.cache_misses += sum(len(o.components) for o in outcomes) - hits
        # Answered only once committed: a reward the client sees is never missing from the store.
        counts.rows_pending += len(rows)
        try:
            await asyncio.wrap_future(self.store.add_scores(rows))
        finally:
            counts.rows_pending -= len(rows)
        counts.rows_written += len(rows)
        sandbox_s = sum(co.latency_ms for o in outcomes for co in o.components
                        if co.component.thread_pool == "sandbox" and not co.cached) / 1000
        await self.quotas.charge_sandbox_async(who.team, sandbox_s)
        return [convert.outcome_to_pb(o) for o in outcomes]

    # -- scoring ------------------------------------------------------------------
    @_rpc
    async def Score(self, request: pb.ScoreRequest, context: grpc.aio.ServicerContext) -> pb.ScoreResponse:
        who = await self._who(context)
        samples = await self._samples(request.samples, request.spec, "request")
        await self._check_run(request.run_id, who)
        # over quota: RESOURCE_EXHAUSTED
        async with self.quotas.admit_async(who.team, len(samples), *self._usage(samples)):
            results = await self._score_and_store(samples, who=who, run_id=request.run_id, step=request.step,
                                                  group_id="")
        return pb.ScoreResponse(results=results)

    async def ScoreGroups(self, request_iterator: AsyncIterator[pb.GroupRequest],
                          context: grpc.aio.ServicerContext) -> AsyncIterator[pb.GroupResult]:
        """Groups are scored concurrently; each result is sent as soon as its group is done.

        A stream over its team's rate quota is throttled, not failed: the next group is read
        only when it fits, so the client's sends slow down through flow control. A group
        that is refused (a bad field, an unknown run or spec) or cannot be recorded comes
        back with `error` set and the stream goes on; only authentication and internal
        errors end it.
        """
        try:
            who = await self._who(context)
            stream_slot = self.quotas.stream_async(who.team)
            await stream_slot.__aenter__()
        except Exception as e:
            await _abort(context, e)
        done: asyncio.Queue = asyncio.Queue()
        tasks: set[asyncio.Task] = set()
        end = object()

        async def admit(samples: list[SampleInput]) -> Any:
            while True:
                try:
                    slot = self.quotas.admit_async(who.team, len(samples), *self._usage(samples))
                    await slot.__aenter__()
                    return slot
                except QuotaExceededError as e:
                    await asyncio.sleep(min(e.retry_after_s, 1.0))

        async def score_group(g: pb.GroupRequest, samples: list[SampleInput], slot: Any) -> pb.GroupResult:
            try:
                results = await self._score_and_store(samples, who=who, run_id=g.run_id, step=g.step,
                                                      group_id=g.group_id)
            except Exception as e:
                refused = _group_error(g, e)
                if refused is None:
                    raise
                return refused
            finally:
                await slot.__aexit__(None, None, None)
            return pb.GroupResult(group_id=g.group_id, step=g.step, results=results)

        async def read() -> None:
            try:
                async for g in request_iterator:
                    where = f"group[{g.group_id or '?'}]"
                    try:
                        if not g.group_id:
                            raise InvalidRequestError(f"{where}.group_id: required (unique within the run's step)")
                        samples = await self._samples(g.samples, g.spec, where)
                        await self._check_run(g.run_id, who)
                    except Exception as e:
                        refused = _group_error(g, e)
                        if refused is None:
                            raise
                        done.put_nowait(refused)
                        continue
                    slot = await admit(samples)
                    t = asyncio.create_task(score_group(g, samples, slot))
                    tasks.add(t)
                    t.add_done_callback(lambda t: (tasks.discard(t), done.put_nowait(t)))
                done.put_nowait(end)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                done.put_nowait(e)

        reader = asyncio.create_task(read())
        reading = True
        try:
            while reading or tasks or not done.empty():
                item = await done.get()
                if item is end:
                    reading = False
                elif isinstance(item, BaseException):
                    await _abort(context, item)
                elif isinstance(item, pb.GroupResult):  # refused before scoring
                    yield item
                else:
                    exc = item.exception()
                    if exc is not None:
                        await _abort(context, exc)
                    yield item.result()
        finally:
            reader.cancel()
            # Groups already being scored finish and are stored even if the client left:
            # their scores were computed and may have been billed to a quota.
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await stream_slot.__aexit__(None, None, None)

    @_rpc
    async def ListVerifiers(self, request: pb.ListVerifiersRequest, context: Any) -> pb.ListVerifiersResponse:
        await self._who(context)
        out = []
        for cls in registry.all_versions() if request.all_versions else registry.latest():
            ok, why = cls.available()
            schema = cls.Params.model_json_schema()
            params = [pb.ParamInfo(name=n, type=t, default_json=d, description=desc)
                      for n, t, d, desc in registry.describe_params(cls)]
            out.append(pb.VerifierInfo(name=cls.name, version=cls.version, description=cls.description,
                                       params=params, params_schema_json=convert.json.dumps(schema),
                                       available=ok, unavailable_reason=why, latest=registry.is_latest(cls)))
        return pb.ListVerifiersResponse(verifiers=out)

    @_rpc
    async def DryRun(self, request: pb.DryRunRequest, context: Any) -> pb.DryRunResponse:
        who = await self._who(context)
        (sample,) = await self._samples([request.sample], request.spec, "request")
        (outcome,) = await self.scorer.score_many([sample], use_cache=False, team=who.team)
        return pb.DryRunResponse(result=convert.outcome_to_pb(outcome))

    @_rpc
    async def PutSpec(self, request: pb.PutSpecRequest, context: Any) -> pb.StoredSpec:
        require_admin(await self._who(context), "PutSpec (stored specs are shared by every team)")
        return await self.put_spec(request)

    async def put_spec(self, request: pb.PutSpecRequest) -> pb.StoredSpec:
        """Validate and store a spec (a new version only when the body changed)."""
        if not SPEC_NAME.fullmatch(request.name):
            raise InvalidRequestError(f"name: {request.name!r} must match {SPEC_NAME.pattern} (no '@': "
                                      "versions are assigned by the server)")
        if request.spec.name:
            raise InvalidRequestError("spec.name: a stored spec holds components and routes, not another name")
        if not (request.spec.components or request.spec.routes):
            raise InvalidRequestError("spec.components: give at least one component or route")
        convert.spec_from_pb(request.spec, "spec", self.config.timeout_s)  # validate before storing
        row, _ = await asyncio.to_thread(self.store.put_spec, request.name, convert.spec_to_json(request.spec),
                                         request.description)
        self._spec_newest.pop(request.name, None)
        return convert.stored_spec_to_pb(row)

    @_rpc
    async def GetSpec(self, request: pb.GetSpecRequest, context: Any) -> pb.StoredSpec:
        await self._who(context)
        row = await asyncio.to_thread(self.store.get_spec, request.name, request.version)
        return convert.stored_spec_to_pb(row)

    @_rpc
    async def ListSpecs(self, request: pb.ListSpecsRequest, context: Any) -> pb.ListSpecsResponse:
        await self._who(context)
        rows = await asyncio.to_thread(self.store.list_specs)
        return pb.ListSpecsResponse(specs=[convert.stored_spec_to_pb(r) for r in rows])

    @_rpc
    async def GetStats(self, request: pb.GetStatsRequest, context: Any) -> pb.Stats:
        """A team key: that team's counts (its cache lookups, its rows). An admin key: every
        team's (the whole cache and the writer). Either way this replica's, named in `replica`."""
        who = await self._who(context)
        replica = self.config.replica
        if not who.admin:
            return self._team_counts.get(who.team, TeamCounts()).to_pb(who.team, replica)
        c = self.scorer.cache
        return pb.Stats(cache_hits=c.hits, cache_misses=c.misses, cache_hit_rate=c.hit_rate,
                        score_rows_written=self.store.rows_written, score_rows_pending=self.store.pending,
                        replica=replica)

    # -- runs ---------------------------------------------------------------------
    @_rpc
    async def StartRun(self, request: pb.StartRunRequest, context: Any) -> pb.Run:
        who = await self._who(context)
        run_id = request.run_id or uuid.uuid4().hex[:16]
        if len(run_id) > 64:
            raise InvalidRequestError("run_id: at most 64 characters")
        if request.replay_of:
            await self._check_run(request.replay_of, who)
        config = convert.value_to_py(request.config) if request.HasField("config") else {}
        run = await asyncio.to_thread(self.store.start_run, run_id, request.name, config, who.team,
                                      request.replay_of or None)
        self._known_runs.add((who.team, run_id))
        last, count = await asyncio.to_thread(self.store.run_stats, run_id)
        return convert.run_to_pb(run, last, count)

    @_rpc
    async def LogStep(self, request: pb.LogStepRequest, context: Any) -> pb.LogStepResponse:
        if not request.run_id:
            raise InvalidRequestError("run_id: required")
        await self._check_run(request.run_id, await self._who(context))
        await asyncio.to_thread(self.store.log_step, request.run_id, request.step, dict(request.metrics))
        return pb.LogStepResponse()

    @_rpc
    async def FinishRun(self, request: pb.FinishRunRequest, context: Any) -> pb.Run:
        state = request.state or "finished"
        if state not in ("finished", "failed"):
            raise InvalidRequestError(f"state: {state!r} is not one of finished, failed")
        await self._check_run(request.run_id, await self._who(context))
        await asyncio.to_thread(self.store.flush)
        run = await asyncio.to_thread(self.store.finish_run, request.run_id, state, dict(request.summary))
        last, count = await asyncio.to_thread(self.store.run_stats, request.run_id)
        return convert.run_to_pb(run, last, count)

    @_rpc
    async def GetRun(self, request: pb.GetRunRequest, context: Any) -> pb.Run:
        who = await self._who(context)

        def load() -> pb.Run:
            run = self.store.get_run(request.run_id, None if who.admin else who.team)
            self.store.flush()
            return convert.run_to_pb(run, *self.store.run_stats(run.id))

        return await asyncio.to_thread(load)

    @_rpc
    async def ListRuns(self, request: pb.ListRunsRequest, context: Any) -> pb.ListRunsResponse:
        team = team_scope(await self._who(context), request.team)

        def load() -> list[pb.Run]:
            self.store.flush()
            return [convert.run_to_pb(r, *self.store.run_stats(r.id))
                    for r in self.store.list_runs(request.limit or 100, team)]

        return pb.ListRunsResponse(runs=await asyncio.to_thread(load))

    @_rpc
    async def ListSteps(self, request: pb.ListStepsRequest, context: Any) -> pb.ListStepsResponse:
        await self._check_run(request.run_id, await self._who(context))
        rows = await asyncio.to_thread(self.store.steps, request.run_id)
        return pb.ListStepsResponse(steps=[pb.StepRecord(step=r.step, metrics=r.metrics, created_at=convert.iso(
            r.created_at)) for r in rows])

    @_rpc
    async def GetScore(self, request: pb.GetScoreRequest, context: Any) -> pb.ScoreRecord:
        who = await self._who(context)
        row = await asyncio.to_thread(self.store.get_score, request.score_id, None if who.admin else who.team)
        return convert.score_row_to_pb(row, include_texts=True)

    async def QueryScores(self, request: pb.QueryScoresRequest, context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[pb.ScoreRecord]:
        try:
            team = team_scope(await self._who(context), request.team)
            status = convert.PB_TO_STATUS.get(request.status)
            rows = self.store.query_scores(
                run_id=request.run_id or None, team=team,
                step_min=request.step_min if request.HasField("step_min") else None,
                step_max=request.step_max if request.HasField("step_max") else None,
                verifier=request.verifier or None, status=status.value if status else None,
                created_after=convert.parse_time(request.created_after, "created_after"),
                created_before=convert.parse_time(request.created_before, "created_before"),
                reward_min=request.reward_min if request.HasField("reward_min") else None,
                reward_max=request.reward_max if request.HasField("reward_max") else None,
                limit=request.limit or None)
        except Exception as e:
            await _abort(context, e)
        while True:
            # The store iterator does blocking I/O: advance it off the event loop, a chunk at a time.
            chunk = await asyncio.to_thread(lambda: list(itertools.islice(rows, 500)))
            for r in chunk:
                yield convert.score_row_to_pb(r, include_texts=request.include_texts)
            if len(chunk) < 500:
                break
