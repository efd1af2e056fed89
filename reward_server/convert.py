"""Conversions between `rewards.v1` messages and the scoring/store domain types. Pure."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, struct_pb2

from rewards.v1 import rewards_pb2 as pb
from verifiers.core import Status

from .errors import InvalidRequestError, TooLargeError
from .scoring import (Component, SampleInput, SampleOutcome, Spec, build_component, check_sample, reference_text,
                      sha256)
from .store.models import Run, ScoreRow

STATUS_TO_PB = {Status.OK: pb.STATUS_OK, Status.ABSTAIN: pb.STATUS_ABSTAIN,
                Status.TIMEOUT: pb.STATUS_TIMEOUT, Status.ERROR: pb.STATUS_ERROR}
PB_TO_STATUS = {v: k for k, v in STATUS_TO_PB.items()}


def value_to_py(msg: struct_pb2.Value | struct_pb2.Struct, field: str = "value") -> Any:
    """A Struct/Value as plain JSON data. Raises InvalidRequestError (NaN or infinity, which
    JSON cannot hold)."""
    try:
        return json_format.MessageToDict(msg)
    except ValueError as e:
        raise InvalidRequestError(f"{field}: {e}") from None


def py_to_struct(d: dict[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        s.update(json.loads(json.dumps(d, default=str)))
    return s


@dataclass(frozen=True)
class Limits:
    """Size limits checked on the decoded message before any validation or parsing, so that
    what a request costs to validate is bounded (ServerConfig holds the configured values)."""

    max_components_per_sample: int = 32
    max_components_per_request: int = 8192
    max_spec_routes: int = 64
    max_spec_bytes: int = 256 << 10


DEFAULT_LIMITS = Limits()
GROUP_ID_MAX_CHARS = 128  # the column's width (store.models.ScoreRow.group_id)


def check_spec_size(spec: pb.RewardSpec, where: str, limits: Limits) -> None:
    """Refuse a spec over the size limits (TooLargeError, RESOURCE_EXHAUSTED) using only
    counts the decoded message already holds; nothing in it is parsed first."""
    if len(spec.routes) > limits.max_spec_routes:
        raise TooLargeError(f"{where}.routes: {len(spec.routes)} routes, the limit is {limits.max_spec_routes}")
    if len(spec.components) > limits.max_components_per_sample:
        raise TooLargeError(f"{where}.components: {len(spec.components)} components, the limit is "
                            f"{limits.max_components_per_sample} per sample")
    for task, lst in spec.routes.items():
        if len(lst.components) > limits.max_components_per_sample:
            raise TooLargeError(f"{where}.routes[{task[:40]}].components: {len(lst.components)} components, the "
                                f"limit is {limits.max_components_per_sample} per sample")
    if (n := spec.ByteSize()) > limits.max_spec_bytes:
        raise TooLargeError(f"{where}: {n} bytes, the limit is {limits.max_spec_bytes} per spec")


def _component_bound(spec: pb.RewardSpec) -> int:
    """Most components a sample scored by `spec` can have (a stored spec's count is unknown
    here: 0; it is counted after lookup)."""
    return len(spec.components) + max((len(r.components) for r in spec.routes.values()), default=0)


def check_storable(text: str, field: str) -> None:
    """A text the score store must hold: PostgreSQL text cannot contain NUL."""
    if "\x00" in text:
        raise InvalidRequestError(f"{field}: contains a NUL character (\\x00 at offset {text.index(chr(0))}), which "
                                  f"the score store cannot hold; remove it")


def check_group_id(group_id: str, where: str) -> None:
    if not group_id:
        raise InvalidRequestError(f"{where}.group_id: required (unique within the run's step)")
    if len(group_id) > GROUP_ID_MAX_CHARS:
        raise InvalidRequestError(f"{where}.group_id: {len(group_id)} characters, at most {GROUP_ID_MAX_CHARS}")
    check_storable(group_id, f"{where}.group_id")


# (name, version or 0 for newest) -> (name, version, body); raises RunNotFound-like LookupError
SpecLookup = Callable[[str, int], tuple[str, int, pb.RewardSpec]]


def parse_spec_ref(ref: str, where: str) -> tuple[str, int]:
    """"math-r1" -> ("math-r1", 0 = newest); "math-r1@3" -> ("math-r1", 3)."""
    name, _, version = ref.partition("@")
    if version and not version.isdigit():
        raise InvalidRequestError(f"{where}.name: version in {ref!r} must be an integer (name@3)")
    return name, int(version or 0)


def component_list(refs: Any, where: str, timeout_override_s: float | None) -> tuple[Component, ...]:
    comps = []
    for j, ref in enumerate(refs):
        raw: dict[str, Any] = {"name": ref.name, "version": ref.version, "gate": ref.gate,
                               "weight": ref.weight if (ref.weight_set or ref.weight != 0) else 1.0}
        if ref.HasField("gate_min"):
            raw["gate_min"] = ref.gate_min
        if ref.HasField("params"):
            raw["params"] = value_to_py(ref.params, f"{where}[{j}].params")
        comps.append(build_component(raw, f"{where}[{j}]", timeout_override_s))
    return tuple(comps)


def is_empty_spec(spec: pb.RewardSpec) -> bool:
    return not (spec.components or spec.name or spec.routes)


def spec_from_pb(spec: pb.RewardSpec, where: str, timeout_override_s: float | None,
                 lookup: SpecLookup | None = None) -> Spec:
    """Validate a spec message: inline components and routes, or a stored spec by name."""
    if spec.name:
        if spec.components or spec.routes:
            raise InvalidRequestError(f"{where}.name: a stored spec is used as a whole; "
                                      f"do not also give components or routes")
        if lookup is None:
            raise InvalidRequestError(f"{where}.name: stored specs need a server")
        name, version, body = lookup(*parse_spec_ref(spec.name, where))
        inner = spec_from_pb(body, f"{where}<{name}@{version}>", timeout_override_s)
        return Spec(inner.components, inner.routes, inner.task_key, name, version)
    routes = {task: component_list(lst.components, f"{where}.routes[{task}].components", timeout_override_s)
              for task, lst in spec.routes.items()}
    return Spec(component_list(spec.components, f"{where}.components", timeout_override_s), routes,
                spec.task_key or "task")


def samples_from_pb(samples: Any, default_spec: pb.RewardSpec, where: str, timeout_override_s: float | None,
                    lookup: SpecLookup | None = None, limits: Limits = DEFAULT_LIMITS) -> list[SampleInput]:
    """Validate and convert request samples. Raises InvalidRequestError / UnknownVerifierError,
    or TooLargeError for a spec or request over `limits` (checked before parsing each spec).
    Samples with the same spec message share one validation."""
    check_spec_size(default_spec, f"{where}.spec", limits)
    # An upper bound of the batch's components from counts alone, before any spec is parsed.
    bound, default_n = 0, _component_bound(default_spec)
    for s in samples:
        bound += default_n if is_empty_spec(s.spec) else _component_bound(s.spec)
    if bound > limits.max_components_per_request:
        raise TooLargeError(f"{where}.samples: {bound} components in one message (samples × components), the "
                            f"limit is {limits.max_components_per_request}; split the batch")
    default = None if is_empty_spec(default_spec) else spec_from_pb(default_spec, f"{where}.spec",
                                                                     timeout_override_s, lookup)
    seen: dict[bytes, Spec] = {}
    out = []
    total = 0
    for i, s in enumerate(samples):
        w = f"{where}.samples[{i}]"
        if is_empty_spec(s.spec):
            spec = default
        else:
            check_spec_size(s.spec, f"{w}.spec", limits)
            key = s.spec.SerializeToString(deterministic=True)
            spec = seen.get(key)
            if spec is None:
                spec = seen[key] = spec_from_pb(s.spec, f"{w}.spec", timeout_override_s, lookup)
        # The completion is not checked: it is the policy's output, and refusing a NUL in it would
        # hand a policy a way to turn a wrong answer into a group error that trainers leave out.
        # It is scored as sent and stored with each NUL written as the four characters \x00.
        for text, field in ((s.prompt, "prompt"), (s.id, "id")):
            check_storable(text, f"{w}.{field}")
        reference = value_to_py(s.reference, f"{w}.reference") if s.HasField("reference") else None
        if isinstance(reference, str):
            check_storable(reference, f"{w}.reference")
        meta = value_to_py(s.metadata, f"{w}.metadata") if s.HasField("metadata") else {}
        comps = spec.for_sample(meta, w) if spec else ()
        if len(comps) > limits.max_components_per_sample:
            raise TooLargeError(f"{w}.spec: {len(comps)} components with its route, the limit is "
                                f"{limits.max_components_per_sample} per sample")
        total += len(comps)
        if total > limits.max_components_per_request:
            raise TooLargeError(f"{where}.samples: more than {limits.max_components_per_request} components in one "
                                f"message (samples × components); split the batch")
        sample = SampleInput(index=i, id=s.id, prompt=s.prompt, completion=s.completion, reference=reference,
                             components=comps, metadata=meta, spec_name=spec.name if spec else "",
                             spec_version=spec.version if spec else 0)
        check_sample(sample, w)
        out.append(sample)
    if not out:
        raise InvalidRequestError(f"{where}.samples: empty; send at least one sample")
    return out


def stored_bytes(samples: list[SampleInput]) -> int:
    """Bytes of text a batch stores: each component's row repeats its sample's texts."""
    return sum((len(s.prompt) + len(s.completion) + len(reference_text(s.reference) if s.reference is not None
                                                          else "")) * len(s.components) for s in samples)


def group_signature(samples: list[SampleInput]) -> set[tuple]:
    """What storing these samples as a group records (store.ScoreStore.group_signature)."""
    out = set()
    for s in samples:
        ref = sha256(reference_text(s.reference) if s.reference is not None else "")
        for j, c in enumerate(s.components):
            out.add((s.index, j, c.name, c.params_hash, c.weight, c.gate, sha256(s.prompt), sha256(s.completion),
                     ref))
    return out


def outcome_to_pb(o: SampleOutcome) -> pb.SampleResult:
    res = pb.SampleResult(id=o.sample.id, status=STATUS_TO_PB[o.status], reason=o.reason,
                          latency_ms=o.latency_ms, sample_index=o.sample.index, spec_name=o.sample.spec_name,
                          spec_version=o.sample.spec_version)
    if o.reward is not None:
        res.reward = o.reward
    for co in o.components:
        c = pb.ComponentResult(name=co.component.name, version=co.component.version, weight=co.component.weight,
                               status=STATUS_TO_PB[co.result.status], reason=co.result.reason,
                               latency_ms=co.latency_ms, params_hash=co.component.params_hash,
                               cached=co.cached, gate=co.component.gate)
        if co.result.reward is not None:
            c.reward = co.result.reward
        res.components.append(c)
    return res


def new_request_id() -> str:
    return uuid.uuid4().hex


def outcome_rows(o: SampleOutcome, *, run_id: str | None, step: int | None, group_id: str, team: str,
                 request_id: str, store_texts: bool) -> list[dict[str, Any]]:
    """The store rows (one per component) of one scored sample."""
    s = o.sample
    ref = reference_text(s.reference) if s.reference is not None else ""
    base = dict(team=team, run_id=run_id or None, step=step, request_id=request_id, group_id=group_id,
                sample_index=s.index, sample_id=str(s.id)[:128], total_status=o.status.value,
                total_reward=o.reward, prompt_sha256=sha256(s.prompt), completion_sha256=sha256(s.completion),
                reference_sha256=sha256(ref), prompt_text=s.prompt if store_texts else None,
                completion_text=s.completion.replace("\x00", "\\x00") if store_texts else None, reference_json=ref if store_texts else None,
                spec_name=s.spec_name or None, spec_version=s.spec_version or None)
    return [dict(base, component_index=j, verifier=co.component.name, verifier_version=co.component.version,
                 params=co.component.params_json, params_hash=co.component.params_hash, weight=co.component.weight,
                 status=co.result.status.value, reward=co.result.reward,
                 reason=co.result.reason.replace("\x00", "\\x00"),  # a verifier may quote the completion
                 latency_ms=co.latency_ms, worker=co.worker, cached=co.cached, gate=co.component.gate)
            for j, co in enumerate(o.components)]


def iso(dt: datetime | None) -> str:
    """RFC 3339 in UTC; SQLite hands datetimes back naive, and they were stored as UTC."""
    if dt is None:
        return ""
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()


def parse_time(text: str, field: str) -> datetime | None:
    """RFC 3339 / ISO 8601 text -> aware UTC datetime (naive = UTC). Raises InvalidRequestError."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(f"{field}: {text!r} is not an RFC 3339 time (2026-11-22T08:00:00Z)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def run_to_pb(run: Run, last_step: int = -1, score_count: int = 0) -> pb.Run:
    return pb.Run(run_id=run.id, name=run.name, state=run.state, team=run.team, replay_of=run.replay_of or "",
                  created_at=iso(run.created_at), finished_at=iso(run.finished_at), summary=run.summary or {},
                  last_step=last_step, score_count=score_count, config=py_to_struct(run.config))


