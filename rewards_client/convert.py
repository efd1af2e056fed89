"""The one conversion layer between Python values and the contract's messages (rewards.v1).

Samples: `make_sample(id, completion, prompt=, reference=, metadata=, spec=)`. A reference
goes as a `google.protobuf.Value`: strings as they are, numbers as their decimal string
(verifiers take gold answers as strings, and a double would lose digits of a large
integer), booleans as booleans, dicts and lists as Struct / ListValue (test cases,
rubrics); numpy / torch values and OmegaConf containers are made plain first (`plain`).

Specs: `build_spec(spec)` takes every accepted form (a stored spec's name "math-r1" or
"math-r1@3", components, a dict with routes, a JSON string); `make_spec(components,
routes)` the trainer's. A component is a verifier name, a mapping or an object (e.g. the
trainer's config.RewardComponent) with `name` and optional `version`, `weight`,
`params`, `gate`, `gate_min`. A given weight is sent with `weight_set` (0 = logged only).

Results: `SampleScore` / `ComponentScore` (frozen dataclasses); status names come from
one table, `STATUS_NAMES`, derived from the proto's `Status` enum ("OK", "ABSTAIN",
"TIMEOUT", "ERROR", "UNSPECIFIED"). A reward is set only when its status is "OK".
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2
from rewards.v1 import rewards_pb2 as pb

from .channel import ENV_SPEC

# --- statuses -------------------------------------------------------------------------

STATUS_NAMES: dict[int, str] = {v.number: v.name.removeprefix("STATUS_")
                                for v in pb.Status.DESCRIPTOR.values}
STATUS_VALUES: dict[str, int] = {name: number for number, name in STATUS_NAMES.items()}


def status_name(status: int) -> str:
    """"OK" for pb.STATUS_OK (1), ...; an unknown number gives its decimal string."""
    return STATUS_NAMES.get(status, str(status))


def status_value(name: str | int) -> int:
    """The proto enum number of a status name ("ok", "OK" or "STATUS_OK").
    Raises ValueError naming the accepted names."""
    if isinstance(name, int):
        return name
    key = str(name).strip().upper().removeprefix("STATUS_")
    if key not in STATUS_VALUES:
        raise ValueError(f"status: {name!r} is not one of {', '.join(STATUS_VALUES)}")
    return STATUS_VALUES[key]


# --- values ---------------------------------------------------------------------------

def plain(obj: Any) -> Any:
    """A JSON-able copy of `obj`: numpy scalars/arrays, torch tensors, tuples, sets and
    OmegaConf containers become Python values; anything else unknown becomes its str()."""
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
    """A `google.protobuf.Value` for a reference (see the module docstring); None gives an
    unset Value."""
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
    """A Struct of a mapping (values made plain(); numbers become doubles)."""
    s = struct_pb2.Struct()
    if obj:
        s.update(plain(dict(obj)))
    return s


def from_value(value: struct_pb2.Value) -> Any:
    """The Python value of a Value (an unset one gives None)."""
    return json_format.MessageToDict(value) if value.WhichOneof("kind") else None


def message_to_dict(message: Any) -> dict[str, Any]:
    """A JSON-able dict of any contract message (field names as in the proto; enums as
    their names, e.g. "STATUS_OK"; int64 as strings, as proto3 JSON writes them)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# --- specs ----------------------------------------------------------------------------

_COMPONENT_KEYS = ("name", "version", "weight", "params", "gate", "gate_min")


