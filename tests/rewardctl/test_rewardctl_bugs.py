"""Issue #20, the small rewardctl and server bugs (each failed before its fix): a real
`rewardctl` process, a real file, in-process and through a real server."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest

from reward_server.app import start_server
from reward_server.auth import KeyStore
from reward_server.config import ServerConfig
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

BOXED = "The answer is \\boxed{4}."      # right for math, no <think>/<answer> blocks for format


def ctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewardctl", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def score_lines(tmp_path, lines: list, *extra: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    r = ctl("score", str(src), "-o", str(out), "--workers", "1", *extra)
    return r, [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []


@pytest.fixture(params=["in-process", "server"])
def where(request, server) -> tuple[str, ...]:
    return () if request.param == "in-process" else ("--server", server.address)


def test_score_keeps_gate_and_gate_min(tmp_path, where):
    lines = [
        # the server itself gives 0 here ("gate format=0 < 1"); rewardctl used to drop the gate and say 1.0
        {"id": "gated", "completion": BOXED, "reference": "4",
         "verifiers": [{"name": "format", "weight": 0.1, "gate": True}, {"name": "math"}]},
        # a half-formed completion passes a gate at gate_min 0.5: 0.1·0.5 + 1
        {"id": "gate_min", "completion": "<think>4</think> " + BOXED, "reference": "4",
         "verifiers": [{"name": "format", "weight": 0.1, "gate": True, "gate_min": 0.5,
                        "params": {"kind": "tags"}}, {"name": "math"}]},
        {"id": "typo", "completion": BOXED, "reference": "4", "verifiers": [{"name": "math", "wieght": 2}]},
    ]
    r, got = score_lines(tmp_path, lines, *where)
    assert r.returncode == 1, r.stderr          # the typo line failed: exit status 1
    by_id = {g["id"]: g for g in got}
    assert (by_id["gated"]["status"], by_id["gated"]["reward"]) == ("OK", 0.0), by_id["gated"]
    assert "gate format" in by_id["gated"]["reason"]
    assert by_id["gate_min"]["reward"] == pytest.approx(1.05)
    # a field rewardctl does not know is an error on that line, never silently dropped
    assert by_id["typo"]["status"] == "INVALID_ARGUMENT" and "wieght" in by_id["typo"]["reason"]


def test_params_that_are_not_an_object_fail_their_line_only(tmp_path, where):
    lines = [{"id": "list", "completion": "x", "verifier": "format", "params": [1, 2]},
             {"id": "string", "completion": "x", "verifier": "format", "params": "kind=length"},
             {"id": "nested", "completion": "x", "verifiers": [{"name": "format", "params": ["kind"]}]},
             {"id": "weight", "completion": "x", "verifiers": [{"name": "format", "weight": "heavy"}]},
             {"id": "good", "completion": "<think>a</think><answer>4</answer>", "verifier": "format"}]
    r, got = score_lines(tmp_path, lines, *where)
    assert r.returncode == 1, r.stderr
    assert [g["id"] for g in got] == ["list", "string", "nested", "weight", "good"]
    for g in got[:4]:
        assert g["status"] == "INVALID_ARGUMENT" and g["reward"] is None and "line" in g["reason"], g
    assert "params" in got[0]["reason"] and "params" in got[2]["reason"] and "weight" in got[3]["reason"]
    assert (got[4]["status"], got[4]["reward"]) == ("OK", 1.0)


def test_a_json_error_at_the_end_of_a_line_names_its_column(tmp_path):
    text = '{"completion": "x", "verifier": "format"'
    r, got = score_lines(tmp_path, [text])
    assert r.returncode == 1, r.stderr
    assert got[0]["status"] == "INVALID_ARGUMENT" and f"column {len(text) + 1}" in got[0]["reason"], got[0]


@pytest.fixture
def secured(tmp_path):
    with start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/auth.db", workers=1,
                                   auth="on")) as srv:
        key, _ = KeyStore(srv.store).create("team-a")
        yield srv, key


def test_api_key_is_accepted_after_the_subcommand_and_never_echoed(secured):
    srv, key = secured
    env = {"REWARD_API_KEY": ""}
    for args in (("--api-key", key, "runs", "--server", srv.address),      # before: as it always was
                 ("runs", "--server", srv.address, "--api-key", key),      # after the subcommand
                 ("runs", "--server", srv.address, f"--api-key={key}")):
        r = ctl(*args, env=env)
        assert r.returncode == 0, r.stderr
    r = ctl("runs", "--server", srv.address, "--api-key", "sk-wrong-secret", env=env)
    assert r.returncode != 0 and "UNAUTHENTICATED" in r.stderr and "sk-wrong-secret" not in r.stderr
    # a usage error must not print the key back on the terminal (or into a CI log)
    for args in (("runs", "--bogus", "--api-key", key), ("runs", f"--api-key={key}", "--bogus", key),
                 ("--api-key", key, "no-such-command")):
        r = ctl(*args, env=env)
        assert r.returncode == 2 and key not in r.stderr + r.stdout, r.stderr


def test_history_of_an_unknown_run_or_verifier_is_not_found(server):
    with grpc.insecure_channel(server.address) as ch:
        run = pb_grpc.RewardServiceStub(ch).StartRun(pb.StartRunRequest(name="known"))
    r = ctl("history", "--run", "no-such-run", "--server", server.address)
    assert r.returncode != 0 and "NOT_FOUND" in r.stderr and "no-such-run" in r.stderr, (r.returncode, r.stderr)
    r = ctl("history", "--run", run.run_id, "--verifier", "mth", "--server", server.address)
    assert r.returncode != 0 and "NOT_FOUND" in r.stderr and "mth" in r.stderr and "math" in r.stderr
    r = ctl("history", "--run", run.run_id, "--verifier", "math", "--format", "jsonl", "--server", server.address)
    assert r.returncode == 0 and r.stdout == ""     # a known run with no scores yet is an empty answer
