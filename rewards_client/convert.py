"""The one conversion layer between Python values and the contract's messages (rewards.v1).

Samples: `make_sample(id, completion, prompt=, reference=, metadata=, spec=)`. A reference
goes as a `google.protobuf.Value`: strings as they are, numbers as their decimal string
(verifiers take gold answers as strings, and a double would lose digits of a large
integer; numpy / torch floats with the digits of their own precision: np.float32(0.1) ->
"0.1"), booleans as booleans, bytes as their UTF-8 text, dicts and lists as Struct /
ListValue (test cases, rubrics). What a Struct would change is refused with a TypeError /
ValueError naming the field ("metadata.seed", "reference.tests[0]") rather than sent:
NaN or inf (a missing value in a pandas column), integers beyond 2**53 inside objects,
metadata and params (pass them as str), non-str keys, a non-str completion or prompt.

Specs: `build_spec(spec)` takes every accepted form (a stored spec's name "math-r1" or
"math-r1@3", components, a dict with routes, a JSON string); `make_spec(components,
routes)` the trainer's. A component is a verifier name, a mapping or an object (e.g. the
trainer's config.RewardComponent) with `name` and optional `version`, `weight`,
`params`, `gate`, `gate_min`. A given weight is sent with `weight_set` (0 = logged only).
Types are checked, naming the field ("spec[0].gate"): name a non-empty str, version a str
("2.0.0", not 2 or 1.10), weight and gate_min finite numbers (not "0.5" or True), gate a
bool (not "false"), params a mapping, components and routes' values lists (not a str).

Results: `SampleScore` / `ComponentScore` (frozen dataclasses); status names come from
one table, `STATUS_NAMES`, derived from the proto's `Status` enum ("OK", "ABSTAIN",
"TIMEOUT", "ERROR", "UNSPECIFIED"). A reward is set only when its status is "OK".
"""
from __future__ import annotations

import json
import math
import operator
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

_EXACT_INT = 2 ** 53   # a Struct number is a double: integers beyond this lose digits
_NOT_FINITE = "is not a value to score against (NaN or inf: a missing or broken value in the data?)"


