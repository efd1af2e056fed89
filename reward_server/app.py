"""Assemble and run the server: gRPC (asyncio), health, reflection, scorer and store.

`serve(config)` runs in the foreground until SIGTERM/SIGINT; `start_server(config)` runs
it on a background thread (tests, the demo) and returns a handle with the bound port.

Shutdown order (SIGTERM): health -> NOT_SERVING; stop accepting RPCs and let in-flight
ones finish (`grace_s`); close the worker pools; drain the score writer. A score that
was returned to a client is therefore in the database when the process exits.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

from verifiers.judges.policy import ALLOWED_URLS_ENV, MODEL_ROOTS_ENV, ReachPolicy, env_list, install_policy

from .auth import DEFAULT_TEAM, Authenticator, KeyStore
from .config import ConfigError, ServerConfig, SpecConfig
from .decoding import DecodeErrorInterceptor
from .http_face import WebFaces
from .metrics import ServiceMetrics
from .quotas import DatabaseBackend, QuotaManager
from .scoring import Scorer
from .servicer import RewardServicer
from .store import ScoreStore
from .store.store import redact_url

log = logging.getLogger("reward_server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RewardService"].full_name


def spec_config_to_pb(spec: "SpecConfig") -> pb.RewardSpec:
    def refs(items: list) -> list[pb.VerifierRef]:
        out = []
        for c in items:
            ref = pb.VerifierRef(name=c.name, version=c.version, weight=c.weight, weight_set=True, gate=c.gate)
            if c.gate_min is not None:
                ref.gate_min = c.gate_min
            if c.params:
                ref.params.update(c.params)
            out.append(ref)
        return out

    msg = pb.RewardSpec(components=refs(spec.components), task_key=spec.task_key)
    for task, items in spec.routes.items():
        msg.routes[task].components.extend(refs(items))
    return msg


def reach_policy(config: ServerConfig) -> ReachPolicy:
    """What this server's judges may reach (verifiers/judges/policy.py), from its config.

    Endpoints and models are the configured ones. URL prefixes and model roots come from
    `judges.allowed_urls` / `model_roots` when set, else from $VERIFIERS_JUDGE_ALLOWED_URLS /
    $VERIFIERS_MODEL_ROOTS. With auth on (callers are teams, not the operator) nothing else
    is allowed: no other URL or path, no server key for a URL a request chose, and that
    URL's raw replies stay out of reasons. With auth off (the single-user set-up) a request
    may name any URL or path unless prefixes or roots are given. Raises ConfigError for an
    endpoint whose key variable is not set."""
    for name, ep in config.judges.endpoints.items():
        if ep.api_key_env and not os.environ.get(ep.api_key_env):
            raise ConfigError(f"judges.endpoints.{name}.api_key_env: environment variable {ep.api_key_env} is "
                              f"not set")
    urls = config.judges.allowed_urls if config.judges.allowed_urls is not None else env_list(ALLOWED_URLS_ENV)
    roots = config.model_roots if config.model_roots is not None else env_list(MODEL_ROOTS_ENV)
    shared = config.auth_enabled
    try:
        return ReachPolicy(endpoints=config.judges.endpoints, models={n: m.path for n, m in config.models.items()},
                           model_roots=tuple(roots), allowed_url_prefixes=tuple(urls),
                           any_url=not shared and not urls, any_model=not shared and not roots,
                           untrusted_callers=shared)
    except ValueError as e:  # only the environment's prefixes can be malformed here: the config's were checked
        raise ConfigError(f"${ALLOWED_URLS_ENV} (the fallback of judges.allowed_urls): {e}") from None


@dataclass
class _Parts:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    scorer: Scorer
    store: ScoreStore
    port: int
    retention: asyncio.Task | None = None
    quotas: QuotaManager | None = None
    remove_policy: Callable[[], None] = lambda: None
    web: WebFaces | None = None
    servicer: RewardServicer | None = None


async def _build(config: ServerConfig) -> _Parts:
    policy = reach_policy(config)
    log.info("judges may reach: endpoints %s; URLs a request names: %s; models %s; folders a request names: %s",
             ", ".join(policy.endpoints) or "none",
             "any" if policy.any_url else ", ".join(policy.allowed_url_prefixes) or "none",
             ", ".join(policy.models) or "none",
             "any" if policy.any_model else ", ".join(policy.model_roots) or "none")
    # Installed first: the stored specs of the config are validated against it.
    remove_policy = install_policy(policy)
    try:
        parts = await _build_parts(config)
    except BaseException:
        remove_policy()
        raise
    parts.remove_policy = remove_policy
    return parts


async def _build_parts(config: ServerConfig) -> _Parts:
    store = ScoreStore(config.database_url, auto_migrate=config.migrate_on_start,
                       batch_rows=config.writer_batch_rows, flush_ms=config.writer_flush_ms,
                       writer_lanes=config.writer_lanes)
    scorer = Scorer(config.workers, config.worker_memory_limit_bytes, config.thread_pools,
                    cache_ttl_s=config.cache_ttl_s, cache_max_entries=config.cache_max_entries)
    try:
        return await _serve_parts(config, store, scorer)
    except BaseException:
        await asyncio.to_thread(scorer.close)
        await asyncio.to_thread(store.close)
        raise


def _sandbox_backend(config: ServerConfig) -> None:
    """Select the code verifier's sandbox for this process; a Docker pool is warmed now."""
    from verifiers.sandbox import make_backend, set_default_backend

    if config.sandbox_backend == "docker":
        # (no admission by CPU use there: one warm container per thread, at most 2 per core)
        pool = config.sandbox_pool_size or min(config.thread_pools.get("sandbox", 2), 2 * (os.cpu_count() or 1))
        backend = make_backend("docker", image=config.sandbox_image, pool_size=pool)
        backend.warm(pool)
    else:
        backend = make_backend("bubblewrap")
    set_default_backend(backend)
    ok, why = backend.available()
    log.info("code sandbox: %s (%s)", config.sandbox_backend, why if ok else f"UNAVAILABLE: {why}")


