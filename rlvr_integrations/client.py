"""A small synchronous client of the reward service, shared by the trainer integrations.

    client = ServiceClient("127.0.0.1:50051", api_key=None, tls_ca=None)
    results = client.score(samples, spec=build_spec("math-r1"), run_id="", step=0)

It speaks only the proto (`rewards.v1`) and needs nothing beyond grpcio and protobuf, so
the TRL and verl integrations do not pull in the trainer client (or torch) to use it.

Connection settings default to the same environment variables as `rewardctl`:

    REWARD_SERVER_ADDRESS   HOST:PORT of the service
    REWARD_API_KEY          the team's key (sent as `authorization: Bearer KEY`)
    REWARD_TLS_CA           a PEM CA certificate: connect with TLS, trusting that CA

Retries. UNAVAILABLE (server down, restarting, connection lost) is retried with
exponential back-off and jitter; RESOURCE_EXHAUSTED that carries the server's
`retry-after-s` trailer (a team quota) is retried after the wait the server asked for.
RESOURCE_EXHAUSTED without that trailer (a request over a size limit) is not retryable.
After `max_retries` the call raises `RewardServiceUnavailable` (naming the address) or
`RewardServiceCallError`. Every other failure raises `RewardServiceCallError` with the
gRPC code at once. A retried `Score` may be stored twice if the first attempt reached the
server before the connection broke; the rewards returned are the same.

Exceptions::

    RewardServiceError                any failure talking to the service
    ├── RewardServiceUnavailable      not reachable (after the retries)
    └── RewardServiceCallError        the call failed for another reason (`.code`)
"""
from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import struct_pb2
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

ENV_ADDRESS = "REWARD_SERVER_ADDRESS"
ENV_API_KEY = "REWARD_API_KEY"
ENV_TLS_CA = "REWARD_TLS_CA"
ENV_SPEC = "REWARD_SPEC"

STATUS_NAMES = {pb.STATUS_UNSPECIFIED: "UNSPECIFIED", pb.STATUS_OK: "OK", pb.STATUS_ABSTAIN: "ABSTAIN",
                pb.STATUS_TIMEOUT: "TIMEOUT", pb.STATUS_ERROR: "ERROR"}

_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    # Reconnect promptly while we retry: gRPC's default reconnect back-off (1 s growing to
    # 120 s) would make our retries fail fast without trying the server again.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 5000),
]


class RewardServiceError(RuntimeError):
    """Base of every error raised by the integrations' client."""


class RewardServiceUnavailable(RewardServiceError):
    """The service cannot be reached (after the retries)."""


class RewardServiceCallError(RewardServiceError):
    """An RPC failed with a status that is not retried, or kept failing past the retries."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.code = code


# --- message builders ---------------------------------------------------------------

def plain(obj: Any) -> Any:
    """A JSON-able copy of `obj`: numpy scalars/arrays, tuples and OmegaConf containers become
    Python values; anything else unknown becomes its str()."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if hasattr(obj, "tolist"):      # numpy arrays and scalars, torch tensors
        return plain(obj.tolist())
    if isinstance(obj, (Sequence, set, frozenset)) and not isinstance(obj, (bytes, bytearray)):
        return [plain(v) for v in obj]  # lists, tuples, OmegaConf ListConfig
    if hasattr(obj, "item"):
        return plain(obj.item())
    return str(obj)


def to_value(obj: Any) -> struct_pb2.Value:
    """A `google.protobuf.Value` for a reference.

    Strings go as they are; numbers go as their decimal string (the verifiers take gold
    answers as strings, and a double would lose digits of a large integer); dicts and
    lists go as Struct / ListValue (test cases, rubrics). None gives an unset Value.
    """
    value = struct_pb2.Value()
    obj = plain(obj)
    if obj is None:
        return value
    if isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, (int, float)):
        value.string_value = repr(obj) if isinstance(obj, float) else str(obj)
    else:
        holder = struct_pb2.Struct()
        holder.update({"v": obj})
        value.CopyFrom(holder.fields["v"])
    return value


