"""rewardctl as a user runs it: a real process, a real file, in-process and through a server."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

LINES = [
    {"id": "good", "completion": "<think>x</think><answer>4</answer>", "verifier": "format"},
    {"id": "weighted", "completion": "<think>x</think><answer>4</answer>",
     "verifiers": [{"name": "format", "weight": 0.5},
                   {"name": "format", "weight": 0.5, "params": {"kind": "length", "max_chars": 5}}]},
    {"id": "unknown", "completion": "x", "verifier": "nope"},
    "this line is not JSON",
    {"id": "badparams", "completion": "x", "verifier": "format", "params": {"kind": "regex"}},
    {"id": "nocompletion", "verifier": "format"},
]
EXPECTED = {"good": ("OK", 1.0), "weighted": ("OK", 0.5), "unknown": ("NOT_FOUND", None),
            None: ("INVALID_ARGUMENT", None), "badparams": ("INVALID_ARGUMENT", None),
            "nocompletion": ("INVALID_ARGUMENT", None)}


def _run(args, **kw):
    return subprocess.run([sys.executable, "-m", "reward_server.ctl", *args], capture_output=True, text=True,
                          timeout=120, **kw)


@pytest.fixture
def samples(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in LINES) + "\n")
    return f


@pytest.mark.parametrize("through_server", [False, True])
def test_score_file_bad_lines_do_not_stop_it(samples, tmp_path, server, through_server):
    out = tmp_path / "out.jsonl"
    args = ["score", str(samples), "-o", str(out), "--workers", "1"]
    if through_server:
        args += ["--server", server.address]
    r = _run(args)
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(got) == len(LINES)
    for g in got:
        status, reward = EXPECTED[g.get("id")]
        assert (g["status"], g["reward"]) == (status, reward), g
        assert g["reason"] or status == "OK"
    weighted = next(g for g in got if g.get("id") == "weighted")
    assert [c["reward"] for c in weighted["components"]] == [1.0, 0.0]
    assert "OK: 2" in r.stderr and "mean reward of OK samples 0.7500" in r.stderr


def test_verifiers_runs_and_history(server, tmp_path):
    r = _run(["verifiers", "--server", server.address])
    assert r.returncode == 0 and "format" in r.stdout and "1.0.0" in r.stdout
    with grpc.insecure_channel(server.address) as ch:
        stub = pb_grpc.RewardServiceStub(ch)
        run = stub.StartRun(pb.StartRunRequest(name="ctl-test"))
        spec = pb.RewardSpec(components=[pb.VerifierRef(name="format")])
        list(stub.ScoreGroups(iter([pb.GroupRequest(run_id=run.run_id, step=s, group_id=f"g{s}", spec=spec,
                                                    samples=[pb.Sample(completion="nope")] * 2) for s in range(3)])))
    r = _run(["runs", "--server", server.address])
    assert run.run_id in r.stdout and "ctl-test" in r.stdout
    r = _run(["history", "--run", run.run_id, "--step-min", "1", "--format", "jsonl", "--server", server.address])
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 4 and {x["step"] for x in rows} == {1, 2} and all(x["reward"] == 0.0 for x in rows)
    r = _run(["history", "--run", run.run_id, "--format", "csv", "--server", server.address])
    assert r.stdout.splitlines()[0].startswith("score_id,run_id,step") and len(r.stdout.splitlines()) == 7


def test_unreachable_server_is_a_clear_error(samples):
    r = _run(["score", str(samples), "--server", "127.0.0.1:1"], env={**os.environ, "REWARDCTL_CONNECT_TIMEOUT_S": "1"})
    assert r.returncode != 0 and "no reward server answers at 127.0.0.1:1" in r.stderr
