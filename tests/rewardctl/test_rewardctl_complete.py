"""Issue #20: everything a user can do over gRPC, from the shell. A real `rewardctl`
process, real files, a real server (restarted on its port for the outage tests)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from reward_server.app import start_server
from reward_server.config import ServerConfig
from rewards_client import RewardClient
from tests.conftest import free_port

GOOD = "<think>x</think><answer>4</answer>"
BOXED = "The answer is \\boxed{4}."
ROUTED = {"components": [{"name": "format", "weight": 0.5, "params": {"kind": "tags"}}],
          "routes": {"math": [{"name": "math"}], "*": [{"name": "format"}]}}


def ctl(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewardctl", *args], capture_output=True, text=True,
                          input=stdin, timeout=timeout, env={**os.environ, **(env or {})})


def write_lines(path, lines: list) -> str:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return str(path)


def read_out(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def stored_rows(address: str, run_id: str) -> list:
    with RewardClient(address, api_key="", tls_ca="") as c:
        return c.query_scores(run_id)


def test_a_line_may_name_a_stored_spec_and_carry_metadata(server, tmp_path):
    spec_file = tmp_path / "mix.json"
    spec_file.write_text(json.dumps(ROUTED))
    r = ctl("specs", "put", "mix", str(spec_file), "--server", server.address)
    assert r.returncode == 0, r.stderr
    assert "mix@1" in r.stdout
    lines = [{"id": "m", "completion": "<think>a</think> " + BOXED, "reference": "4", "spec": "mix",
              "metadata": {"task": "math"}},
             {"id": "pinned", "completion": GOOD, "spec": "mix@1", "metadata": {"task": "other"}},
             {"id": "nospec", "completion": GOOD, "spec": "nope"},
             {"id": "both", "completion": GOOD, "spec": "mix", "verifier": "format"},
             {"id": "meta", "completion": GOOD, "verifier": "format", "metadata": ["not", "an", "object"]}]
    out = tmp_path / "out.jsonl"
    r = ctl("score", write_lines(tmp_path / "in.jsonl", lines), "-o", str(out), "--server", server.address)
    got = {g["id"]: g for g in read_out(out)}
    assert got["m"]["status"] == "OK" and got["m"]["reward"] == pytest.approx(0.5 * 0.5 + 1.0), got["m"]
    assert [c["name"] for c in got["m"]["components"]] == ["format", "math"]
    assert got["m"]["spec"] == "mix@1" and got["pinned"]["spec"] == "mix@1"
    assert got["pinned"]["reward"] == pytest.approx(0.5 * 1.0 + 1.0)
    assert got["nospec"]["status"] == "NOT_FOUND" and "nope" in got["nospec"]["reason"]
    assert got["both"]["status"] == "INVALID_ARGUMENT" and "line 4" in got["both"]["reason"]
    assert got["meta"]["status"] == "INVALID_ARGUMENT" and "metadata" in got["meta"]["reason"]
    assert r.returncode == 1, r.stderr          # some lines failed


def test_specs_put_list_show(server, tmp_path):
    r = ctl("specs", "put", "r1", "-", "--description", "format then math", "--server", server.address,
            stdin=json.dumps({"components": [{"name": "format"}]}))
    assert r.returncode == 0 and "r1@1" in r.stdout, r.stderr
    r = ctl("specs", "put", "r1", "-", "--server", server.address, stdin=json.dumps(ROUTED))
    assert r.returncode == 0 and "r1@2" in r.stdout, r.stderr
    r = ctl("specs", "list", "--server", server.address)
    assert r.returncode == 0 and "r1" in r.stdout and "2" in r.stdout, r.stderr
    r = ctl("specs", "show", "r1@1", "--server", server.address)
    shown = json.loads(r.stdout)
    assert shown["name"] == "r1" and shown["version"] == 1
    assert shown["spec"]["components"][0]["name"] == "format" and shown["description"] == "format then math"
    r = ctl("specs", "show", "r1", "--server", server.address)
    assert json.loads(r.stdout)["version"] == 2 and "routes" in json.loads(r.stdout)["spec"]
    r = ctl("specs", "show", "nope", "--server", server.address)
    assert r.returncode == 3 and "NOT_FOUND" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"components": [{"name": "format", "wieght": 2}]}')
    r = ctl("specs", "put", "r2", str(bad), "--server", server.address)
    assert r.returncode in (2, 6) and "wieght" in r.stderr, (r.returncode, r.stderr)
    bad.write_text("{not json")
    r = ctl("specs", "put", "r2", str(bad), "--server", server.address)
    assert r.returncode == 2 and "bad.json" in r.stderr and "JSON" in r.stderr


def test_runs_start_score_into_it_finish_and_report(server, tmp_path):
    r = ctl("runs", "start", "from-the-shell", "--config", '{"lr": 1e-6}', "--run-id", "shell-1",
            "--server", server.address)
    assert r.returncode == 0 and r.stdout.strip() == "shell-1", r.stderr
    lines = [{"id": f"s{i}", "completion": GOOD if i % 2 else "no", "verifier": "format"} for i in range(6)]
    out = tmp_path / "out.jsonl"
    r = ctl("score", write_lines(tmp_path / "in.jsonl", lines), "-o", str(out), "--run", "shell-1",
            "--step", "3", "--server", server.address)
    assert r.returncode == 0, r.stderr
    rows = stored_rows(server.address, "shell-1")
    assert sorted(x.sample_id for x in rows) == sorted(f"s{i}" for i in range(6))
    assert {x.step for x in rows} == {3}
    r = ctl("runs", "finish", "shell-1", "--state", "failed", "--server", server.address)
    assert r.returncode == 0, r.stderr
    r = ctl("runs", "list", "--server", server.address)
    assert "shell-1" in r.stdout and "failed" in r.stdout
    r = ctl("runs", "--server", server.address)            # as before: a bare `runs` lists them
    assert "shell-1" in r.stdout
    r = ctl("report", "shell-1", "-o", str(tmp_path / "r.html"), "--server", server.address)
    assert r.returncode == 0 and "6 samples" in r.stdout, r.stderr
    r = ctl("score", str(tmp_path / "in.jsonl"), "--run", "no-such-run", "--server", server.address)
    assert r.returncode == 3 and "no-such-run" in r.stderr
    r = ctl("score", str(tmp_path / "in.jsonl"), "--run", "shell-1")       # a run needs a server
    assert r.returncode == 2 and "--server" in r.stderr


def test_a_server_side_refusal_names_the_file_line(server, tmp_path):
    lines = [{"id": f"ok{i}", "completion": GOOD, "verifier": "format"} for i in range(3)]
    lines.insert(2, "")                                   # a blank line still counts in line numbers
    lines.insert(4, {"id": "nul", "prompt": "a\u0000b", "completion": GOOD, "verifier": "format"})
    out = tmp_path / "out.jsonl"
    r = ctl("score", write_lines(tmp_path / "in.jsonl", lines), "-o", str(out), "--server", server.address)
    assert r.returncode == 1, r.stderr
    got = {g["id"]: g for g in read_out(out)}
    assert [g["status"] for g in got.values()] == ["OK", "OK", "OK", "INVALID_ARGUMENT"] or \
        sorted(g["status"] for g in got.values()) == ["INVALID_ARGUMENT", "OK", "OK", "OK"]
    assert got["nul"]["reason"].startswith("line 5: prompt"), got["nul"]["reason"]
    assert "samples[" not in got["nul"]["reason"]
    assert "line 5" in r.stderr


def test_exit_codes_say_what_happened(server, tmp_path):
    r = ctl("--help")
    assert r.returncode == 0
    for text in ("exit status", "0 ", "1 ", "2 ", "3 ", "4 ", "NOT_FOUND", "UNAVAILABLE"):
        assert text in r.stdout, (text, r.stdout)
    assert "exit status" in ctl("score", "--help").stdout
    assert ctl("show", "999999", "--server", server.address).returncode == 3
    assert ctl("report", "no-such-run", "--server", server.address).returncode == 3
    assert ctl("runs", "finish", "no-such-run", "--server", server.address).returncode == 3
    r = ctl("runs", "--server", "127.0.0.1:1", env={"REWARDCTL_CONNECT_TIMEOUT_S": "1"})
    assert r.returncode == 4 and "127.0.0.1:1" in r.stderr
    assert ctl("score", str(tmp_path / "missing.jsonl")).returncode == 2
    assert ctl("runs", "start").returncode == 2


def test_progress_moves_on_every_batch(server, tmp_path):
    lines = [{"id": i, "completion": GOOD, "verifier": "format"} for i in range(6)]
    r = ctl("score", write_lines(tmp_path / "in.jsonl", lines), "-o", str(tmp_path / "out.jsonl"),
            "--batch-size", "2", "--progress", "--server", server.address)
    assert r.returncode == 0, r.stderr
    for seen in ("2/6", "4/6", "6/6"):
        assert seen in r.stderr, r.stderr
    r = ctl("score", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"), "--batch-size", "2",
            "--server", server.address)
    assert "2/6" not in r.stderr                    # not a terminal, no --progress: no bar


class Restartable:
    """A server on a fixed port and database that a test can stop and start again."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.config = ServerConfig(host="127.0.0.1", port=self.port, workers=2, grace_s=5,
                                   database_url=f"sqlite:///{tmp_path}/restart.db")
        self.srv = start_server(self.config)
        self.address = f"127.0.0.1:{self.port}"

    def restart(self, down_s: float) -> None:
        self.srv.stop()
        time.sleep(down_s)
        self.srv = start_server(self.config)

    def stop(self) -> None:
        self.srv.stop()


