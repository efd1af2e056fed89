"""rewardctl history / show / report / replay as a user runs them: a real server on a
loopback port, a seeded run, the CLI in a subprocess.

The seeded run (5 steps × 2 groups × 4 samples; spec: format (r1, weight 0.5) + math
(weight 1)) gets shorter and more correct step by step, so its report must raise
"reward up while completion length collapses". The run is scored with math@1.0.0, as a
history written before the verifier changed. Group "a" has reference "20/3" and its
correct answer is written "6.67": equal under math@1.0.0's default decimal rounding, not
under math@2.0.0 (strict precision by default) nor math@1.0.0 with decimal_rounding=false:
replaying with either flips exactly those samples. Step 0's texts are dropped by the
retention policy.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from rewards.v1 import rewards_pb2 as pb

STEPS, GROUP_SIZE = 5, 4
REFS = {"a": "20/3", "b": "4"}
RIGHT = {"a": "6.67", "b": "4"}
WRONG = {"a": "5", "b": "3"}
PAD = {0: 400, 1: 400, 2: 150, 3: 40, 4: 10}     # think-block length by step: collapses
N_RIGHT = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4}          # correct samples per group by step


def completion(step: int, group: str, i: int) -> str:
    if step == 2 and group == "b" and i == 3:
        return "I do not know"                       # math: ABSTAIN (no answer found)
    answer = RIGHT[group] if i < N_RIGHT[step] else WRONG[group]
    return f"<think>{'x' * PAD[step]}</think><answer>{answer}</answer>"


# Hand count. Samples: 5 steps × 2 groups × 4 = 40, rows = 80 (two components each).
# Correct "6.67" answers in group a, steps 1-4: 0 + 1 + 2 + 4 = 7 -> the flips (pass -> fail).
# Step 0 (8 samples) has no texts after retention: not replayable. Replayed: 40 - 8 = 32.
N_SAMPLES, N_DROPPED, N_FLIPS = 40, 8, 7
SPEC = pb.RewardSpec(components=[pb.VerifierRef(name="format", weight=0.5, weight_set=True),
                                 pb.VerifierRef(name="math", version="1.0.0", weight=1.0, weight_set=True)])


def _ctl(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "rewardctl", *args], capture_output=True, text=True,
                       timeout=timeout)
    return r


@pytest.fixture
def seeded(server, stub):
    """(run_id, retention cutoff as RFC 3339)."""
    run = stub.StartRun(pb.StartRunRequest(name="audit-seed"))
    cutoff = None
    for step in range(STEPS):
        groups = [pb.GroupRequest(run_id=run.run_id, step=step, group_id=g, spec=SPEC,
                                  samples=[pb.Sample(id=f"{g}{i}", prompt=f"prompt {g}",
                                                     completion=completion(step, g, i),
                                                     reference={"string_value": REFS[g]})
                                           for i in range(GROUP_SIZE)])
                  for g in REFS]
        results = list(stub.ScoreGroups(iter(groups)))
        assert len(results) == 2
        stub.LogStep(pb.LogStepRequest(run_id=run.run_id, step=step, metrics={
            "reward_mean": 0.5 + 0.25 * step, "kl": 0.01 * step, "entropy": 1.0 - 0.1 * step}))
        if step == 0:
            server.store.flush()
            time.sleep(0.05)
            cutoff = datetime.now(timezone.utc)
            time.sleep(0.05)
    server.store.flush()
    assert server.store.drop_texts_before(cutoff) == 2 * GROUP_SIZE * 2   # step 0's rows
    return run.run_id, cutoff.isoformat()


def _history(server, *args: str) -> list[dict]:
    r = _ctl("history", "--format", "jsonl", "--server", server.address, *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def test_history_time_and_reward_ranges(server, seeded):
    run_id, cutoff = seeded
    everything = _history(server, "--run", run_id)
    assert len(everything) == 2 * N_SAMPLES
    before = _history(server, "--run", run_id, "--until", cutoff)
    after = _history(server, "--run", run_id, "--since", cutoff)
    assert {x["step"] for x in before} == {0} and len(before) == 16
    assert {x["step"] for x in after} == {1, 2, 3, 4} and len(after) == 64
    # math rewarded 1: the correct answers, 2 groups × (0+0+1+2+4) = 14
    right = _history(server, "--run", run_id, "--verifier", "math", "--reward-min", "1")
    assert len(right) == 14 and all(x["reward"] == 1.0 for x in right)
    wrong = _history(server, "--run", run_id, "--verifier", "math", "--reward-max", "0.5", "--status", "ok")
    assert len(wrong) == N_SAMPLES - 14 - 1   # minus the one ABSTAIN
    assert all(x["team"] == "default" for x in wrong)
    r = _ctl("history", "--run", run_id, "--since", "yesterday", "--server", server.address)
    assert r.returncode != 0 and "--since: 'yesterday' is not an RFC 3339 time" in r.stderr
    r = _ctl("history", "--run", run_id, "--team", "default", "--server", server.address)
    assert r.returncode == 0, r.stderr   # an unauthenticated server: every caller is an admin
    r = _ctl("history", "--run", run_id, "--team", "other", "--server", server.address)
    assert r.returncode == 3 and "NOT_FOUND" in r.stderr  # run ids are per team: "other" has none


def test_show_full_provenance(server, seeded):
    run_id, _ = seeded
    rows = _history(server, "--run", run_id, "--step-min", "2", "--step-max", "2", "--verifier", "math")
    row = next(x for x in rows if x["group_id"] == "a" and x["sample_index"] == 0)
    r = _ctl("show", str(row["score_id"]), "--format", "json", "--server", server.address)
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert (p["run_id"], p["step"], p["group_id"], p["sample_index"], p["sample_id"]) == (run_id, 2, "a", 0, "a0")
    assert (p["verifier"], p["verifier_version"], p["status"], p["reward"]) == ("math", "1.0.0", "OK", 1.0)
    assert p["params"]["decimal_rounding"] is True and len(p["params_hash"]) > 0
    assert p["weight"] == 1.0 and p["gate"] is False and p["total_reward"] == 1.5
    assert p["worker"].startswith(("pool:", "cache")) and p["latency_ms"] >= 0 and p["team"] == "default"
    assert p["texts"]["state"] == "present" and "<answer>6.67</answer>" in p["texts"]["completion"]
    assert p["texts"]["reference"] == "20/3" and p["texts"]["prompt"] == "prompt a"
    assert all(p["texts"]["hashes_match"].values())
    assert [c["verifier"] for c in p["components"]] == ["format", "math"]
    assert len(p["hashes"]["completion_sha256"]) == 64 and p["request_id"]

    r = _ctl("show", str(row["score_id"]), "--server", server.address)
    assert r.returncode == 0, r.stderr
    for text in ("math@1.0.0", "decimal_rounding", f"run {run_id}", "group a", "texts match their hashes",
                 "<answer>6.67</answer>", "worker", "cached no", "20/3"):
        assert text in r.stdout, (text, r.stdout)

    dropped = _history(server, "--run", run_id, "--step-max", "0")[0]
    r = _ctl("show", str(dropped["score_id"]), "--server", server.address)
    assert r.returncode == 0 and "dropped by the retention policy" in r.stdout
    r = _ctl("show", "999999", "--server", server.address)
    assert r.returncode != 0 and "NOT_FOUND" in r.stderr


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROBE = ("<script>window.addEventListener('load', () => { for (const i of document.images) "
         "i.setAttribute('data-natural-width', i.naturalWidth); document.body.setAttribute('data-probed', 'yes'); "
         "});</script>")


def test_report_html_has_plots_and_flags(server, seeded, tmp_path):
    run_id, _ = seeded
    out = tmp_path / "report.html"
    r = _ctl("report", run_id, "-o", str(out), "--server", server.address)
    assert r.returncode == 0, r.stderr
    assert "FLAG Reward up while completion length collapses" in r.stdout
    page = out.read_text()
    images = re.findall(r'<img id="plot-([a-z_]+)" alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert {k for k, _ in images} >= {"reward", "components", "status", "length", "zero_spread", "trainer"}
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for _, b in images)
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page   # self-contained
    assert 'class="finding raised" data-check="reward_vs_length"' in page
    assert "Reward up while completion length collapses" in page
    assert "completion texts (characters)" in page                       # no length metric was logged
    assert "8 of 40 samples had their texts dropped by the retention policy" in page
    assert "audit-seed" in page and run_id in page

    chromium = _chromium()
    if chromium is None:
        print("SKIPPED the browser check: chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    try:
        dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome'}",
                              "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"SKIPPED the browser check: chromium could not run: {e}")
        pytest.skip(f"chromium could not run: {e}")
    if 'data-probed="yes"' not in dom.stdout:
        print(f"SKIPPED the browser check: chromium rendered nothing: {dom.stderr[-500:]}")
        pytest.skip("chromium rendered nothing")
    widths = [int(w) for w in re.findall(r'<img id="plot-[a-z_]+"[^>]*data-natural-width="(\d+)"', dom.stdout)]
    assert len(widths) == len(images) and all(w > 100 for w in widths), widths   # every PNG decoded
    assert "Reward up while completion length collapses" in dom.stdout
    assert 'data-check="reward_vs_length"' in dom.stdout


def test_replay_with_the_new_version_counts_flips_and_links_a_new_run(server, stub, seeded, tmp_path):
    run_id, _ = seeded
    original = _history(server, "--run", run_id)
    r = _ctl("replay", run_id, "--verifier", "math@2.0.0", "--format", "json", "--server", server.address)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["samples"], out["replayed"]) == (N_SAMPLES, N_SAMPLES - N_DROPPED)
    assert out["not_replayable"] == {"texts dropped by retention": N_DROPPED}
    assert out["flipped"] == N_FLIPS and out["changes"]["to_fail"] == N_FLIPS and out["changes"]["to_pass"] == 0
    # "I do not know": ABSTAIN under 1.0.0, a wrong answer (OK 0) under 2.0.0: no flip
    assert out["changes"]["status"] == 1
    assert out["changes"]["same"] == N_SAMPLES - N_DROPPED - N_FLIPS - 1
    assert out["compared_to"] == {"component": N_SAMPLES - N_DROPPED}
    flips = [e for e in out["examples"] if e["kind"] == "to_fail"]
    assert flips and all(e["old"] == "OK 1" and e["new"] == "OK 0" for e in flips)
    assert all(e["group_id"] == "a" and "6.67" in e["completion"] for e in flips)
    (status,) = [e for e in out["examples"] if e["kind"] == "status"]
    assert (status["old"], status["new"]) == ("ABSTAIN", "OK 0") and "I do not know" in status["completion"]

    # The original history is untouched; the replay is its own run, linked to the original.
    assert _history(server, "--run", run_id) == original
    replay = stub.GetRun(pb.GetRunRequest(run_id=out["replay_run_id"]))
    assert replay.replay_of == run_id and replay.state == "finished" and replay.score_count == 32
    assert replay.summary["flipped"] == N_FLIPS
    rows = _history(server, "--run", replay.run_id)
    assert len(rows) == 32 and {x["verifier"] for x in rows} == {"math"}
    assert {(x["step"], x["group_id"]) for x in rows} == {(s, g) for s in range(1, STEPS) for g in REFS}
    assert sum(x["reward"] == 0.0 for x in rows) == 32 - 7   # b's 7 right answers keep 1
    assert {(x["verifier"], x["verifier_version"]) for x in rows} == {("math", "2.0.0")}

    # The old version with a stricter parameter flips the same samples; the text summary says so.
    r = _ctl("replay", run_id, "--verifier", "math@1.0.0", "--params", '{"decimal_rounding": false}',
             "--server", server.address)
    assert r.returncode == 0, r.stderr
    assert f"flipped: {N_FLIPS} (pass → fail: {N_FLIPS}, fail → pass: 0)" in r.stdout
    assert f"not replayable: {N_DROPPED} (texts dropped by retention: {N_DROPPED})" in r.stdout
    assert "replay_of=" + run_id in r.stdout

    # The replay run has a report of its own, which links back; the original's lists its replays.
    r = _ctl("report", replay.run_id, "-o", str(tmp_path / "replay.html"), "--server", server.address)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "replay.html").read_text()
    assert f"<td>replay of</td><td>{run_id}</td>" in page and 'id="plot-zero_spread"' in page
    r = _ctl("report", run_id, "-o", str(tmp_path / "orig.html"), "--server", server.address)
    assert replay.run_id in (tmp_path / "orig.html").read_text().split("replayed as")[1][:200]


def test_replay_refuses_bad_params_before_writing(server, stub, seeded):
    run_id, _ = seeded
    before = len(stub.ListRuns(pb.ListRunsRequest()).runs)
    r = _ctl("replay", run_id, "--verifier", "math", "--params", '{"rel_tol": "wide"}', "--server", server.address)
    assert r.returncode != 0 and "INVALID_ARGUMENT" in r.stderr and "rel_tol" in r.stderr
    r = _ctl("replay", run_id, "--verifier", "nope@9", "--server", server.address)
    assert r.returncode != 0 and "NOT_FOUND" in r.stderr
    r = _ctl("replay", run_id, "--verifier", "math", "--params", "[1]", "--server", server.address)
    assert r.returncode != 0 and "--params: must be a JSON object" in r.stderr
    # run ids are per team: "other" has no run of that id
    for cmd in (["replay", run_id, "--verifier", "math"], ["report", run_id, "-o", "/dev/null"]):
        r = _ctl(*cmd, "--team", "other", "--server", server.address)
        assert r.returncode == 3 and "NOT_FOUND" in r.stderr, r.stderr
    assert len(stub.ListRuns(pb.ListRunsRequest()).runs) == before


def test_replay_of_ungrouped_scores_compares_with_the_total(server, stub):
    """Scores sent with Score (no group) are replayed with Score; a sample whose reference
    the new verifier cannot take is skipped and counted, not sent (it would fail the batch)."""
    run = stub.StartRun(pb.StartRunRequest(name="format-only"))
    fmt = pb.RewardSpec(components=[pb.VerifierRef(name="format")])
    samples = [pb.Sample(completion="<think>a</think><answer>4</answer>", reference={"string_value": "4"}),
               pb.Sample(completion="<think>a</think><answer>5</answer>", reference={"string_value": "4"}),
               pb.Sample(completion="The answer is 4.", reference={"string_value": "4"}),
               pb.Sample(completion="<think>a</think><answer>4</answer>")]          # no reference
    stub.Score(pb.ScoreRequest(run_id=run.run_id, step=7, spec=fmt, samples=samples))
    r = _ctl("replay", run.run_id, "--verifier", "math", "--format", "json", "--server", server.address)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # Baseline = the original total (format only): 1, 1, 0. math: 1, 0, 1.
    # Sample 1 flips pass -> fail, sample 2 fail -> pass, sample 0 stays.
    assert out["compared_to"] == {"total": 3} and out["replayed"] == 3
    assert out["changes"] == {"to_pass": 1, "to_fail": 1, "status": 0, "reward": 0, "same": 1}
    assert list(out["not_replayable"]) == ["reference rejected by math: math needs a reference (the gold answer or "
                                           "tests)"]
    rows = _history(server, "--run", out["replay_run_id"])
    assert [(x["step"], x["group_id"], x["reward"]) for x in rows] == [(7, "", 1.0), (7, "", 0.0), (7, "", 1.0)]


def test_replay_with_every_text_dropped_writes_nothing(server, stub, seeded):
    run_id, _ = seeded
    server.store.drop_texts_before(datetime.now(timezone.utc))
    before = len(stub.ListRuns(pb.ListRunsRequest()).runs)
    r = _ctl("replay", run_id, "--verifier", "math", "--server", server.address)
    assert r.returncode == 1 and "nothing could be replayed" in r.stdout
    assert f"not replayable: {N_SAMPLES} (texts dropped by retention: {N_SAMPLES})" in r.stdout
    assert len(stub.ListRuns(pb.ListRunsRequest()).runs) == before