def to_struct(obj: Mapping[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if obj:
        s.update(plain(dict(obj)))
    return s


def _component(c: Any, where: str) -> pb.VerifierRef:
    if isinstance(c, pb.VerifierRef):
        return c
    if isinstance(c, str):
        return pb.VerifierRef(name=c)
    if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
        raise ValueError(f"{where}: a component is a verifier name or {{name, weight?, params?, version?, "
                         f"gate?, gate_min?}}, got {c!r}")
    unknown = set(c) - {"name", "version", "weight", "params", "gate", "gate_min"}
    if unknown:
        raise ValueError(f"{where}: unknown component keys {sorted(unknown)}")
    ref = pb.VerifierRef(name=c["name"], version=str(c.get("version", "")), gate=bool(c.get("gate", False)))
    if c.get("weight") is not None:
        ref.weight, ref.weight_set = float(c["weight"]), True
    if c.get("params"):
        ref.params.update(plain(dict(c["params"])))
    if c.get("gate_min") is not None:
        ref.gate_min = float(c["gate_min"])
    return ref


def build_spec(spec: Any) -> pb.RewardSpec:
    """A `RewardSpec` from any of the accepted forms:

    - a `RewardSpec` message, used as is;
    - a stored spec's name, "math-r1" (its newest version) or "math-r1@2";
    - a JSON string of one of the forms below (e.g. from $REWARD_SPEC);
    - a list of components: ["format", {"name": "math", "weight": 0.8, "params": {...}}];
    - a dict {"components": [...], "routes": {"code": [...], "*": [...]}, "task_key": "task"}
      or {"name": "math-r1"}.

    A component's `weight`, when given, is sent with `weight_set` (so 0 means "logged only").
    """
    if isinstance(spec, pb.RewardSpec):
        return spec
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ValueError(f"spec: empty; give a stored spec name (e.g. 'math-r1') or components "
                             f"(or set ${ENV_SPEC})")
        if text[0] in "[{":
            try:
                return build_spec(json.loads(text))
            except json.JSONDecodeError as e:
                raise ValueError(f"spec: not valid JSON: {e}") from None
        return pb.RewardSpec(name=text)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"components", "routes", "task_key", "name"}
        if unknown:
            raise ValueError(f"spec: unknown keys {sorted(unknown)} (components, routes, task_key, name)")
        out = pb.RewardSpec(name=str(spec.get("name", "")), task_key=str(spec.get("task_key", "")))
        out.components.extend(_component(c, f"spec.components[{i}]")
                              for i, c in enumerate(spec.get("components") or []))
        for task, comps in (spec.get("routes") or {}).items():
            out.routes[str(task)].components.extend(
                _component(c, f"spec.routes[{task}][{i}]") for i, c in enumerate(comps))
        return out
    if isinstance(spec, Iterable):
        return pb.RewardSpec(components=[_component(c, f"spec[{i}]") for i, c in enumerate(spec)])
    raise ValueError(f"spec: expected a stored spec name, a list of components or a dict, got "
                     f"{type(spec).__name__}")


def make_sample(sample_id: str, completion: str, *, prompt: str = "", reference: Any = None,
                metadata: Mapping[str, Any] | None = None) -> pb.Sample:
    sample = pb.Sample(id=sample_id, prompt=prompt, completion=completion)
    if reference is not None:
        sample.reference.CopyFrom(to_value(reference))
    if metadata:
        sample.metadata.CopyFrom(to_struct(metadata))
    return sample


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, str(status))


def reward_or_none(result: pb.SampleResult) -> float | None:
    """The sample's reward when the service decided it (STATUS_OK), else None (never 0)."""
    return result.reward if result.status == pb.STATUS_OK and result.HasField("reward") else None


# --- the client ---------------------------------------------------------------------

def resolve_address(address: str | None) -> str:
    address = address or os.environ.get(ENV_ADDRESS)
    if not address:
        raise ValueError(f"no reward service address: pass address='HOST:PORT' or set ${ENV_ADDRESS}")
    return address