def quota_manager(config: ServerConfig, store: ScoreStore) -> QuotaManager:
    """Quotas in this process, or shared through the database (`quotas.backend`; auto =
    shared on PostgreSQL, where several replicas may run)."""
    backend = config.quotas.backend
    if backend == "auto":
        backend = "database" if store.engine.dialect.name == "postgresql" else "memory"
    log.info("quotas: buckets and counters in %s", "the shared database" if backend == "database" else "this process")
    return QuotaManager(config.quotas, DatabaseBackend(store.engine, config.quotas.lease_ttl_s, config.replica)
                        if backend == "database" else None)


async def _serve_parts(config: ServerConfig, store: ScoreStore, scorer: Scorer) -> _Parts:
    await asyncio.to_thread(scorer.warm_up)
    await asyncio.to_thread(_sandbox_backend, config)
    opts = [("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            # gRPC sets SO_REUSEPORT by default: a second server on a port in use would start and
            # share it, splitting the scores between two databases. Refuse instead (issue #20).
            ("grpc.so_reuseport", 0)]
    server = grpc.aio.server(options=opts, interceptors=[DecodeErrorInterceptor((config.max_spec_bytes, config.max_structured_bytes))])
    auth = Authenticator(KeyStore(store) if config.auth_enabled else None)
    if not auth.enabled:
        log.warning("AUTH IS OFF: every caller acts as the admin of team %r (the embedded single-user set-up; "
                    "set auth = \"on\" and create keys with `reward-server keys create` to share this server)",
                    DEFAULT_TEAM)
    servicer = RewardServicer(config, scorer, store, auth, quota_manager(config, store))
    metrics = ServiceMetrics.for_server(config, scorer, store, servicer) if config.metrics_port else None
    for name, spec in config.specs.items():  # validated and stored as the next version when changed
        try:
            await servicer.put_spec(pb.PutSpecRequest(name=name, spec=spec_config_to_pb(spec),
                                                      description=spec.description))
        except Exception as e:
            raise ConfigError(f"config specs.{name}: {e}") from None
    pb_grpc.add_RewardServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server)
    address = f"{config.host}:{config.port}"
    try:
        if config.tls_cert_file:
            creds = grpc.ssl_server_credentials([(config.tls_key_file.read_bytes(),
                                                  config.tls_cert_file.read_bytes())])
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:  # grpcio raises "Failed to bind" without the operating system's reason
        port = 0
    if port == 0:
        raise OSError(f"could not bind {config.host}:{config.port}: {_bind_error(config.host, config.port)}")
    web = WebFaces.prepare(config, server)  # binds http_port and metrics_port: a port in use fails here
    await server.start()
    try:
        await web.start(config, metrics, auth.principal_for_key if auth.enabled else None, servicer.quotas.precheck)
    except BaseException:
        await web.stop()
        await server.stop(0)
        raise
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("reward server listening on %s:%d (%s, database %s, %d workers)", config.host, port,
             "TLS" if config.tls_cert_file else "plaintext", redact_url(config.database_url), config.workers)
    retention = asyncio.create_task(_retention_loop(store, config)) if config.retention_days else None
    return _Parts(server, health_servicer, scorer, store, port, retention, servicer.quotas, web=web, servicer=servicer)


