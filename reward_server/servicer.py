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
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from verifiers import registry

from . import convert
from .config import ServerConfig
from .errors import InvalidRequestError, TooLargeError, status_code_for
from .scoring import Scorer, SampleInput
from .store import ScoreStore

log = logging.getLogger(__name__)
SPEC_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code = status_code_for(exc)
    if code is None:
        log.exception("internal error", exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
    await context.abort(code, str(exc))


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


class RewardServicer(pb_grpc.RewardServiceServicer):
    def __init__(self, config: ServerConfig, scorer: Scorer, store: ScoreStore):
        self.config, self.scorer, self.store = config, scorer, store
        self._known_runs: set[str] = set()
        # Stored spec versions are immutable, so they are cached for good; "newest"
        # lookups are cached briefly so a PutSpec elsewhere is seen within NEWEST_TTL_S.
        self._spec_versions: dict[tuple[str, int], tuple[str, int, pb.RewardSpec]] = {}
        self._spec_newest: dict[str, tuple[float, int]] = {}

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
    async def _check_run(self, run_id: str) -> None:
        if run_id and run_id not in self._known_runs:
            await asyncio.to_thread(self.store.get_run, run_id)  # raises RunNotFoundError
            self._known_runs.add(run_id)

    async def _samples(self, samples: Any, spec: pb.RewardSpec, where: str) -> list[SampleInput]:
        if len(samples) > self.config.max_samples_per_request:
            raise TooLargeError(f"{where}.samples: {len(samples)} samples, the limit is "
                                f"{self.config.max_samples_per_request} per message; split the batch")
        await self._preload_specs([spec, *(s.spec for s in samples)], where)
        return convert.samples_from_pb(samples, spec, where, self.config.timeout_s, self._load_spec)

    async def _score_and_store(self, samples: list[SampleInput], *, run_id: str, step: int,
                               group_id: str) -> list[pb.SampleResult]:
        outcomes = await self.scorer.score_many(samples)
        request_id = convert.new_request_id()
        rows = [row for o in outcomes for row in convert.outcome_rows(
            o, run_id=run_id, step=step if run_id else None, group_id=group_id,
            request_id=request_id, store_texts=self.config.store_texts)]
        self.store.add_scores(rows)  # queued before the client sees the result
        return [convert.outcome_to_pb(o) for o in outcomes]

    # -- scoring ------------------------------------------------------------------
    @_rpc
    async def Score(self, request: pb.ScoreRequest, context: grpc.aio.ServicerContext) -> pb.ScoreResponse:
        samples = await self._samples(request.samples, request.spec, "request")
        await self._check_run(request.run_id)
        results = await self._score_and_store(samples, run_id=request.run_id, step=request.step, group_id="")
        return pb.ScoreResponse(results=results)

    async def ScoreGroups(self, request_iterator: AsyncIterator[pb.GroupRequest],
                          context: grpc.aio.ServicerContext) -> AsyncIterator[pb.GroupResult]:
        """Groups are scored concurrently; each result is sent as soon as its group is done."""
        done: asyncio.Queue = asyncio.Queue()
        tasks: set[asyncio.Task] = set()
        end = object()

        async def score_group(g: pb.GroupRequest, samples: list[SampleInput]) -> pb.GroupResult:
            results = await self._score_and_store(samples, run_id=g.run_id, step=g.step, group_id=g.group_id)
            return pb.GroupResult(group_id=g.group_id, step=g.step, results=results)

        async def read() -> None:
            try:
                async for g in request_iterator:
                    where = f"group[{g.group_id or '?'}]"
                    if not g.group_id:
                        raise InvalidRequestError(f"{where}.group_id: required (unique within the run's step)")
                    samples = await self._samples(g.samples, g.spec, where)
                    await self._check_run(g.run_id)
                    t = asyncio.create_task(score_group(g, samples))
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

    @_rpc
    async def ListVerifiers(self, request: pb.ListVerifiersRequest, context: Any) -> pb.ListVerifiersResponse:
        out = []
        for cls in registry.latest():
            ok, why = cls.available()
            schema = cls.Params.model_json_schema()
            params = [pb.ParamInfo(name=n, type=t, default_json=d, description=desc)
                      for n, t, d, desc in registry.describe_params(cls)]
            out.append(pb.VerifierInfo(name=cls.name, version=cls.version, description=cls.description,
                                       params=params, params_schema_json=convert.json.dumps(schema),
                                       available=ok, unavailable_reason=why))
        return pb.ListVerifiersResponse(verifiers=out)

    @_rpc
    async def DryRun(self, request: pb.DryRunRequest, context: Any) -> pb.DryRunResponse:
        (sample,) = await self._samples([request.sample], request.spec, "request")
        (outcome,) = await self.scorer.score_many([sample], use_cache=False)
        return pb.DryRunResponse(result=convert.outcome_to_pb(outcome))

    @_rpc
    async def PutSpec(self, request: pb.PutSpecRequest, context: Any) -> pb.StoredSpec:
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
        row = await asyncio.to_thread(self.store.get_spec, request.name, request.version)
        return convert.stored_spec_to_pb(row)

    @_rpc
    async def ListSpecs(self, request: pb.ListSpecsRequest, context: Any) -> pb.ListSpecsResponse:
        rows = await asyncio.to_thread(self.store.list_specs)
        return pb.ListSpecsResponse(specs=[convert.stored_spec_to_pb(r) for r in rows])

    @_rpc
    async def GetStats(self, request: pb.GetStatsRequest, context: Any) -> pb.Stats:
        c = self.scorer.cache
        return pb.Stats(cache_hits=c.hits, cache_misses=c.misses, cache_hit_rate=c.hit_rate,
                        score_rows_written=self.store.rows_written, score_rows_pending=self.store.pending)

    # -- runs ---------------------------------------------------------------------
    @_rpc
    async def StartRun(self, request: pb.StartRunRequest, context: Any) -> pb.Run:
        run_id = request.run_id or uuid.uuid4().hex[:16]
        if len(run_id) > 64:
            raise InvalidRequestError("run_id: at most 64 characters")
        config = convert.value_to_py(request.config) if request.HasField("config") else {}
        run = await asyncio.to_thread(self.store.start_run, run_id, request.name, config)
        self._known_runs.add(run_id)
        last, count = await asyncio.to_thread(self.store.run_stats, run_id)
        return convert.run_to_pb(run, last, count)

    @_rpc
    async def LogStep(self, request: pb.LogStepRequest, context: Any) -> pb.LogStepResponse:
        if not request.run_id:
            raise InvalidRequestError("run_id: required")
        await asyncio.to_thread(self.store.log_step, request.run_id, request.step, dict(request.metrics))
        return pb.LogStepResponse()

    @_rpc
    async def FinishRun(self, request: pb.FinishRunRequest, context: Any) -> pb.Run:
        state = request.state or "finished"
        if state not in ("finished", "failed"):
            raise InvalidRequestError(f"state: {state!r} is not one of finished, failed")
        await asyncio.to_thread(self.store.flush)
        run = await asyncio.to_thread(self.store.finish_run, request.run_id, state, dict(request.summary))
        last, count = await asyncio.to_thread(self.store.run_stats, request.run_id)
        return convert.run_to_pb(run, last, count)

    @_rpc
    async def ListRuns(self, request: pb.ListRunsRequest, context: Any) -> pb.ListRunsResponse:
        def load() -> list[pb.Run]:
            self.store.flush()
            return [convert.run_to_pb(r, *self.store.run_stats(r.id))
                    for r in self.store.list_runs(request.limit or 100)]

        return pb.ListRunsResponse(runs=await asyncio.to_thread(load))

    async def QueryScores(self, request: pb.QueryScoresRequest, context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[pb.ScoreRecord]:
        status = convert.PB_TO_STATUS.get(request.status)
        rows = self.store.query_scores(
            run_id=request.run_id or None,
            step_min=request.step_min if request.HasField("step_min") else None,
            step_max=request.step_max if request.HasField("step_max") else None,
            verifier=request.verifier or None, status=status.value if status else None,
            limit=request.limit or None)
        while True:
            # The store iterator does blocking I/O: advance it off the event loop, a chunk at a time.
            chunk = await asyncio.to_thread(lambda: list(itertools.islice(rows, 500)))
            for r in chunk:
                yield convert.score_row_to_pb(r)
            if len(chunk) < 500:
                break