@pytest.fixture
def restartable(tmp_path):
    srv = Restartable(tmp_path)
    yield srv
    srv.stop()


def _lines_in(path) -> int:
    try:
        return path.read_text().count("\n")
    except FileNotFoundError:
        return 0


def _wait_lines(path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while _lines_in(path) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout
        time.sleep(0.05)


N = 400


def _big_file(tmp_path) -> str:
    return write_lines(tmp_path / "in.jsonl", [{"id": f"s{i}", "completion": GOOD if i % 3 else f"no {i}",
                                                "verifier": "format"} for i in range(N)])


def _popen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rewardctl", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_score_survives_a_server_restart_mid_file(restartable, tmp_path):
    src, out = _big_file(tmp_path), tmp_path / "out.jsonl"
    with RewardClient(restartable.address, api_key="", tls_ca="") as c:
        c.start_run("restart", run_id="restart-1")
    proc = _popen("score", src, "-o", str(out), "--batch-size", "4", "--run", "restart-1", "--step", "1",
                  "--server", restartable.address, "--outage-timeout-s", "60")
    _wait_lines(out, 40, proc)
    restartable.restart(down_s=2.0)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    got = read_out(out)
    assert [g["id"] for g in got] == [f"s{i}" for i in range(N)]
    assert all(g["status"] == "OK" for g in got)
    assert "reward service back after" in stderr
    ids = [x.sample_id for x in stored_rows(restartable.address, "restart-1")]
    assert sorted(ids) == sorted(f"s{i}" for i in range(N))          # each stored once


def test_an_outage_longer_than_the_window_is_exit_4(restartable, tmp_path):
    src, out = _big_file(tmp_path), tmp_path / "out.jsonl"
    proc = _popen("score", src, "-o", str(out), "--batch-size", "4", "--server", restartable.address,
                  "--outage-timeout-s", "1")
    _wait_lines(out, 8, proc)
    restartable.srv.stop()
    stopped = time.monotonic()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 4, stderr
    # The window bounds the wait: a 1 s window gave up only after ten back-offs (27 s) before.
    assert time.monotonic() - stopped < 15
    assert "--resume" in stderr and "unreachable" in stderr
    restartable.srv = start_server(restartable.config)


def test_resume_after_a_kill_scores_nothing_twice(restartable, tmp_path):
    src, out = _big_file(tmp_path), tmp_path / "out.jsonl"
    with RewardClient(restartable.address, api_key="", tls_ca="") as c:
        c.start_run("resume", run_id="resume-1")
    args = ("score", src, "-o", str(out), "--batch-size", "4", "--run", "resume-1", "--step", "2",
            "--server", restartable.address)
    proc = _popen(*args)
    _wait_lines(out, 60, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    with open(out, "a") as f:
        f.write('{"id": "s9999", "rew')        # a line cut in the middle by the kill
    done = _lines_in(out)
    # Drop some complete output lines too: their samples are stored in the run, and --resume
    # finds them there (QueryScores) instead of scoring them again.
    kept = read_out_partial(out)[: done - 8]
    out.write_text("".join(json.dumps(x) + "\n" for x in kept))
    stored_before = len(stored_rows(restartable.address, "resume-1"))
    assert stored_before >= len(kept)
    r = ctl(*args, "--resume")
    assert r.returncode == 0, r.stderr
    got = read_out(out)
    assert [g["id"] for g in got] == [f"s{i}" for i in range(N)]
    assert all(g["status"] == "OK" for g in got), [g for g in got if g["status"] != "OK"][:3]
    ids = [x.sample_id for x in stored_rows(restartable.address, "resume-1")]
    assert sorted(ids) == sorted(f"s{i}" for i in range(N))          # nothing stored twice
    assert f"skipped {len(kept)} lines already in" in r.stderr, r.stderr
    # the lines found stored carry the stored outcome
    assert got[len(kept)]["reward"] == (1.0 if len(kept) % 3 else 0.0)
    # resuming a complete file scores nothing
    r = ctl(*args, "--resume")
    assert r.returncode == 0 and len(read_out(out)) == N
    assert len(stored_rows(restartable.address, "resume-1")) == N


def read_out_partial(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().split("\n") if x.endswith("}") and x.startswith("{")
            and _complete(x)]


def _complete(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def test_global_options_before_or_after_a_nested_subcommand(server):
    with RewardClient(server.address, api_key="", tls_ca="") as c:
        c.start_run("placed", run_id="placed-1")
    for args in (("--server", server.address, "runs", "list"), ("runs", "list", "--server", server.address),
                 ("runs", "--server", server.address), ("--server", server.address, "specs", "list")):
        r = ctl(*args, env={"REWARD_SERVER_ADDRESS": ""})
        assert r.returncode == 0, (args, r.stderr)
        assert "placed-1" in r.stdout or args[-1] == "list" and args[-2] == "specs"
    r = ctl("runs", "start", "x", "--config", "[1]", "--api-key", "sk-secret-1", "--server", server.address)
    assert r.returncode == 2 and "--config" in r.stderr and "sk-secret-1" not in r.stderr
