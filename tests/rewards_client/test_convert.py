"""The one conversion layer, checked where it matters: on a real server. A large integer
reference keeps every digit; version, gate and gate_min reach the scorer; one status table."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from rewards.v1 import rewards_pb2 as pb

import rewards_client
from rewards_client import (STATUS_NAMES, RewardClient, build_spec, from_value, make_sample, make_spec,
                            status_name, status_value, to_value)

BIG = 12345678901234567890123          # 23 digits: a double keeps 17
ROOT = Path(__file__).resolve().parents[2]


def test_reference_encoding():
    assert to_value(BIG).string_value == str(BIG)
    assert to_value(0.1).string_value == "0.1" and to_value(True).bool_value is True
    assert from_value(to_value({"tests": [{"input": "1", "output": "2"}]})) == {"tests": [{"input": "1", "output": "2"}]}
    assert from_value(to_value(("a", "b"))) == ["a", "b"]
    assert not to_value(None).HasField("kind")
    np = pytest.importorskip("numpy")
    assert to_value(np.int64(7)).string_value == "7"
    assert from_value(to_value(np.array([1, 2]))) == [1.0, 2.0]    # inside objects: JSON numbers


def test_spec_forms():
    assert build_spec("math-r1@2").name == "math-r1@2" and build_spec(None) == pb.RewardSpec()
    spec = make_spec([{"name": "format", "weight": 0, "gate": True, "gate_min": 0.5},
                      {"name": "math", "version": "2.0.0"}], {"code": ["code"]}, task_key="data_source")
    fmt, math = spec.components
    assert fmt.weight_set and fmt.weight == 0 and fmt.gate and fmt.gate_min == 0.5
    assert math.version == "2.0.0" and not math.weight_set and not math.HasField("gate_min")
    assert [c.name for c in spec.routes["code"].components] == ["code"] and spec.task_key == "data_source"
    with pytest.raises(ValueError, match=r"spec\[0\]: unknown component keys \['wieght'\]"):
        build_spec([{"name": "math", "wieght": 1}])


def test_large_reference_keeps_every_digit_on_the_server(server):
    with RewardClient(server.address) as client:
        run_id = client.start_run("digits")
        right, wrong = client.score([make_sample("r", f"\\boxed{{{BIG}}}", reference=BIG),
                                     make_sample("w", f"\\boxed{{{BIG + 1}}}", reference=BIG)],
                                    ["math"], run_id=run_id, step=1)
        client.get_run(run_id)                                   # flushes the store's write queue
        (record,) = client.query_scores(run_id, include_texts=True, reward_min=0.5)
    assert (right.reward, wrong.reward) == (1.0, 0.0)            # the last digit decides
    assert record.sample_id == "r" and str(BIG) in record.reference_json


def test_version_gate_and_gate_min_reach_the_server(server):
    spec = [{"name": "format", "weight": 0, "gate": True, "gate_min": 1.0},
            {"name": "math", "version": "2.0.0"}]
    with RewardClient(server.address) as client:
        formatted, bare = client.score([make_sample("f", "<think>2+2</think><answer>4</answer>", reference="4"),
                                        make_sample("b", "\\boxed{4}", reference="4")], spec)
        lenient = client.score([make_sample("b", "\\boxed{4}", reference="4")],
                               [{"name": "format", "weight": 0, "gate": True, "gate_min": 0.0}, "math"])[0]
    assert formatted.reward == 1.0 and formatted.component("math").version == "2.0.0"
    assert formatted.component("format").gate and formatted.component("format").weight == 0.0
    # math says 1, but the gate (format 0 < gate_min 1) zeroes the total, as the server computes
    assert bare.component("math").reward == 1.0 and bare.component("format").reward == 0.0
    assert bare.status == "OK" and bare.reward == 0.0 and "gate format" in bare.reason
    assert lenient.reward == 1.0 and lenient.component("math").version != "2.0.0"   # gate_min 0 passes; newest math


def test_one_status_table():
    assert STATUS_NAMES == {v.number: v.name.removeprefix("STATUS_") for v in pb.Status.DESCRIPTOR.values}
    assert all(status_value(status_name(n)) == n for n in STATUS_NAMES)
    assert status_value("ok") == status_value("STATUS_OK") == pb.STATUS_OK
    with pytest.raises(ValueError, match="OK, ABSTAIN"):
        status_value("fine")
    from rlvr_integrations import client as integrations_client
    assert integrations_client.STATUS_NAMES is rewards_client.STATUS_NAMES


def test_the_trainer_and_integrations_speak_the_contract_only_through_rewards_client():
    offenders = []
    for path in [*ROOT.joinpath("trainer_client").rglob("*.py"), *ROOT.joinpath("rlvr_integrations").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("rewards.")]
    assert offenders == []


# --- attacks: a buggy caller's odd inputs -------------------------------------------------

def test_attack_numpy_float_references_keep_their_digits_on_the_server(server):
    np = pytest.importorskip("numpy")
    # a pandas / parquet column of gold answers gives np.float64 (a float subclass) or np.float32
    assert to_value(np.float64(0.1)).string_value == "0.1"           # not "np.float64(0.1)"
    assert to_value(np.float32(0.1)).string_value == "0.1"           # not "0.10000000149011612"
    assert to_value(np.int64(2**62 + 1)).string_value == str(2**62 + 1)
    with RewardClient(server.address) as client:
        (s,) = client.score([make_sample("0", "\\boxed{0.5}", reference=np.float64(0.5))], ["math"])
    assert s.reward == 1.0


@pytest.mark.parametrize("ref", [float("nan"), float("inf"), {"a": float("nan")}, [1.0, float("-inf")]])
def test_attack_a_nan_or_inf_reference_is_refused_naming_the_field(ref):
    # a missing value in a pandas column is NaN: sent as "nan" it scores every sample 0, silently
    with pytest.raises(ValueError, match=r"reference.*(NaN|inf)"):
        make_sample("0", "x", reference=ref)


def test_attack_bytes_are_utf8_text_not_their_repr():
    assert to_value(b"42").string_value == "42"                       # not "b'42'"
    assert from_value(make_sample("0", "x", metadata={"task": b"code"}).metadata.fields["task"]) == "code"
    with pytest.raises(ValueError, match=r"reference.*UTF-8"):
        make_sample("0", "x", reference=b"\xff\xfe")


@pytest.mark.parametrize("where, kwargs", [
    ("metadata", {"metadata": {"n": 2**60}}),                           # a double would round it
    ("reference.n", {"reference": {"n": 10**30}}),
    ("metadata.1", {"metadata": {1: "a"}}),                             # not silently "1"
    ("metadata.None", {"metadata": {None: "a"}}),
])
def test_attack_struct_values_a_double_cannot_hold_are_refused(where, kwargs):
    with pytest.raises((ValueError, TypeError), match=where.split(".")[0]):
        make_sample("0", "x", **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"sample_id": None, "completion": "x"}, r"sample_id.*None"),
    ({"sample_id": True, "completion": "x"}, r"sample_id.*bool"),
    ({"sample_id": "0", "completion": None}, r"completion.*str"),     # not an empty completion
    ({"sample_id": "0", "completion": 5}, r"completion.*str"),
    ({"sample_id": "0", "completion": "x", "prompt": [{"role": "user"}]}, r"prompt.*str"),
    ({"sample_id": "0", "completion": "x", "metadata": "code"}, r"metadata.*mapping"),
])
def test_attack_sample_fields_of_the_wrong_type_are_named(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make_sample(**kwargs)


@pytest.mark.parametrize("component, match", [
    ({"name": "math", "weight": float("nan")}, r"weight.*finite"),
    ({"name": "math", "weight": float("inf")}, r"weight.*finite"),
    ({"name": "math", "weight": "0.5"}, r"weight.*number"),            # not silently 0.5
    ({"name": "math", "weight": True}, r"weight.*number"),             # not silently 1.0
    ({"name": "math", "weight": 10**400}, r"weight"),                  # not a bare OverflowError
    ({"name": "math", "gate": "false"}, r"gate.*bool"),                # bool("false") is True
    ({"name": "math", "gate_min": float("nan")}, r"gate_min.*finite"),
    ({"name": "math", "gate_min": "x"}, r"gate_min.*number"),
    ({"name": "math", "version": 1.10}, r"version.*str"),              # not silently "1.1"
    ({"name": "math", "version": 0}, r"version.*str"),                 # not silently the newest
    ({"name": "math", "params": [1, 2]}, r"params.*mapping"),
    ({"name": "math", "params": {"seed": 2**60}}, r"params\.seed"),
    ({"name": ""}, r"name.*empty"),
    ("", r"name.*empty"),
])
def test_attack_spec_fields_of_the_wrong_type_are_named(component, match):
    with pytest.raises((TypeError, ValueError), match=r"spec\[0\]\." + match if isinstance(component, dict)
                       else match):
        build_spec([component])


@pytest.mark.parametrize("spec, match", [
    ({"components": "math"}, r"spec\.components.*list"),               # not m, a, t, h
    ({"routes": {"code": "code"}}, r"spec\.routes\[code\].*list"),
    ({"routes": ["math"]}, r"spec\.routes.*mapping"),                   # not an AttributeError
    (b"math", r"spec.*bytes"),
])
def test_attack_spec_shapes_are_named(spec, match):
    with pytest.raises((TypeError, ValueError), match=match):
        build_spec(spec)


def test_attack_numpy_and_torch_numbers_are_accepted_where_numbers_go():
    np = pytest.importorskip("numpy")
    (c,) = build_spec([{"name": "math", "weight": np.float32(0.5), "gate": np.bool_(True),
                        "gate_min": np.float64(0.25)}]).components
    assert (c.weight, c.gate, c.gate_min) == (0.5, True, 0.25)
    assert make_sample(np.int64(3), "x").id == "3"
    torch = pytest.importorskip("torch")
    assert to_value(torch.tensor(0.1)).string_value == "0.1"                # float32: its own digits
    assert to_value(torch.tensor(0.1, dtype=torch.bfloat16)).string_value == "0.10009765625"