def plain(obj: Any) -> Any:
    """A JSON-able copy of `obj`: numpy scalars/arrays, torch tensors, tuples, sets and
    OmegaConf containers become Python values, bytes their UTF-8 text; anything else
    unknown becomes its str(). Lenient (keys become str): for configs stored verbatim."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return float(obj)           # np.float64 is a float whose repr is "np.float64(x)"
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", errors="replace")
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if hasattr(obj, "tolist"):      # numpy arrays and scalars, torch tensors
        return plain(obj.tolist())
    if isinstance(obj, (Sequence, set, frozenset)):
        return [plain(v) for v in obj]  # lists, tuples, OmegaConf ListConfig
    if hasattr(obj, "item"):
        return plain(obj.item())
    return str(obj)


def _checked(obj: Any, where: str) -> Any:
    """plain(obj) for a message field, strict where a Struct would change the value: keys
    must be str (TypeError), numbers finite and integers within 2**53 (ValueError), bytes
    valid UTF-8 (ValueError). Errors name the field path `where` (e.g. "metadata.task")."""
    if isinstance(obj, (bytes, bytearray)):
        try:
            return bytes(obj).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{where}: bytes that are not UTF-8 text; pass a str") from None
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be str, got {type(k).__name__} {k!r}")
            out[k] = _checked(v, f"{where}.{k}")
        return out
    if not isinstance(obj, (str, bool, int, float, type(None))) and \
            (hasattr(obj, "tolist") or isinstance(obj, (Sequence, set, frozenset))):
        items = obj.tolist() if hasattr(obj, "tolist") else list(obj)
        if not isinstance(items, list):     # a numpy / torch scalar
            return _checked(items, where)
        return [_checked(v, f"{where}[{i}]") for i, v in enumerate(items)]
    obj = plain(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where}: {obj!r} {_NOT_FINITE}")
    if isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) > _EXACT_INT:
        raise ValueError(f"{where}: {_short(obj)} is beyond a double's exact integers (2**53); pass it as a str")
    return obj


def integer(v: Any, where: str) -> int:
    """`v` as an int: an int or a numpy / torch integer, not a bool, a str ("007") or a
    float (1.9), which int() would turn into another number silently. Raises TypeError
    naming `where`."""
    if _is_bool(v) or isinstance(v, bool) or not hasattr(v, "__index__"):
        raise TypeError(f"{where}: an int, got {type(v).__name__} {_short(v)}")
    return operator.index(v)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _scalar_text(obj: Any) -> str | None:
    """The decimal text of a number (numpy / torch scalars included), with the digits of
    its own precision (np.float32(0.1) -> "0.1"); None when `obj` is not a number."""
    if isinstance(obj, bool):
        return None
    if hasattr(obj, "detach") and getattr(obj, "ndim", None) == 0:    # a torch scalar
        try:
            obj = obj.detach().cpu().numpy()[()]
        except (TypeError, RuntimeError):   # bfloat16 has no numpy type: a Python number
            obj = obj.item()
    if type(obj).__module__ == "numpy" and getattr(obj, "ndim", None) == 0:
        if obj.dtype.kind == "f":
            if not math.isfinite(float(obj)):
                return repr(float(obj))
            return str(obj)                 # numpy's shortest text for its own precision
        if obj.dtype.kind in "iu":
            return str(int(obj))
        return None
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, float):
        return float.__repr__(obj)          # np.float64 is a float whose repr is "np.float64(x)"
    return None


def to_value(obj: Any, where: str = "reference") -> struct_pb2.Value:
    """A `google.protobuf.Value` for a reference (see the module docstring); None gives an
    unset Value. Raises ValueError / TypeError naming `where` for NaN or inf, integers a
    double cannot hold inside objects, non-str keys, bytes that are not UTF-8."""
    value = struct_pb2.Value()
    if obj is None:
        return value
    if isinstance(obj, struct_pb2.Value):
        value.CopyFrom(obj)
        return value
    text = _scalar_text(obj)
    if text is not None:
        if text in ("nan", "inf", "-inf"):
            raise ValueError(f"{where}: {text} {_NOT_FINITE}")
        value.string_value = text
        return value
    obj = _checked(obj, where)
    if obj is None:
        return value
    if isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, bool):
        value.bool_value = obj
    else:
        holder = struct_pb2.Struct()
        holder.update({"v": obj})
        value.CopyFrom(holder.fields["v"])
    return value


def to_struct(obj: Mapping[str, Any] | None, where: str = "") -> struct_pb2.Struct:
    """A Struct of a mapping (numbers become doubles). With `where` (a field name), strict:
    raises TypeError / ValueError naming the field for what a Struct would change (see
    _checked); without, lenient (plain()), for configs stored verbatim."""
    s = struct_pb2.Struct()
    if obj is None:
        return s
    if not isinstance(obj, Mapping):
        raise TypeError(f"{where or 'struct'}: a mapping is required, got {type(obj).__name__}")
    if obj:
        s.update(_checked(obj, where) if where else plain(dict(obj)))
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
        if not c:
            raise ValueError(f"{where}.name: empty; give a verifier name (e.g. 'math')")
        return pb.VerifierRef(name=c)
    if not isinstance(c, Mapping) and isinstance(getattr(c, "name", None), str):
        c = {k: getattr(c, k) for k in _COMPONENT_KEYS if getattr(c, k, None) is not None}
    if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
        raise ValueError(f"{where}: a component is a verifier name or {{name, weight?, params?, version?, "
                         f"gate?, gate_min?}}, got {c!r}")
    unknown = set(c) - set(_COMPONENT_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown component keys {sorted(unknown)} ({', '.join(_COMPONENT_KEYS)})")
    if not c["name"]:
        raise ValueError(f"{where}.name: empty; give a verifier name (e.g. 'math')")
    version = c.get("version")
    if version is not None and not isinstance(version, str):
        # 1.10 would be sent as "1.1", 0 as "" (the newest): a version is text, e.g. "2.0.0"
        raise TypeError(f"{where}.version: a str such as '2.0.0', got {type(version).__name__} {version!r}")
    gate = c.get("gate")
    if gate is not None and not _is_bool(gate):
        raise TypeError(f"{where}.gate: a bool, got {type(gate).__name__} {gate!r}")
    ref = pb.VerifierRef(name=c["name"], version=version or "", gate=bool(gate))
    if c.get("weight") is not None:
        ref.weight, ref.weight_set = _finite(c["weight"], f"{where}.weight"), True
    params = c.get("params")
    if params is not None:
        if not isinstance(params, Mapping):
            raise TypeError(f"{where}.params: a mapping, got {type(params).__name__}")
        ref.params.CopyFrom(to_struct(params, f"{where}.params"))
    if c.get("gate_min") is not None:
        ref.gate_min = _finite(c["gate_min"], f"{where}.gate_min")
    return ref


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or (type(v).__module__ == "numpy" and getattr(v, "dtype", None) is not None
                                   and v.dtype.kind == "b" and getattr(v, "ndim", None) == 0)


def _finite(v: Any, where: str) -> float:
    """`v` as a finite float: a real number (numpy / torch scalars too), not a bool or a str.
    Raises TypeError / ValueError naming `where`."""
    if _is_bool(v) or isinstance(v, (str, bytes)) or not hasattr(v, "__float__"):
        raise TypeError(f"{where}: a number, got {type(v).__name__} {_short(v)}")
    try:
        f = float(v)
    except (OverflowError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: {_short(v)} is not a float ({e})") from None
    if not math.isfinite(f):
        raise ValueError(f"{where}: must be finite, got {f}")
    return f


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
        for key in ("name", "task_key"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise TypeError(f"spec.{key}: a str, got {type(spec[key]).__name__} {spec[key]!r}")
        out = pb.RewardSpec(name=spec.get("name") or "", task_key=spec.get("task_key") or "")
        out.components.extend(verifier_ref(c, f"spec.components[{i}]")
                              for i, c in enumerate(_component_list(spec.get("components"), "spec.components")))
        routes = spec.get("routes") or {}
        if not isinstance(routes, Mapping):
            raise TypeError(f"spec.routes: a mapping task -> components, got {type(routes).__name__}")
        for task, comps in routes.items():
            out.routes[str(task)].components.extend(
                verifier_ref(c, f"spec.routes[{task}][{i}]")
                for i, c in enumerate(_component_list(comps, f"spec.routes[{task}]")))
        return out
    if isinstance(spec, (bytes, bytearray)):
        raise TypeError("spec: bytes; give a str (a stored spec name or JSON) or components")
    if isinstance(spec, Iterable):
        return pb.RewardSpec(components=[verifier_ref(c, f"spec[{i}]") for i, c in enumerate(spec)])
    raise ValueError(f"spec: expected a stored spec name, a list of components or a dict, got "
                     f"{type(spec).__name__}")


def _component_list(comps: Any, where: str) -> list[Any]:
    """A list of components (None: none). A str or a mapping here is a mistake (a str would be
    iterated letter by letter): raises TypeError naming `where`."""
    if comps is None:
        return []
    if isinstance(comps, (str, bytes, Mapping)) or not isinstance(comps, Iterable):
        raise TypeError(f"{where}: a list of components, got {type(comps).__name__} {comps!r}")
    return list(comps)


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

def make_sample(sample_id: str | int, completion: str, *, prompt: str | None = "", reference: Any = None,
                metadata: Mapping[str, Any] | None = None, spec: Any = None) -> pb.Sample:
    """One Sample. `sample_id` a str or an int (numpy ints too); `completion` and `prompt`
    str (bytes as UTF-8); `reference` as to_value() encodes it; `metadata` a mapping of
    str keys to JSON-able values (e.g. {"task": "code"} picks a route); `spec` (any
    build_spec() form) overrides the request's spec for this sample. Raises TypeError /
    ValueError naming the field (before anything is sent)."""
    if isinstance(sample_id, str):
        sid = sample_id
    elif _is_bool(sample_id) or sample_id is None or not hasattr(sample_id, "__index__"):
        raise TypeError(f"sample_id: a str or an int, got {type(sample_id).__name__} {sample_id!r}")
    else:
        sid = str(operator.index(sample_id))
    sample = pb.Sample(id=sid, prompt=_text(prompt, "prompt", optional=True),
                       completion=_text(completion, "completion"))
    if reference is not None:
        sample.reference.CopyFrom(to_value(reference, "reference"))
    if metadata is not None:
        md = to_struct(metadata, "metadata")
        if md.fields:
            sample.metadata.CopyFrom(md)
    if spec is not None:
        sample.spec.CopyFrom(build_spec(spec))
    return sample


def _text(v: Any, where: str, optional: bool = False) -> str:
    if v is None and optional:
        return ""
    if isinstance(v, (bytes, bytearray)):
        return _checked(v, where)
    if not isinstance(v, str):
        hint = " (render chat messages to text first)" if isinstance(v, (list, tuple)) else ""
        raise TypeError(f"{where}: a str, got {type(v).__name__}{hint}")
    return v


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
        return make_sample(sample.get("id", index), sample["completion"],
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


def mismatch(what: str, samples: Sequence[pb.Sample], results: Sequence[pb.SampleResult]) -> str:
    """Why `results` are not the answers to `samples`, one by one (count, then each id), or
    "" when they are: results are matched by position, so a broken answer must not pass."""
    if len(results) != len(samples):
        return f"{what}: {len(samples)} samples sent, {len(results)} result(s) came back"
    for i, (s, r) in enumerate(zip(samples, results)):
        if r.id != s.id:
            return f"{what}: result {i} is for sample {r.id!r}, sample {i} is {s.id!r}"
    return ""


sample_score_from_proto = sample_score   # the trainer client's old name
