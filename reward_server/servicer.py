"""The gRPC servicer: thin. Convert the message, call the scorer or the store, convert back.

Errors are mapped to status codes in one place (`errors.status_code_for`) by `_rpc`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures as cf
import functools
import json
import math
import re
import time
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from cachetools import LRUCache

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from verifiers import registry

from . import convert
from .config import ServerConfig
from .auth import Authenticator, Principal, require_admin, team_scope
from .errors import InvalidRequestError, QuotaExceededError, TooLargeError, public_message, status_code_for
from .fairness import FairGate
from .metrics import NO_METRICS, NoMetrics, ServiceMetrics
from .quotas import QuotaManager
from .scoring import Scorer, SampleInput
from .store import ScoreStore
from .store.store import STEP_METRICS_MAX, STEP_METRICS_MAX_BYTES, GroupConflictError

try:  # grpc's error for a send the transport refused: the call is over (cancelled, dropped, timed out)
    from grpc._cython.cygrpc import ExecuteBatchError as _SendRefused
except ImportError:  # pragma: no cover - another grpc build: such a send fails as an ordinary error
    _SendRefused = ()

log = logging.getLogger(__name__)
SPEC_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
RUN_NAME_MAX_CHARS = 200          # the column's width
RUN_JSON_MAX_BYTES = STEP_METRICS_MAX_BYTES  # a run's config, a step's metrics, a run's summary
METRICS_MAX = STEP_METRICS_MAX               # metrics in one LogStep / summary
STEPS_PAGE_MAX = 1000             # steps in one ListSteps answer
STEPS_PAGE_METRICS = 65_536       # metrics in one ListSteps answer (64 full steps, ~2 MB)


def _checked_json(value: Any, field: str) -> Any:
    """`value` (a run's config, metrics or summary) if the store can hold it: finite numbers,
    no NUL, at most RUN_JSON_MAX_BYTES encoded. Raises InvalidRequestError/TooLargeError."""
    try:
        encoded = json.dumps(value, allow_nan=False)
    except ValueError:
        raise InvalidRequestError(f"{field}: numbers must be finite (no NaN or infinity)") from None
    if len(encoded) > RUN_JSON_MAX_BYTES:
        raise TooLargeError(f"{field}: {len(encoded)} bytes as JSON, the limit is {RUN_JSON_MAX_BYTES}")
    convert.check_storable(json.dumps(value, allow_nan=False, ensure_ascii=False), field)
    return value


def _checked_metrics(metrics: Any, field: str) -> dict[str, float]:
    out = dict(metrics)
    if len(out) > METRICS_MAX:
        raise TooLargeError(f"{field}: {len(out)} entries, the limit is {METRICS_MAX}")
    bad = [k for k, v in out.items() if not math.isfinite(v)]
    if bad:
        raise InvalidRequestError(f"{field}[{bad[0][:60]!r}]: {out[bad[0]]} is not a finite number")
    return _checked_json(out, field)


@functools.cache
def _verifier_info(cls: type) -> pb.VerifierInfo:
    """The fixed part of a verifier version's ListVerifiers entry (its params' JSON schema is
    ~8 ms of event-loop time to build: rebuilt on each call, one team's ListVerifiers loop
    slowed every team's calls)."""
    params = [pb.ParamInfo(name=n, type=t, default_json=d, description=desc)
              for n, t, d, desc in registry.describe_params(cls)]
    return pb.VerifierInfo(name=cls.name, version=cls.version, description=cls.description, params=params,
                           params_schema_json=convert.json.dumps(cls.Params.model_json_schema()))


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code = status_code_for(exc)
    if isinstance(exc, QuotaExceededError):
        context.set_trailing_metadata((("retry-after-s", f"{exc.retry_after_s:.3f}"),))
    if code is None:
        log.exception("internal error", exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, public_message(exc))
    if code == grpc.StatusCode.UNAVAILABLE:
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    await context.abort(code, public_message(exc))


def _group_error(g: pb.GroupRequest, exc: Exception) -> pb.GroupResult | None:
    """The GroupResult that reports `exc` for this group alone, or None when `exc` must end
    the stream (authentication, internal errors)."""
    code = status_code_for(exc)
    if code is None or code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return None
    return pb.GroupResult(group_id=g.group_id, step=g.step,
                          error=pb.GroupError(code=code.name, message=public_message(exc)))


def _chunks(outcomes: list[Any], components: int) -> Iterator[list[Any]]:
    """`outcomes` in runs of consecutive samples of about `components` components each."""
    chunk: list[Any] = []
    n = 0
    for o in outcomes:
        chunk.append(o)
        n += len(o.components)
        if n >= components:
            yield chunk
            chunk, n = [], 0
    if chunk:
        yield chunk


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
    """The RPC handlers. Shared resources are taken in turns by team: the worker pool
    (Scorer.pool_gate), database calls (`_db`: at most `db_concurrency` at once, on their own
    threads), validation (`_validate`), and the writer (the store's turn order)."""

    metrics: ServiceMetrics | NoMetrics = NO_METRICS  # set by the app when metrics_port is on

    def __init__(self, config: ServerConfig, scorer: Scorer, store: ScoreStore, auth: Authenticator,
                 quotas: QuotaManager):
        self.config, self.scorer, self.store, self.auth, self.quotas = config, scorer, store, auth, quotas
        # (team, run_id) pairs of runs read from the store as the caller's team's own. Run ids
        # are per team and a run is never deleted, so a pair stays true.
        self._owned_runs: LRUCache = LRUCache(maxsize=100_000)
        # Stored spec versions are immutable, so they are cached for good; "newest"
        # lookups are cached briefly so a PutSpec elsewhere is seen within NEWEST_TTL_S.
        self._spec_versions: dict[tuple[str, int], tuple[str, int, pb.RewardSpec]] = {}
        self._spec_newest: dict[str, tuple[float, int]] = {}
        self._team_counts: defaultdict[str, TeamCounts] = defaultdict(TeamCounts)
        self.limits = convert.Limits(config.max_components_per_sample, config.max_components_per_request,
                                     config.max_spec_routes, config.max_spec_bytes)
        self._db_gate = FairGate(config.db_concurrency)
        self._db_threads = cf.ThreadPoolExecutor(config.db_concurrency, thread_name_prefix="db-call")
        # Validation threads: a team validates one batch at a time, so while fewer than four
        # teams are validating another team's batch finds a free thread at once.
        self._validate_gate = FairGate(4)
        self._validate_threads = cf.ThreadPoolExecutor(4, thread_name_prefix="validate")
        self._validating: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._history_streams: Counter[str] = Counter()
        self._groups_in_flight: dict[tuple, asyncio.Event] = {}
        auth.run_blocking = functools.partial(self._db, "(key checks)")

    NEWEST_TTL_S = 2.0

    def close(self) -> None:
        self._db_threads.shutdown(wait=False, cancel_futures=True)
        self._validate_threads.shutdown(wait=False, cancel_futures=True)

    async def _db(self, team: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store call for `team` off the event loop, taking its turn for one
        of the `db_concurrency` database slots (round-robin by team)."""
        async with self._db_gate.slot(team):
            return await asyncio.get_running_loop().run_in_executor(self._db_threads,
                                                                    functools.partial(fn, *args, **kwargs))

    async def _flush(self, timeout_s: float = 30.0) -> None:
        """Wait (on the event loop, holding no thread) for the rows queued before the call."""
        pending = self.store.unsettled()
        if pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending], timeout=timeout_s)

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

    async def _preload_specs(self, specs: list[pb.RewardSpec], where: str, team: str) -> None:
        for name in dict.fromkeys(spec.name for spec in specs if spec.name):
            await self._db(team, self._load_spec, *convert.parse_spec_ref(name, where))

    # -- helpers ------------------------------------------------------------------
    async def _who(self, context: grpc.aio.ServicerContext) -> Principal:
        return await self.auth.principal(context)

    @staticmethod
    def _read_scope(who: Principal, team: str) -> tuple[str, bool]:
        """(team, any_team) for `store.get_run` on a read naming `team` (a request's `team`
        field): "" = the caller's own run; another team's (or "*") = admins only. An admin
        naming no team falls back to the one team holding the id (run ids are per team)."""
        if team and team != who.team:
            require_admin(who, f"reading team {team!r}'s run")
            if team != "*":
                return team, False
        return who.team, who.admin

    async def _check_run(self, run_id: str, who: Principal, *, write: bool, team: str = "") -> str:
        """The team whose run `run_id` the call means (the caller's own for an empty id).
        Writes: the caller's team's run, or RunNotFoundError (another team's run of that id
        is neither seen nor touched; an admin writes only into its own team's runs). Reads:
        as `_read_scope` says."""
        owner, any_team = (who.team, False) if write else self._read_scope(who, team)
        if not run_id or (owner, run_id) in self._owned_runs:
            return owner
        run = await self._db(who.team, self.store.get_run, run_id, owner, any_team=any_team)
        if run.team == who.team:
            self._owned_runs[(who.team, run_id)] = True
        return run.team

    def _admit(self, who: Principal, samples: list[SampleInput], *, stored: bool = True) -> Any:
        """Admission for a batch: samples, components, judge requests, sandboxed components
        and (when it is stored) its stored bytes."""
        pools = [c.thread_pool for s in samples for c in s.components]
        return self.quotas.admit_async(
            who.team, len(samples), pools.count("judge"), pools.count("sandbox"), components=len(pools),
            stored_bytes=convert.stored_bytes(samples) if stored and self.config.store_texts else 0)

    async def _samples(self, samples: Any, spec: pb.RewardSpec, where: str, team: str) -> list[SampleInput]:
        """Validate a batch: counts first (before any parsing), then each spec on a validation
        thread (in turns by team), so a big request neither stalls the event loop nor queues
        ahead of another team's."""
        if len(samples) > self.config.max_samples_per_request:
            raise TooLargeError(f"{where}.samples: {len(samples)} samples, the limit is "
                                f"{self.config.max_samples_per_request} per message; split the batch")
        convert.check_spec_size(spec, f"{where}.spec", self.limits)
        await self._preload_specs([spec, *(s.spec for s in samples)], where, team)
        async with self._validating[team], self._validate_gate.slot(team):
            return await asyncio.get_running_loop().run_in_executor(self._validate_threads, functools.partial(
                convert.samples_from_pb, samples, spec, where, self.config.timeout_s, self._load_spec, self.limits))

    # Components converted (rows, response, metrics) between two turns of the event loop: a few ms.
    CONVERT_CHUNK_COMPONENTS = 256

    async def _score_and_store(self, samples: list[SampleInput], *, who: Principal, run_id: str, step: int,
                               group_id: str) -> list[pb.SampleResult]:
        outcomes = await self.scorer.score_many(samples, team=who.team)
        request_id = convert.new_request_id()
        rows: list[dict[str, Any]] = []
        results: list[pb.SampleResult] = []
        for chunk in _chunks(outcomes, self.CONVERT_CHUNK_COMPONENTS):
            if rows:  # a batch of thousands of components converts in turns with the other calls
                await asyncio.sleep(0)
            self.metrics.scored(chunk, who.team, self.scorer.cache.enabled)
            for o in chunk:
                rows += convert.outcome_rows(o, run_id=run_id, step=step if run_id else None, group_id=group_id,
                                             team=who.team, request_id=request_id,
                                             store_texts=self.config.store_texts)
                results.append(convert.outcome_to_pb(o))
        counts = self._team_counts[who.team]
        if self.scorer.cache.enabled:  # one cache lookup per component, as the cache counts them
            hits = sum(co.cached for o in outcomes for co in o.components)
            counts.cache_hits += hits
            counts.cache_misses += sum(len(o.components) for o in outcomes) - hits
        # Answered only once committed: a reward the client sees is never missing from the store.
        counts.rows_pending += len(rows)
        try:
            # Shielded: a client leaving does not withdraw rows the writer may be committing.
            await asyncio.shield(asyncio.wrap_future(self.store.add_scores(rows)))
        finally:
            counts.rows_pending -= len(rows)
        counts.rows_written += len(rows)
        await self._charge_sandbox(who, outcomes)
        return results

    async def _charge_sandbox(self, who: Principal, outcomes: list[Any]) -> None:
        sandbox_s = sum(co.latency_ms for o in outcomes for co in o.components
                        if co.component.thread_pool == "sandbox" and not co.cached) / 1000
        await self.quotas.charge_sandbox_async(who.team, sandbox_s)

    # -- scoring ------------------------------------------------------------------
    @_rpc
    async def Score(self, request: pb.ScoreRequest, context: grpc.aio.ServicerContext) -> pb.ScoreResponse:
        who = await self._who(context)
        self.quotas.precheck(who.team)  # over quota: refused before any validation
        samples = await self._samples(request.samples, request.spec, "request", who.team)
        await self._check_run(request.run_id, who, write=True)
        # over quota: RESOURCE_EXHAUSTED
        async with self._admit(who, samples):
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
                    slot = self._admit(who, samples)
                    await slot.__aenter__()
                    return slot
                except QuotaExceededError as e:
                    await asyncio.sleep(min(e.retry_after_s, 1.0))

        async def score_group(g: pb.GroupRequest, samples: list[SampleInput], slot: Any,
                              key: tuple | None) -> pb.GroupResult:
            try:
                results = await self._score_and_store(samples, who=who, run_id=g.run_id, step=g.step,
                                                      group_id=g.group_id)
            except Exception as e:
                refused = _group_error(g, e)
                if refused is None:
                    raise
                return refused
            finally:
                self._group_done(key)
                await slot.__aexit__(None, None, None)
            return pb.GroupResult(group_id=g.group_id, step=g.step, results=results)

        async def read() -> None:
            try:
                async for g in request_iterator:
                    where = f"group[{g.group_id[:64] or '?'}]"
                    key = None
                    try:
                        # The key is checked again for every group (through the verified-key
                        # cache's short TTL): a key revoked while its stream is open stops here.
                        if (await self._who(context)).team != who.team:
                            raise InvalidRequestError("authorization: a stream's key must stay the same team's")
                        convert.check_group_id(g.group_id, where)
                        samples = await self._samples(g.samples, g.spec, where, who.team)
                        await self._check_run(g.run_id, who, write=True)
                        if g.run_id:
                            key = await self._group_turn(who.team, g, samples, where)
                        slot = await admit(samples)
                    except Exception as e:
                        self._group_done(key)
                        refused = _group_error(g, e)
                        if refused is None:
                            raise
                        done.put_nowait(refused)
                        continue
                    t = asyncio.create_task(score_group(g, samples, slot, key))
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

    async def _group_turn(self, team: str, g: pb.GroupRequest, samples: list[SampleInput], where: str) -> tuple:
        """Wait until no other copy of this group (run, step, group id) is being scored here,
        then check what is stored under it: nothing, or the same samples (a re-send after an
        outage: scored again, stored once). Other content raises GroupConflictError: the
        stored rewards stand, and a reward the client sees is always the stored one's equal.
        Returns the key, held until `_group_done`."""
        key = (team, g.run_id, g.step, g.group_id)
        while (busy := self._groups_in_flight.get(key)) is not None:
            await busy.wait()
        self._groups_in_flight[key] = asyncio.Event()
        try:
            stored = await self._db(team, self.store.group_signature, g.run_id, g.step, g.group_id, team)
            if stored and stored != convert.group_signature(samples):
                raise GroupConflictError(
                    f"{where}: group {g.group_id!r} of run {g.run_id!r} step {g.step} is already stored with other "
                    f"samples (a different count, text or spec); its stored rewards stand: send new samples under "
                    f"a new group_id")
        except BaseException:
            self._group_done(key)
            raise
        return key

    def _group_done(self, key: tuple | None) -> None:
        if key is not None and (ev := self._groups_in_flight.pop(key, None)) is not None:
            ev.set()

    @_rpc
    async def ListVerifiers(self, request: pb.ListVerifiersRequest, context: Any) -> pb.ListVerifiersResponse:
        await self._who(context)
        out = []
        for cls in registry.all_versions() if request.all_versions else registry.latest():
            ok, why = cls.available()
            info = pb.VerifierInfo()
            info.CopyFrom(_verifier_info(cls))
            info.available, info.unavailable_reason, info.latest = ok, why, registry.is_latest(cls)
            out.append(info)
        return pb.ListVerifiersResponse(verifiers=out)

    @_rpc
    async def DryRun(self, request: pb.DryRunRequest, context: Any) -> pb.DryRunResponse:
        who = await self._who(context)
        self.quotas.precheck(who.team)
        (sample,) = await self._samples([request.sample], request.spec, "request", who.team)
        async with self._admit(who, [sample], stored=False):  # metered like Score; nothing is stored
            (outcome,) = await self.scorer.score_many([sample], use_cache=False, team=who.team)
        await self._charge_sandbox(who, [outcome])
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
        convert.check_spec_size(request.spec, "spec", self.limits)
        convert.check_storable(request.description, "description")
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
        convert.check_storable(run_id, "run_id")
        if len(request.name) > RUN_NAME_MAX_CHARS:
            raise InvalidRequestError(f"name: {len(request.name)} characters, at most {RUN_NAME_MAX_CHARS}")
        convert.check_storable(request.name, "name")
        config = _checked_json(convert.value_to_py(request.config, "config") if request.HasField("config") else {},
                               "config")
        if request.replay_of:
            await self._check_run(request.replay_of, who, write=False, team=request.replay_of_team)
        async with self.quotas.bookkeeping_async(who.team):
            run = await self._db(who.team, self.store.start_run, run_id, request.name, config, who.team,
                                 request.replay_of or None)
        self._owned_runs[(who.team, run_id)] = True
        last, count = await self._db(who.team, self.store.run_stats, run_id, who.team)
        return convert.run_to_pb(run, last, count)

    @_rpc
    async def LogStep(self, request: pb.LogStepRequest, context: Any) -> pb.LogStepResponse:
        if not request.run_id:
            raise InvalidRequestError("run_id: required")
        who = await self._who(context)
        metrics = _checked_metrics(request.metrics, "metrics")
        await self._check_run(request.run_id, who, write=True)
        async with self.quotas.bookkeeping_async(who.team):
            await self._db(who.team, self.store.log_step, request.run_id, request.step, metrics, who.team)
        return pb.LogStepResponse()

    @_rpc
    async def FinishRun(self, request: pb.FinishRunRequest, context: Any) -> pb.Run:
        state = request.state or "finished"
        if state not in ("finished", "failed"):
            raise InvalidRequestError(f"state: {state!r} is not one of finished, failed")
        who = await self._who(context)
        summary = _checked_metrics(request.summary, "summary")
        await self._check_run(request.run_id, who, write=True)
        async with self.quotas.bookkeeping_async(who.team):
            await self._flush()
            run = await self._db(who.team, self.store.finish_run, request.run_id, state, summary, who.team)
        last, count = await self._db(who.team, self.store.run_stats, request.run_id, who.team)
        return convert.run_to_pb(run, last, count)

    @_rpc
    async def GetRun(self, request: pb.GetRunRequest, context: Any) -> pb.Run:
        who = await self._who(context)
        team, any_team = self._read_scope(who, request.team)
        await self._flush()

        def load() -> pb.Run:
            run = self.store.get_run(request.run_id, team, any_team=any_team)
            return convert.run_to_pb(run, *self.store.run_stats(run.id, run.team))

        return await self._db(who.team, load)

    @_rpc
    async def ListRuns(self, request: pb.ListRunsRequest, context: Any) -> pb.ListRunsResponse:
        who = await self._who(context)
        team = team_scope(who, request.team)
        await self._flush()

        def load() -> list[pb.Run]:
            return [convert.run_to_pb(r, *self.store.run_stats(r.id, r.team))
                    for r in self.store.list_runs(min(request.limit or 100, 1000), team)]

        return pb.ListRunsResponse(runs=await self._db(who.team, load))

    @_rpc
    async def ListSteps(self, request: pb.ListStepsRequest, context: Any) -> pb.ListStepsResponse:
        """A page of a run's steps. A run's steps are unbounded (each may hold METRICS_MAX
        metrics), so a page holds at most STEPS_PAGE_MAX steps and STEPS_PAGE_METRICS metrics,
        read and built on a database thread, never on the event loop."""
        who = await self._who(context)
        if request.limit < 0:
            raise InvalidRequestError("limit: must be >= 0 (0 = 1000)")
        limit = min(request.limit or STEPS_PAGE_MAX, STEPS_PAGE_MAX)
        after = None
        if request.page_token:
            after = int(request.page_token) if re.fullmatch(r"-?[0-9]{1,19}", request.page_token) else None
            if after is None or not -2**63 <= after < 2**63:  # a step is an int64 (the column too)
                raise InvalidRequestError("page_token: not a token this server gave; send the previous "
                                          "answer's next_page_token, or \"\" for the first page")
        team = await self._check_run(request.run_id, who, write=False, team=request.team)

        def page() -> pb.ListStepsResponse:
            rows = self.store.steps(request.run_id, team, after_step=after, limit=limit + 1)
            out, n_metrics = pb.ListStepsResponse(), 0
            for r in rows[:limit]:
                if out.steps and n_metrics + len(r.metrics) > STEPS_PAGE_METRICS:
                    break
                out.steps.append(pb.StepRecord(step=r.step, metrics=r.metrics, created_at=convert.iso(r.created_at)))
                n_metrics += len(r.metrics)
            if len(out.steps) < len(rows):
                out.next_page_token = str(out.steps[-1].step)
            return out

        return await self._db(who.team, page)

    @_rpc
    async def GetScore(self, request: pb.GetScoreRequest, context: Any) -> pb.ScoreRecord:
        who = await self._who(context)
        await self._flush()
        row = await self._db(who.team, self.store.get_score, request.score_id, None if who.admin else who.team,
                             flush=False)
        return convert.score_row_to_pb(row, include_texts=True)

    HISTORY_PAGE_ROWS = 200  # rows per database round trip (a page of 16 KiB texts is 3 MiB)

    async def QueryScores(self, request: pb.QueryScoresRequest, context: grpc.aio.ServicerContext) -> None:
        """Stream stored rows a page at a time. No database connection is held while the
        client reads: each page is its own query (in turns by team), and the key is checked
        again between pages. A team has at most `max_history_streams` open on a replica.

        Records are sent with `context.write`, not yielded: a send to a client that cancelled
        or dropped the stream then fails here and ends the stream quietly (a DEBUG line),
        where grpc, sending a yielded record, would log it as an ERROR with a traceback."""
        try:
            who = await self._who(context)
            team = team_scope(who, request.team)
            status = convert.PB_TO_STATUS.get(request.status)
            filters = dict(
                run_id=request.run_id or None, team=team,
                step_min=request.step_min if request.HasField("step_min") else None,
                step_max=request.step_max if request.HasField("step_max") else None,
                verifier=request.verifier or None, status=status.value if status else None,
                created_after=convert.parse_time(request.created_after, "created_after"),
                created_before=convert.parse_time(request.created_before, "created_before"),
                reward_min=request.reward_min if request.HasField("reward_min") else None,
                reward_max=request.reward_max if request.HasField("reward_max") else None,
                limit=request.limit or None)
            if (open_now := self._history_streams[who.team]) >= self.config.max_history_streams:
                raise QuotaExceededError(f"team {who.team}: {open_now} history streams open (limit "
                                         f"{self.config.max_history_streams}); read or close one", 1.0)
        except Exception as e:
            await _abort(context, e)
        self._history_streams[who.team] += 1
        try:
            await self._flush()
            pages = self.store.score_pages(**filters, page_rows=self.HISTORY_PAGE_ROWS, flush=False)
            while True:
                try:
                    page = await self._db(who.team, next, pages, None)
                    if page is not None and (await self._who(context)).team != who.team:
                        raise InvalidRequestError("authorization: a stream's key must stay the same team's")
                except Exception as e:
                    await _abort(context, e)
                if page is None:
                    break
                for r in page:
                    try:
                        await context.write(convert.score_row_to_pb(r, include_texts=request.include_texts))
                    except _SendRefused:
                        log.debug("QueryScores: team %s's client left the stream", who.team)
                        raise asyncio.CancelledError from None  # grpc ends a cancelled call quietly
        finally:
            self._history_streams[who.team] -= 1
            if not self._history_streams[who.team]:
                del self._history_streams[who.team]
