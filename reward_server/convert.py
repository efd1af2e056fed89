"""Conversions between `rewards.v1` messages and the scoring/store domain types. Pure."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from google.protobuf import json_format, struct_pb2

from rewards.v1 import rewards_pb2 as pb
from verifiers.core import Status

from .errors import InvalidRequestError
from .scoring import Component, SampleInput, SampleOutcome, build_component, check_sample, reference_text, sha256
from .store.models import Run, ScoreRow

STATUS_TO_PB = {Status.OK: pb.STATUS_OK, Status.ABSTAIN: pb.STATUS_ABSTAIN,
                Status.TIMEOUT: pb.STATUS_TIMEOUT, Status.ERROR: pb.STATUS_ERROR}
PB_TO_STATUS = {v: k for k, v in STATUS_TO_PB.items()}


def value_to_py(msg: struct_pb2.Value | struct_pb2.Struct) -> Any:
    return json_format.MessageToDict(msg)


def py_to_struct(d: dict[str, Any] | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        s.update(json.loads(json.dumps(d, default=str)))
    return s


def spec_components(spec: pb.RewardSpec, where: str, timeout_override_s: float | None) -> tuple[Component, ...]:
    comps = []
    for j, ref in enumerate(spec.components):
        raw: dict[str, Any] = {"name": ref.name, "version": ref.version,
                               "weight": ref.weight if (ref.weight_set or ref.weight != 0) else 1.0}
        if ref.HasField("params"):
            raw["params"] = value_to_py(ref.params)
        comps.append(build_component(raw, f"{where}.components[{j}]", timeout_override_s))
    return tuple(comps)


def samples_from_pb(samples: Any, default_spec: pb.RewardSpec, where: str,
                    timeout_override_s: float | None) -> list[SampleInput]:
    """Validate and convert request samples. Raises InvalidRequestError / UnknownVerifierError."""
    default = spec_components(default_spec, f"{where}.spec", timeout_override_s) if default_spec.components else ()
    out = []
    for i, s in enumerate(samples):
        w = f"{where}.samples[{i}]"
        comps = spec_components(s.spec, f"{w}.spec", timeout_override_s) if s.spec.components else default
        reference = value_to_py(s.reference) if s.HasField("reference") else None
        meta = value_to_py(s.metadata) if s.HasField("metadata") else {}
        sample = SampleInput(index=i, id=s.id, prompt=s.prompt, completion=s.completion,
                             reference=reference, components=comps, metadata=meta)
        check_sample(sample, w)
        out.append(sample)
    if not out:
        raise InvalidRequestError(f"{where}.samples: empty; send at least one sample")
    return out


def outcome_to_pb(o: SampleOutcome) -> pb.SampleResult:
    res = pb.SampleResult(id=o.sample.id, status=STATUS_TO_PB[o.status], reason=o.reason,
                          latency_ms=o.latency_ms, sample_index=o.sample.index)
    if o.reward is not None:
        res.reward = o.reward
    for co in o.components:
        c = pb.ComponentResult(name=co.component.name, version=co.component.version, weight=co.component.weight,
                               status=STATUS_TO_PB[co.result.status], reason=co.result.reason,
                               latency_ms=co.latency_ms, params_hash=co.component.params_hash)
        if co.result.reward is not None:
            c.reward = co.result.reward
        res.components.append(c)
    return res


def new_request_id() -> str:
    return uuid.uuid4().hex


def outcome_rows(o: SampleOutcome, *, run_id: str | None, step: int | None, group_id: str,
                 request_id: str, store_texts: bool) -> list[dict[str, Any]]:
    """The store rows (one per component) of one scored sample."""
    s = o.sample
    ref = reference_text(s.reference) if s.reference is not None else ""
    base = dict(run_id=run_id or None, step=step, request_id=request_id, group_id=group_id,
                sample_index=s.index, sample_id=str(s.id)[:128], total_status=o.status.value,
                total_reward=o.reward, prompt_sha256=sha256(s.prompt), completion_sha256=sha256(s.completion),
                reference_sha256=sha256(ref), prompt_text=s.prompt if store_texts else None,
                completion_text=s.completion if store_texts else None, reference_json=ref if store_texts else None)
    return [dict(base, component_index=j, verifier=co.component.name, verifier_version=co.component.version,
                 params=co.component.params_json, params_hash=co.component.params_hash, weight=co.component.weight,
                 status=co.result.status.value, reward=co.result.reward, reason=co.result.reason,
                 latency_ms=co.latency_ms, worker=co.worker)
            for j, co in enumerate(o.components)]


def iso(dt: datetime | None) -> str:
    """RFC 3339 in UTC; SQLite hands datetimes back naive, and they were stored as UTC."""
    if dt is None:
        return ""
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).isoformat()


def run_to_pb(run: Run, last_step: int = -1, score_count: int = 0) -> pb.Run:
    return pb.Run(run_id=run.id, name=run.name, state=run.state,
                  created_at=iso(run.created_at), finished_at=iso(run.finished_at),
                  last_step=last_step, score_count=score_count, config=py_to_struct(run.config))


def score_row_to_pb(r: ScoreRow) -> pb.ScoreRecord:
    rec = pb.ScoreRecord(score_id=r.id, run_id=r.run_id or "", step=r.step or 0, group_id=r.group_id,
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
    return rec
