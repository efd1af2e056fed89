"""`grpo-train demo` in miniature, as a user runs it: a real reward-server subprocess on a
free port, the tiny model built and reloaded, SFT, one GRPO step, one JSON line on stdout."""
from __future__ import annotations

import json
import subprocess
import sys

from reward_server.app import start_server
from reward_server.config import ServerConfig
from trainer_client.reward_client import RewardClient


def test_demo_prints_one_json_line_and_stores_scores(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "trainer_client", "demo", "--quiet", "--output-dir", str(out),
         "--sft-max-steps", "5", "--grpo-steps", "1", "--train-size", "40",
         "--heldout-size", "4", "--prompts-per-step", "2", "--group-size", "2",
         "--max-new-tokens", "8"],
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    summary = json.loads(lines[0])
    assert list(summary) == ["heldout_accuracy_before", "heldout_accuracy_after", "steps",
                             "seconds", "database"]
    assert summary["steps"] == 1
    assert 0.0 <= summary["heldout_accuracy_before"] <= 1.0
    assert (out / "grpo" / "final" / "config.json").exists()

    # what the demo's service stored, read back through the service on the same database
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, workers=1,
                                    database_url=summary["database"]))
    try:
        with RewardClient(srv.address) as client:
            runs = {r.name: r for r in client.list_runs()}
    finally:
        srv.stop()
    run = runs["demo-seed0"]
    assert run.state == "finished" and run.last_step == 1
    # 1 step x 2 prompts x 2 completions + 2 held-out evals x 4, math + format each
    assert run.score_count == 2 * (2 * 2 + 2 * 4)
