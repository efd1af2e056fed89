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