def make_channel(address: str, tls_ca: str | os.PathLike | None = None, *, api_key: str | None = None,
                 options: Sequence[tuple[str, Any]] | None = None) -> grpc.Channel:
    """A channel to the reward service: plaintext, or TLS trusting the PEM CA file at
    `tls_ca`; with `api_key`, every call carries `authorization: Bearer <key>` (as call
    metadata, which works on both). The one place clients of the service (this module,
    the trainer, rewardctl) build their channels."""
    opts = list(_CHANNEL_OPTIONS if options is None else options)
    if tls_ca:
        with open(tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(address, creds, options=opts)
    else:
        channel = grpc.insecure_channel(address, options=opts)
    return grpc.intercept_channel(channel, _BearerKey(api_key)) if api_key else channel


class _BearerKey(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                 grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the bearer key to every call's metadata."""

    def __init__(self, key: str):
        self.md = (("authorization", f"Bearer {key}"),)

    def _add(self, details: Any) -> Any:
        return details._replace(metadata=tuple(details.metadata or ()) + self.md)

    def intercept_unary_unary(self, cont, details, request):
        return cont(self._add(details), request)

    def intercept_unary_stream(self, cont, details, request):
        return cont(self._add(details), request)

    def intercept_stream_unary(self, cont, details, it):
        return cont(self._add(details), it)

    def intercept_stream_stream(self, cont, details, it):
        return cont(self._add(details), it)


class ServiceClient:
    """Blocking calls to the reward service with deadlines and retries. Thread-safe.

    `api_key`/`tls_ca` default to $REWARD_API_KEY/$REWARD_TLS_CA when None (pass "" to
    turn them off explicitly). The bearer key is sent as call metadata, which works on
    both plaintext and TLS channels.
    """

    def __init__(self, address: str | None = None, *, api_key: str | None = None, tls_ca: str | None = None,
                 timeout_s: float = 300.0, max_retries: int = 5, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0):
        self.address = resolve_address(address)
        self.api_key = os.environ.get(ENV_API_KEY) if api_key is None else api_key
        self.tls_ca = os.environ.get(ENV_TLS_CA) if tls_ca is None else tls_ca
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.channel = make_channel(self.address, self.tls_ca or None, api_key=self.api_key or None)
        self.stub = pb_grpc.RewardServiceStub(self.channel)
        self.retries = 0                      # retried attempts, all calls together
        self._lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------
    def _wait(self, attempt: int, err: grpc.RpcError) -> float:
        """Seconds to wait before retrying `err`, or -1 when it is not retryable."""
        code = err.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            base = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
            return base * (0.5 + random.random() / 2)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            hint = _retry_after(err)
            if hint is not None:   # a quota: the server says when it will fit
                return min(self.max_backoff_s, hint) + random.random() * 0.05
        return -1.0

    def call(self, method: str, request: Any, *, timeout_s: float | None = None) -> Any:
        """One unary RPC by name ("Score", "StartRun", ...), with deadline and retries."""
        rpc = getattr(self.stub, method)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        t0 = time.monotonic()
        for attempt in range(self.max_retries + 1):
            try:
                return rpc(request, timeout=timeout)
            except grpc.RpcError as e:
                wait = self._wait(attempt, e)
                if wait >= 0 and attempt < self.max_retries:
                    log.warning("reward service %s: %s %s (%s); retry %d/%d in %.2f s", self.address, method,
                                e.code().name, e.details(), attempt + 1, self.max_retries, wait)
                    with self._lock:
                        self.retries += 1
                    time.sleep(wait)
                    continue
                raise self._error(method, e, attempt, time.monotonic() - t0) from None
        raise AssertionError("unreachable")

    def _error(self, method: str, e: grpc.RpcError, attempt: int, elapsed: float) -> RewardServiceError:
        code, details = e.code(), e.details()
        tries = f"after {attempt + 1} attempt{'s' if attempt else ''} over {elapsed:.1f} s"
        if code == grpc.StatusCode.UNAVAILABLE:
            return RewardServiceUnavailable(
                f"reward service at {self.address} is unreachable {tries} ({details}); is `reward-server` "
                f"running there? (address: the `address` argument or ${ENV_ADDRESS}"
                f"{'; TLS with ' + self.tls_ca if self.tls_ca else '; plaintext'})")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return RewardServiceCallError(
                f"{method}: UNAUTHENTICATED: {details} (pass api_key=... or set ${ENV_API_KEY})", code)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _retry_after(e) is not None:
            return RewardServiceCallError(f"{method}: RESOURCE_EXHAUSTED {tries}: {details}", code)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return RewardServiceCallError(
                f"{method}: DEADLINE_EXCEEDED: no answer from {self.address} within the {self.timeout_s:.0f} s "
                f"deadline (raise timeout_s for slow verifiers)", code)
        return RewardServiceCallError(f"{method}: {code.name}: {details}", code)

    # -- RPCs ---------------------------------------------------------------------
    def score(self, samples: Sequence[pb.Sample], spec: pb.RewardSpec | None = None, *, run_id: str = "",
              step: int = 0, timeout_s: float | None = None) -> list[pb.SampleResult]:
        """Score a batch in one request; results in request order."""
        request = pb.ScoreRequest(run_id=run_id, step=int(step), samples=list(samples), spec=spec)
        results = list(self.call("Score", request, timeout_s=timeout_s).results)
        if len(results) != len(samples):
            raise RewardServiceCallError(f"Score: {len(samples)} samples sent, {len(results)} results came back")
        return results

    def start_run(self, name: str, config: Mapping[str, Any] | None = None, run_id: str = "") -> str:
        """Start (or, for an existing `run_id` of the caller's team, resume) a run; returns its id."""
        request = pb.StartRunRequest(name=name, config=to_struct(config), run_id=run_id)
        try:
            return self.call("StartRun", request).run_id
        except RewardServiceCallError as e:
            # Several processes starting the same run_id at once: one insert wins, the others
            # fail; starting it again resumes the run the winner created.
            if run_id and e.code == grpc.StatusCode.INTERNAL:
                return self.call("StartRun", request).run_id
            raise

    def log_step(self, run_id: str, step: int, metrics: Mapping[str, float]) -> None:
        self.call("LogStep", pb.LogStepRequest(run_id=run_id, step=int(step),
                                               metrics={k: float(v) for k, v in metrics.items()}))

    def finish_run(self, run_id: str, state: str = "finished",
                   summary: Mapping[str, float] | None = None) -> pb.Run:
        return self.call("FinishRun", pb.FinishRunRequest(
            run_id=run_id, state=state, summary={k: float(v) for k, v in (summary or {}).items()}))

    def get_run(self, run_id: str) -> pb.Run:
        return self.call("GetRun", pb.GetRunRequest(run_id=run_id))

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _retry_after(err: grpc.RpcError) -> float | None:
    try:
        for key, value in err.trailing_metadata() or ():
            if key == "retry-after-s":
                return max(0.0, float(value))
    except (AttributeError, TypeError, ValueError):
        pass
    return None