def score_row_to_pb(r: ScoreRow, include_texts: bool = False) -> pb.ScoreRecord:
    rec = pb.ScoreRecord(score_id=r.id, team=r.team, request_id=r.request_id, component_index=r.component_index,
                         params_json=json.dumps(r.params, sort_keys=True), worker=r.worker, cached=r.cached,
                         gate=r.gate, spec_name=r.spec_name or "", spec_version=r.spec_version or 0,
                         total_status=STATUS_TO_PB[Status(r.total_status)], texts_dropped=r.texts_dropped, run_id=r.run_id or "", step=r.step or 0, group_id=r.group_id,
                         sample_index=r.sample_index, sample_id=r.sample_id, verifier=r.verifier,
                         verifier_version=r.verifier_version, params_hash=r.params_hash, weight=r.weight,
                         status=STATUS_TO_PB[Status(r.status)], reason=r.reason, latency_ms=r.latency_ms,
                         prompt_sha256=r.prompt_sha256, completion_sha256=r.completion_sha256,
                         reference_sha256=r.reference_sha256,
                         created_at=iso(r.created_at))
    if r.reward is not None:
        rec.reward = r.reward
    if r.total_reward is not None:
        rec.total_reward = r.total_reward
    if include_texts:
        rec.prompt, rec.completion, rec.reference_json = (r.prompt_text or "", r.completion_text or "",
                                                          r.reference_json or "")
    return rec


def spec_to_json(spec: pb.RewardSpec) -> dict[str, Any]:
    return json_format.MessageToDict(spec, preserving_proto_field_name=True)


def spec_from_json(body: dict[str, Any]) -> pb.RewardSpec:
    return json_format.ParseDict(body, pb.RewardSpec())


def stored_spec_to_pb(row: Any) -> pb.StoredSpec:
    return pb.StoredSpec(name=row.name, version=row.version, spec=spec_from_json(row.body),
                         description=row.description, created_at=iso(row.created_at))
