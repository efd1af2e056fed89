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
    return subprocess.run([sys.executable, "-m", "rewardctl", *args], capture_output=True, text=True,
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
    assert r.returncode == 1, r.stderr          # some lines failed (exit status 1), the others scored
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
    assert r.returncode == 0 and "format" in r.stdout and "2.0.0" in r.stdout
    assert "3.0.0" in r.stdout and "math" in r.stdout
    r = _run(["verifiers", "--all-versions", "--server", server.address])
    math_rows = [ln for ln in r.stdout.splitlines() if "math" in ln and
                 any(v in ln for v in ("3.0.0", "2.1.0", "2.0.0", "1.0.0"))]
    assert any("3.0.0 (latest)" in ln for ln in math_rows), r.stdout
    assert all(any(v in ln and "latest" not in ln for ln in math_rows) for v in ("2.1.0", "2.0.0", "1.0.0")), r.stdout
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


def _seed_history(server, n_groups: int = 40, group_size: int = 16) -> str:
    """A run of n_groups × group_size format scores, enough rows (> 64 KiB of any output
    format) that a reader closing the pipe early meets a writer still writing. Every
    group repeats group 0's completions, so all but the first group's rows are cached."""
    with grpc.insecure_channel(server.address) as ch:
        stub = pb_grpc.RewardServiceStub(ch)
        run = stub.StartRun(pb.StartRunRequest(name="ctl-pipe"))
        spec = pb.RewardSpec(components=[pb.VerifierRef(name="format")])
        samples = [pb.Sample(completion=f"<think>{i}</think><answer>{i}</answer>") for i in range(group_size)]
        first = list(stub.ScoreGroups(iter([pb.GroupRequest(run_id=run.run_id, step=0, group_id="g0",
                                                            spec=spec, samples=samples)])))
        assert not first[0].HasField("error")
        rest = list(stub.ScoreGroups(iter([pb.GroupRequest(run_id=run.run_id, step=1, group_id=f"g{j}",
                                                           spec=spec, samples=samples)
                                           for j in range(1, n_groups)])))
        assert len(rest) == n_groups - 1
        stub.GetRun(pb.GetRunRequest(run_id=run.run_id))
    return run.run_id


def test_history_jsonl_and_csv_carry_cached(server):
    run_id = _seed_history(server, n_groups=3, group_size=2)
    r = _run(["history", "--run", run_id, "--format", "jsonl", "--server", server.address])
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 6
    assert sorted((x["group_id"], x["cached"]) for x in rows) == [
        ("g0", False), ("g0", False), ("g1", True), ("g1", True), ("g2", True), ("g2", True)]
    r = _run(["history", "--run", run_id, "--format", "csv", "--server", server.address])
    header, *lines = r.stdout.splitlines()
    assert "cached" in header.split(",") and len(lines) == 6
    r = _run(["history", "--run", run_id, "--server", server.address])
    assert r.returncode == 0 and "cached" in r.stdout


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table"])
def test_history_into_a_pipe_closed_early_ends_quietly(server, fmt):
    """`rewardctl history ... | head -n 1`: the reader goes away while rewardctl is still
    writing. No BrokenPipeError traceback (not even at interpreter exit), and the exit
    status is what a shell reports for a command stopped by SIGPIPE (141)."""
    run_id = _seed_history(server)
    proc = subprocess.Popen([sys.executable, "-m", "rewardctl", "history", "--run", run_id,
                             "--format", fmt, "--server", server.address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()                     # what `head -n 1` does once it has its line
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141, err
    assert first and err == "", err


def test_history_piped_into_head_in_a_shell(server):
    run_id = _seed_history(server)
    cmd = (f"set -o pipefail; {sys.executable} -m rewardctl history --run {run_id} --format jsonl "
           f"--server {server.address} | head -n 2")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert len(r.stdout.splitlines()) == 2 and r.stderr == "", r.stderr
    assert r.returncode == 141                  # pipefail: like `yes | head`, no traceback