def verifier_ref(c: Any, where: str = "component") -> pb.VerifierRef:
    """One spec component as a VerifierRef: a verifier name ("math"), a mapping
    {name, version?, weight?, params?, gate?, gate_min?}, an object with those attributes
    (e.g. trainer_client.config.RewardComponent), or a VerifierRef (used as is).
    Raises ValueError naming `where` and the bad key."""
    if isinstance(c, pb.VerifierRef):
        return c
    if isinstance(c, str):
        return pb.VerifierRef(name=c)
    if not isinstance(c, Mapping) and isinstance(getattr(c, "name", None), str):
        c = {k: getattr(c, k) for k in _COMPONENT_KEYS if getattr(c, k, None) is not None}
    if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
        raise ValueError(f"{where}: a component is a verifier name or {{name, weight?, params?, version?, "
                         f"gate?, gate_min?}}, got {c!r}")
    unknown = set(c) - set(_COMPONENT_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown component keys {sorted(unknown)} ({', '.join(_COMPONENT_KEYS)})")
    ref = pb.VerifierRef(name=c["name"], version=str(c.get("version") or ""), gate=bool(c.get("gate", False)))
    if c.get("weight") is not None:
        ref.weight, ref.weight_set = float(c["weight"]), True
    if c.get("params"):
        ref.params.update(plain(dict(c["params"])))
    if c.get("gate_min") is not None:
        ref.gate_min = float(c["gate_min"])
    return ref


def build_spec(spec: Any = None) -> pb.RewardSpec:
    """A `RewardSpec` from any of the accepted forms:

    - None: an empty spec (samples carry their own, or the server's default applies);
    - a `RewardSpec` message, used as is;
    - a stored spec's name, "math-r1" (its newest version) or "math-r1@2";
    - a JSON string of one of the forms below (e.g. from $REWARD_SPEC);
    - a list of components: ["format", {"name": "math", "weight": 0.8, "params": {...}}];
    - a dict {"components": [...], "routes": {"code": [...], "*": [...]}, "task_key": "task"}
      or {"name": "math-r1"}.

    Raises ValueError naming the offending part.
    """
    if spec is None:
        return pb.RewardSpec()
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
        out = pb.RewardSpec(name=str(spec.get("name") or ""), task_key=str(spec.get("task_key") or ""))
        out.components.extend(verifier_ref(c, f"spec.components[{i}]")
                              for i, c in enumerate(spec.get("components") or []))
        for task, comps in (spec.get("routes") or {}).items():
            out.routes[str(task)].components.extend(
                verifier_ref(c, f"spec.routes[{task}][{i}]") for i, c in enumerate(comps))
        return out
    if isinstance(spec, Iterable):
        return pb.RewardSpec(components=[verifier_ref(c, f"spec[{i}]") for i, c in enumerate(spec)])
    raise ValueError(f"spec: expected a stored spec name, a list of components or a dict, got "
                     f"{type(spec).__name__}")


def make_spec(components: Iterable[Any], routes: Mapping[str, Iterable[Any]] | None = None, *,
              task_key: str = "") -> pb.RewardSpec:
    """RewardSpec of inline components (applied to every sample) and `routes` (task ->
    components, for the samples whose metadata[task_key or "task"] is that task; "*" = any
    other task). Components in any form verifier_ref() takes. Raises ValueError."""
    return build_spec({"components": list(components), "routes": dict(routes or {}),
                       "task_key": task_key})


def stored_spec_ref(name: str, version: int = 0) -> pb.RewardSpec:
    """A RewardSpec naming a stored spec: "name" (newest) or, with `version`, "name@version"."""
    return pb.RewardSpec(name=f"{name}@{version}" if version else name)


# --- samples --------------------------------------------------------------------------

def make_sample(sample_id: str, completion: str, *, prompt: str = "", reference: Any = None,
                metadata: Mapping[str, Any] | None = None, spec: Any = None) -> pb.Sample:
    """One Sample. `reference` as to_value() encodes it; `metadata` a JSON-able mapping
    (e.g. {"task": "code"} picks a route); `spec` (any build_spec() form) overrides the
    request's spec for this sample."""
    sample = pb.Sample(id=str(sample_id), prompt=prompt or "", completion=completion)
    if reference is not None:
        sample.reference.CopyFrom(to_value(reference))
    if metadata:
        sample.metadata.CopyFrom(to_struct(metadata))
    if spec is not None:
        sample.spec.CopyFrom(build_spec(spec))
    return sample


def as_sample(sample: Any, index: int = 0) -> pb.Sample:
    """A Sample from a Sample message or a mapping {id?, completion, prompt?, reference?,
    metadata?, spec?} (id defaults to the index). Raises ValueError."""
    if isinstance(sample, pb.Sample):
        return sample
    if isinstance(sample, Mapping):
        unknown = set(sample) - {"id", "completion", "prompt", "reference", "metadata", "spec"}
        if unknown:
            raise ValueError(f"samples[{index}]: unknown keys {sorted(unknown)}")
        if not isinstance(sample.get("completion"), str):
            raise ValueError(f"samples[{index}].completion: a string is required")
        return make_sample(str(sample.get("id", index)), sample["completion"],
                           prompt=sample.get("prompt") or "", reference=sample.get("reference"),
                           metadata=sample.get("metadata"), spec=sample.get("spec"))
    raise ValueError(f"samples[{index}]: expected make_sample(...) or a dict, got {type(sample).__name__}")


# --- results --------------------------------------------------------------------------

@dataclass(frozen=True)
class ComponentScore:
    """One verifier's verdict on a sample; `reward` is set only when status == "OK"."""

    name: str
    status: str                 # "OK" | "ABSTAIN" | "TIMEOUT" | "ERROR" | "UNSPECIFIED"
    reward: float | None
    reason: str = ""
    version: str = ""
    weight: float = 1.0
    latency_ms: float = 0.0
    cached: bool = False
    gate: bool = False
    params_hash: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "OK"


@dataclass(frozen=True)
class SampleScore:
    """One completion's score: the weighted reward (set only when status == "OK"; a gate
    that fails makes it 0) and its components, in spec order."""

    status: str
    reward: float | None
    reason: str = ""
    components: tuple[ComponentScore, ...] = field(default_factory=tuple)
    id: str = ""
    sample_index: int = 0
    latency_ms: float = 0.0
    spec_name: str = ""         # the stored spec used, if any
    spec_version: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def component(self, name: str) -> ComponentScore | None:
        return next((c for c in self.components if c.name == name), None)


def component_score(c: pb.ComponentResult) -> ComponentScore:
    return ComponentScore(c.name, status_name(c.status), c.reward if c.HasField("reward") else None,
                          c.reason, c.version, c.weight, c.latency_ms, c.cached, c.gate, c.params_hash)


def sample_score(r: pb.SampleResult) -> SampleScore:
    """A SampleScore of a SampleResult message."""
    reward = r.reward if r.status == pb.STATUS_OK and r.HasField("reward") else None
    return SampleScore(status_name(r.status), reward, r.reason,
                       tuple(component_score(c) for c in r.components), r.id, r.sample_index,
                       r.latency_ms, r.spec_name, r.spec_version)


sample_score_from_proto = sample_score   # the trainer client's old name
