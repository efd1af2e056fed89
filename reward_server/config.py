"""Server configuration: a typed model read from a TOML file and environment variables.

Precedence (highest first): command-line flags, environment variables
(`REWARD_SERVER_<FIELD>`, e.g. `REWARD_SERVER_DATABASE_URL`), the TOML file
(`--config FILE` or `REWARD_SERVER_CONFIG`), defaults. Unknown TOML keys are rejected
with the key's name.
"""
from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from .quotas import QuotaConfig
from verifiers.judges.policy import JudgeEndpoint, parse_url
from verifiers.sandbox.admission import default_sandbox_threads
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field."""


class ComponentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    version: str = ""
    weight: float = 1.0
    params: dict[str, Any] = Field(default_factory=dict)
    gate: bool = False
    gate_min: float | None = None


class SpecConfig(BaseModel):
    """A named reward spec in the TOML file: [[specs.NAME.components]] and [[specs.NAME.routes.TASK]]."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    components: list[ComponentConfig] = Field(default_factory=list)
    routes: dict[str, list[ComponentConfig]] = Field(default_factory=dict)
    task_key: str = "task"


_ENDPOINT_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


class JudgesConfig(BaseModel):
    """What the `judge` verifier may call: `[judges.endpoints.NAME]` (a request picks one with
    `params.endpoint = "NAME"`) and `allowed_urls`, URL prefixes a request may name itself."""

    model_config = ConfigDict(extra="forbid")
    endpoints: dict[str, JudgeEndpoint] = Field(default_factory=dict)
    allowed_urls: list[str] | None = Field(None, description="URL prefixes (scheme, host, port, path) a request "
                                           "may name as base_url; default $VERIFIERS_JUDGE_ALLOWED_URLS; with "
                                           "auth on and none given, no URL")

    @field_validator("endpoints")
    @classmethod
    def _names(cls, v: dict[str, JudgeEndpoint]) -> dict[str, JudgeEndpoint]:
        bad = [n for n in v if not re.fullmatch(_ENDPOINT_NAME, n)]
        if bad:
            raise ValueError(f"endpoint names must match {_ENDPOINT_NAME}; bad: {bad}")
        return v

    @field_validator("allowed_urls")
    @classmethod
    def _urls(cls, v: list[str] | None) -> list[str] | None:
        for url in v or ():
            parse_url(url)
        return v


