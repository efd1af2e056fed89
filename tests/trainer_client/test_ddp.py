"""Data-parallel GRPO: `torchrun --nproc_per_node 2` (gloo, CPU) for 2 steps against a real
server. The ranks' weights are identical after every step, rank 0 alone logs the run and
prints (banner, step lines), a step's non-OK count is the sum over ranks, and the store
holds both ranks' groups (group ids carry the rank)."""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from rewards.v1 import rewards_pb2 as pb  # noqa: E402
from trainer_client.reward_client import RewardClient  # noqa: E402
from trainer_client.tiny_model import build_tiny_model  # noqa: E402

from ._launch import launch  # noqa: E402
from .test_resume import TINY  # noqa: E402

WORKER = Path(__file__).with_name("_ddp_worker.py")


@pytest.fixture(scope="module")
def ddp_launch(tmp_path_factory):
    """One `torchrun` for both tests (a launch is ~6 s of process start and imports on 2
    cores): _ddp_worker.py's 2-step run, then in the same ranks _ddp_tasks_worker.py's step,
    against a real server. Yields (process, its folder, the server's address)."""
    from reward_server.app import start_server
    from reward_server.config import ServerConfig

    tmp = tmp_path_factory.mktemp("ddp")
    with start_server(ServerConfig(host="127.0.0.1", port=0, database_url=f"sqlite:///{tmp}/rewards.db",
                                   workers=2, grace_s=5)) as srv:
        model_dir = build_tiny_model(tmp / "tiny", TINY)
        addr = f"127.0.0.1:{srv.port}"
        yield launch("torchrun", WORKER, str(model_dir), addr, str(tmp), "--then-tasks"), tmp, addr


def _stderr(tmp_path: Path, prefix: str = "") -> dict[int, str]:
    return {r: (tmp_path / f"{prefix}stderr{r}.txt").read_text()
            if (tmp_path / f"{prefix}stderr{r}.txt").exists() else "" for r in (0, 1)}


def test_two_ranks_stay_identical_and_both_stream_their_groups(ddp_launch):
    proc, tmp_path, addr = ddp_launch
    err = _stderr(tmp_path)
    tasks_err = _stderr(tmp_path, "tasks-")
    assert proc.returncode == 0, (proc.stderr[-3000:] + err[0][-2000:] + err[1][-2000:]
                                  + tasks_err[0][-2000:] + tasks_err[1][-2000:])

    sums = [(tmp_path / f"rank{r}.txt").read_text().split("\n")[:-1] for r in (0, 1)]
    assert len(sums[0]) == 2 and sums[0] == sums[1]          # identical after each step
    assert sums[0][0].split()[1] != sums[0][1].split()[1]    # and they did change
    run_ids = {json.loads((tmp_path / f"result{r}.json").read_text())["run_id"] for r in (0, 1)}
    assert len(run_ids) == 1                                 # broadcast from rank 0
    run_id = run_ids.pop()
    with RewardClient(addr) as c:
        run = {r.run_id: r for r in c.list_runs()}[run_id]
        assert run.state == "finished" and run.last_step == 2
        records = c.query_scores(run_id)
    groups = {(r.step, r.group_id) for r in records if r.group_id.startswith("r")}
    # 4 prompts per step, 2 per rank, G = 3 each
    assert groups == {(s, f"r{k}-s{s}-g{j}") for s in (1, 2) for k in (0, 1) for j in (0, 1)}
    train_samples = {(r.group_id, r.sample_index) for r in records if r.group_id.startswith("r")}
    assert len(train_samples) == 2 * 4 * 3
    assert (tmp_path / "run" / "final" / "config.json").exists()

    # Rank 0 alone prints: the banner and one line per step; rank 1 prints none of it.
    out = {r: (tmp_path / f"stdout{r}.txt").read_text() + err[r] for r in (0, 1)}
    assert f"run {run_id}: model" in out[0] and "memory estimate" in out[0]
    step_lines = [ln for ln in out[0].splitlines() if re.match(r"step \d+: \w+=", ln)]
    assert [ln.split(":")[0] for ln in step_lines] == ["step 1", "step 2"]
    assert "step 1:" not in out[1] and "run " not in out[1] and "memory estimate" not in out[1]
    assert "grpo" not in out[1]                                  # no progress bar either
    # Counts are summed over ranks: equal to the store's non-OK samples of both ranks'
    # groups, whole numbers; in some step the ranks' parities differ (a mean would be x.5).
    status = {(r.step, r.group_id, r.sample_index): r.total_status for r in records
              if r.group_id.startswith("r")}
    non_ok = Counter((s, g.split("-")[0]) for (s, g, _), st in status.items() if st != pb.STATUS_OK)
    history = json.loads((tmp_path / "result0.json").read_text())["history"]
    assert history == json.loads((tmp_path / "result1.json").read_text())["history"]
    for h, line in zip(history, step_lines):
        total = non_ok[(h["step"], "r0")] + non_ok[(h["step"], "r1")]
        assert h["non_ok_samples"] == total and float(h["non_ok_samples"]).is_integer()
        assert f"non_ok_samples={total} " in line
    assert any((non_ok[(s, "r0")] - non_ok[(s, "r1")]) % 2 for s in (1, 2)), non_ok


def test_per_task_metrics_have_the_same_keys_on_every_rank(ddp_launch):
    """Each rank's batch holds other tasks; the metrics all-reduce needs the same keys on
    every rank, so the per-task keys come from the data's tasks, not from a rank's batch
    (NaN where this step drew none of that task)."""
    proc, tmp_path, _ = ddp_launch
    err = _stderr(tmp_path, "tasks-")
    assert proc.returncode == 0, proc.stderr[-3000:] + err[0][-2000:] + err[1][-2000:]
    hist = [json.loads((tmp_path / f"tasks{r}.json").read_text()) for r in (0, 1)]
    want = {f"reward/task/t{i}" for i in range(8)}
    keys = [{k for k in h[0] if k.startswith("reward/task/")} for h in hist]
    assert keys[0] == keys[1] == want
    drawn = [k for k in want if not math.isnan(hist[0][0][k])]
    assert len(drawn) == 2       # one prompt per rank in this step; the others NaN
    assert all(hist[0][0][k] == hist[1][0][k] or math.isnan(hist[0][0][k]) for k in want)
