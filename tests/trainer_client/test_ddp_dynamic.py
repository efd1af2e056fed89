"""DDP with DAPO dynamic sampling and the batch-std advantage scale: a real `torchrun
--nproc_per_node 2` on CPU (gloo) against a real server (_ddp_dynamic_worker.py).

Ranks keep different numbers of groups (in some step one rank keeps none), yet they draw the same prompt batches (the
decision to draw again is global), keep exactly the groups one process would keep (the
first 2 informative ones in global order), take the same number of optimizer steps with
identical weights after each, and do not deadlock. The helpers the trainer uses for this
are checked against single-process arithmetic: the pooled batch std, and a DDP gradient
over an uneven split (one rank with no rows, padding passes) equal to the full-batch one."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

from trainer_client.reward_client import RewardClient  # noqa: E402
from trainer_client.tiny_model import build_tiny_model  # noqa: E402

from ._launch import launch  # noqa: E402
from .test_resume import TINY  # noqa: E402

WORKER = Path(__file__).with_name("_ddp_dynamic_worker.py")
B, G, W = 2, 3, 2


def _kept_by_rank(samples: dict) -> tuple[dict, dict, dict]:
    """From the stored scores: per step, the draws each rank made and the groups kept
    (the first B informative groups in global order: draw by draw, item j*W + rank)."""
    draws, kept = defaultdict(lambda: defaultdict(set)), defaultdict(lambda: [0] * W)
    informative = defaultdict(int)
    by_group = defaultdict(dict)
    for (step, gid, k), total in samples.items():
        by_group[(step, gid)][k] = total
    order = []
    for (step, gid), rewards in by_group.items():
        rank, _, *rest = gid.split("-")          # r{R}-s{step}[-x{d}]-g{j}
        d = int(rest[0][1:]) if len(rest) == 2 else 0
        j = int(rest[-1][1:])
        r = int(rank[1:])
        draws[step][r].add(d)
        ok = [v for v in rewards.values() if v is not None]
        if len(rewards) == G and len(ok) >= 2 and max(ok) - min(ok) > 1e-9:
            order.append((step, d, j * W + r, r))
    for step, d, _, r in sorted(order):
        informative[step] += 1
        if sum(kept[step]) < B:
            kept[step][r] += 1
    return draws, kept, informative


def test_dynamic_sampling_under_ddp_keeps_ranks_in_lockstep(server, tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny", TINY)
    addr = f"127.0.0.1:{server.port}"
    proc = launch("torchrun", WORKER, str(model_dir), addr, str(tmp_path), nproc=W)
    assert proc.returncode == 0, proc.stderr[-4000:]

    sums = [(tmp_path / f"rank{r}.txt").read_text().split("\n")[:-1] for r in range(W)]
    assert len(sums[0]) == 3 and sums[0] == sums[1]          # same steps, identical weights
    assert len({line.split()[1] for line in sums[0]}) == 3   # that changed every step
    res = [json.loads((tmp_path / f"result{r}.json").read_text()) for r in range(W)]
    assert res[0]["history"] == res[1]["history"]            # metrics averaged over ranks
    with RewardClient(addr) as c:
        records = c.query_scores(res[0]["run_id"])
    samples = {(r.step, r.group_id, r.sample_index):
               (r.total_reward if r.HasField("total_reward") else None) for r in records}
    draws, kept, informative = _kept_by_rank(samples)

    for h in res[0]["history"]:
        step = h["step"]
        assert draws[step][0] == draws[step][1] == set(range(int(h["extra_draws"]) + 1))
        assert h["groups_kept"] == min(B, informative[step]) == sum(kept[step])
    # the case this is about: the ranks kept different numbers of groups in some step
    # the cases this is about: the ranks kept different numbers of groups, one rank none
    # at all (it ran padding passes only) while the other trained
    assert any(0 in kept[s] and sum(kept[s]) > 0 for s in kept), dict(kept)
    assert any(h["extra_draws"] > 0 for h in res[0]["history"])

    checks = [json.loads((tmp_path / f"checks{r}.json").read_text()) for r in range(W)]
    for ch in checks:
        assert ch["global_std"] == pytest.approx(ch["pooled_std"], abs=1e-12)
        # sample std of [0, 1, 0.5, 2]: mean 0.875, Σ(r−m)² = 2.1875, /3 -> 0.8539
        assert ch["pooled_std"] == pytest.approx((2.1875 / 3) ** 0.5)
        assert ch["micro_passes"] == 2 and ch["num_seqs"] == 3.0     # 6 rows / 2 ranks
        assert ch["grad_max_abs_diff"] < 1e-6 < ch["grad_norm"]