class ModelConfig(BaseModel):
    """A local model a request may name (`[models.NAME] path = "/models/…"`)."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(..., min_length=1, description="model folder (or a Hub id already in the server's cache)")

    @field_validator("path")
    @classmethod
    def _exists(cls, v: str) -> str:
        if v.startswith(("/", ".", "~")) and not Path(v).expanduser().is_dir():
            raise ValueError(f"{v} is not a folder")
        return str(Path(v).expanduser()) if v.startswith("~") else v


class ServerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REWARD_SERVER_", extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="address to bind; 0.0.0.0 for all interfaces")
    port: int = Field(50051, ge=0, le=65535, description="0 picks a free port")
    http_port: int = Field(0, ge=0, le=65535, description="HTTP/JSON face on `host` (POST /v1/score, POST "
                           "/openrlhf/SPEC, GET /healthz), same keys, quotas and store as gRPC; 0: off")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus GET /metrics on `host`; 0: off")
    http_read_timeout_s: float = Field(30.0, gt=0, le=3600, description="HTTP face and /metrics: a request's "
                                       "line and headers, and then its body, must each arrive within this (else the "
                                       "connection is closed, or 408), so slow senders cannot hold connections")
    database_url: str = Field("sqlite:///rewards.db", description="SQLAlchemy URL: sqlite:///… or postgresql+psycopg://…")
    auto_migrate: bool | None = Field(None, description="apply Alembic migrations at start; if false, refuse an "
                                      "old schema. Default: true for SQLite, false for a shared database")
    auth: Literal["on", "off"] | None = Field(None, description="API keys required. Default: off for SQLite (the "
                                              "embedded single-user set-up), on for a shared database")
    quotas: QuotaConfig = Field(default_factory=QuotaConfig, description="per-team limits: [quotas.default], "
                                "[quotas.teams.NAME]")
    tls_cert_file: Path | None = Field(None, description="PEM certificate chain; with tls_key_file serves TLS")
    tls_key_file: Path | None = Field(None, description="PEM private key")
    retention_days: float | None = Field(None, gt=0, description="drop score texts (keep hashes, rewards and "
                                         "provenance) after this many days; never deletes rows")
    retention_interval_s: float = Field(3600.0, gt=0, description="how often the retention policy runs")
    store_texts: bool = Field(True, description="keep prompt/completion/reference texts beside their hashes")
    workers: int = Field(max(1, (os.cpu_count() or 2)), ge=1, description="verifier worker processes")
    worker_memory_limit_bytes: int = Field(2 << 30, ge=64 << 20, description="address-space cap per worker")
    thread_pools: dict[str, int] = Field(
        default_factory=lambda: {"inline": 4, "sandbox": default_sandbox_threads(), "judge": 64, "model": 64},
        description="threads per verifier thread pool: inline checks (4: they hold the GIL, and more threads "
                    "only take turns from the event loop that answers every team), sandboxed programs (default: "
                    "8 per core; the sandbox admits their runs by CPU use), remote judges, local models")
    timeout_s: float | None = Field(None, gt=0, description="override every verifier's wall-clock limit")
    sandbox_backend: Literal["bubblewrap", "docker"] = Field(
        "bubblewrap", description="where the code verifier runs programs: local bubblewrap namespaces, or "
                                  "a warm pool of Docker containers (needs the Docker socket)")
    sandbox_image: str = Field("rlvr-sandbox:latest", description="docker backend: the runner image "
                               "(scripts/docker-runner-image.sh builds one)")
    sandbox_pool_size: int | None = Field(None, ge=1, description="docker backend: warm containers "
                                          "(default: the sandbox thread pool's size)")
    judges: JudgesConfig = Field(default_factory=JudgesConfig, description="judge endpoints a request may pick "
                                 "([judges.endpoints.NAME]) and URL prefixes it may name (judges.allowed_urls)")
    models: dict[str, ModelConfig] = Field(default_factory=dict, description="local models a request may name "
                                           "([models.NAME] path = …)")
    model_roots: list[str] | None = Field(None, description="folders whose models a request may name by path "
                                          "(symlinks resolved); default $VERIFIERS_MODEL_ROOTS; with auth on and "
                                          "none given, only configured models")
    cache_ttl_s: float = Field(600.0, ge=0, description="result cache window; 0 turns the cache off")
    cache_max_entries: int = Field(100_000, ge=0)
    replica_id: str = Field("", max_length=200, description=(
        "this replica's name in GetStats (its cache and counts are its own); empty: host:pid"))
    specs: dict[str, SpecConfig] = Field(default_factory=dict,
                                         description="named reward specs stored (as new versions when changed) at start")
    max_message_bytes: int = Field(16 << 20, ge=1024, description="largest request accepted")
    max_samples_per_request: int = Field(4096, ge=1)
    max_components_per_sample: int = Field(32, ge=1, description="components one sample's spec may have (with "
                                           "its route); each is a verification and a stored row")
    max_components_per_request: int = Field(8192, ge=1, description="samples × components in one message")
    max_spec_routes: int = Field(64, ge=1, description="routes one spec may have")
    max_spec_bytes: int = Field(256 << 10, ge=1024, description="encoded size of one spec message")
    max_structured_bytes: int = Field(1 << 20, ge=1024, description="bytes of specs, Structs (references that "
                                      "are objects, metadata, run config) and maps in one message, checked on "
                                      "the wire before decoding: these decode slowly, on the event loop")
    max_history_streams: int = Field(4, ge=1, description="QueryScores streams one team may have open on this "
                                     "replica at once")
    db_concurrency: int = Field(8, ge=1, description="database calls the RPC handlers make at once; teams take "
                                "turns for them (the pool holds more: the writer and key checks)")
    grace_s: float = Field(30.0, ge=0, description="SIGTERM: time allowed for in-flight work")
    # Also the writer's turn between teams: another team's rows wait for at most one such
    # transaction. At 1000, team B's p99 under issue #17's 64 x 32-component attack was
    # 300-390 ms; at 250, within the bound (benchmarks/team_fairness.py), for about 13% of
    # the format verifier's peak throughput (2,907 -> 2,515 samples/s, service_throughput.py).
    writer_batch_rows: int = Field(250, ge=1, description="score rows per database transaction")
    writer_flush_ms: int = Field(0, ge=0, description="longest the writer waits to gather a bigger batch (0: "
                                 "commit what is queued at once; results are answered after their commit)")
    writer_lanes: int = Field(2, ge=1, le=16, description="PostgreSQL: score-writing transactions in flight at "
                              "once, each a different team's (SQLite: always 1)")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def replica(self) -> str:
        """This replica's name: `replica_id`, or host:pid."""
        return self.replica_id or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def auth_enabled(self) -> bool:
        return self.auth == "on" if self.auth else not self.is_sqlite

    @property
    def migrate_on_start(self) -> bool:
        return self.auto_migrate if self.auto_migrate is not None else self.is_sqlite

    @model_validator(mode="after")
    def _tls_pair(self) -> "ServerConfig":
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        for f in (self.tls_cert_file, self.tls_key_file):
            if f is not None and not Path(f).is_file():
                raise ValueError(f"TLS file {f} does not exist")
        return self

    @model_validator(mode="after")
    def _distinct_ports(self) -> "ServerConfig":
        ports = [(f, getattr(self, f)) for f in ("port", "http_port", "metrics_port") if getattr(self, f)]
        for i, (f, p) in enumerate(ports):
            for g, q in ports[i + 1:]:
                if p == q:
                    raise ValueError(f"{f} and {g} are both {p}; give each its own port")
        return self

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if "://" not in v:
            raise ValueError("must be a SQLAlchemy URL such as sqlite:///rewards.db")
        return v

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _CONFIG_FILE.get("path")
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


_CONFIG_FILE: dict[str, Path | None] = {"path": None}


def load_config(path: str | Path | None = None, **overrides: Any) -> ServerConfig:
    """Build the config from `path` (TOML), the environment and `overrides` (non-None only).

    Raises ConfigError naming each invalid field.
    """
    path = path or os.environ.get("REWARD_SERVER_CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist")
    _CONFIG_FILE["path"] = Path(path) if path else None
    try:
        return ServerConfig(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'config'}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"invalid configuration: {msgs}") from None
    finally:
        _CONFIG_FILE["path"] = None