def _bind_error(host: str, port: int) -> str:
    """Why `host:port` cannot be bound, in the operating system's words ("Address already in
    use"), found by binding a plain socket there; gRPC does not say."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.bind(infos[0][4])
    except OSError as e:
        return (e.strerror or str(e)).lower()
    return "gRPC refused the address"


async def _retention_loop(store: ScoreStore, config: ServerConfig) -> None:
    """Apply the retention policy now and every `retention_interval_s`."""
    while True:
        cutoff = datetime.now(timezone.utc) - timedelta(days=config.retention_days)
        try:
            await asyncio.to_thread(store.drop_texts_before, cutoff)
        except Exception:
            log.exception("retention policy failed; will retry")
        await asyncio.sleep(config.retention_interval_s)


async def _shutdown(parts: _Parts, grace_s: float) -> None:
    if parts.retention:
        parts.retention.cancel()
    await parts.health.enter_graceful_shutdown()
    if parts.web:  # in-flight HTTP requests finish first: they are gRPC calls to the server below
        await parts.web.stop()
    await parts.server.stop(grace_s)
    if parts.servicer:
        parts.servicer.close()
    await asyncio.to_thread(parts.scorer.close)
    if parts.quotas:
        await asyncio.to_thread(parts.quotas.close)
    await asyncio.to_thread(parts.store.close)
    parts.remove_policy()
    log.info("reward server stopped; %d score rows written", parts.store.rows_written)


def settle_heap() -> None:
    """Move every object alive after start-up (imported modules, the registry, the gRPC
    server: about 180,000 objects) out of the garbage collector's reach (`gc.freeze`). A
    large batch allocates enough to trigger a full collection, which otherwise walks all of
    them with the GIL held: a ~150 ms stall of the event loop, and of every team's calls,
    in the middle of one team's request. Called once, in the serving process only."""
    gc.collect()
    gc.freeze()


# How long a thread may hold the GIL while another waits (CPython's default: 5 ms). The
# serving process runs the event loop, the score writer's lanes, validation and quota
# threads under one GIL; while one team's big batch keeps the writer and conversion busy,
# another team's small call needs the GIL a dozen times, each wait up to this long. At 1 ms,
# team B's p50 under issue #17's costly-validation attack went from 63-93 to 51-69 ms
# (benchmarks/team_fairness.py, runs alternated); service throughput showed no cost.
SWITCH_INTERVAL_S = 0.001


def serve(config: ServerConfig, ready: "callable | None" = None) -> None:
    """Run in the foreground until SIGTERM or SIGINT, then shut down gracefully."""

    async def main() -> None:
        parts = await _build(config)
        settle_heap()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready:
            ready(parts.port)
        await stop.wait()
        log.info("signal received: finishing in-flight work (up to %.0f s)", config.grace_s)
        await _shutdown(parts, config.grace_s)

    asyncio.run(main())


class RunningServer:
    """A server on a background thread: `.port`, `.address`, `.store`, `.stop()`."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._parts: _Parts | None = None
        self._thread = threading.Thread(target=self._run, name="reward-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._parts = self._loop.run_until_complete(_build(self.config))
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    @property
    def port(self) -> int:
        return self._parts.port

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.port}"

    @property
    def http_port(self) -> int:
        """The HTTP/JSON face's port (0: off)."""
        return self._parts.web.http_port if self._parts.web else 0

    @property
    def metrics_port(self) -> int:
        """The /metrics port (0: off)."""
        return self._parts.web.metrics_port if self._parts.web else 0

    @property
    def store(self) -> ScoreStore:
        return self._parts.store

    def stop(self, grace_s: float | None = None) -> None:
        if self._parts is None or not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(
            _shutdown(self._parts, self.config.grace_s if grace_s is None else grace_s), self._loop)
        fut.result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(config: ServerConfig) -> RunningServer:
    """Start a server on a background thread and return once it serves."""
    return RunningServer(config)
