"""FSDP2 (`--dist-strategy fsdp`): a real `torchrun --nproc_per_node 2` on CPU with gloo
against a real server (_fsdp_worker.py). The ranks' full weights are identical after each
step; both ranks' groups reach the store; the checkpoints and the final model, gathered
on rank 0, hold exactly the weights the ranks had; a resumed FSDP run is bit-for-bit the
straight one; and FSDP computes the same update as DDP (same completions at step 1,
weights equal to float rounding after 2 steps)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)
pytest.importorskip("torch.distributed.fsdp", reason="FSDP2 (fully_shard) is not available")

from trainer_client.checkpoint import load_checkpoint  # noqa: E402
from trainer_client.distributed import load_optimizer_state, weights_checksum  # noqa: E402
from trainer_client.reward_client import RewardClient  # noqa: E402
from trainer_client.tiny_model import build_tiny_model  # noqa: E402

from ._launch import launch  # noqa: E402
from .test_resume import TINY, weights  # noqa: E402

WORKER = Path(__file__).with_name("_fsdp_worker.py")


def test_fsdp_two_ranks_shard_train_checkpoint_and_resume(server, tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny", TINY)
    addr = f"127.0.0.1:{server.port}"
    proc = launch("torchrun", WORKER, str(model_dir), addr, str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]

    lines = [(tmp_path / f"rank{r}.txt").read_text().split("\n")[:-1] for r in (0, 1)]
    assert lines[0] == lines[1]                      # full weights identical after each step
    sums = {(run, int(step)): digest for run, step, digest in (ln.split() for ln in lines[0])}
    assert set(sums) == {(r, s) for r in ("ddp", "fsdp", "fsdp_b") for s in (1, 2)}
    assert sums["fsdp", 1] != sums["fsdp", 2]        # and they did change
    assert sums["fsdp_b", 1] == sums["fsdp", 1]      # the same run, deterministic
    assert sums["fsdp_b", 2] == sums["fsdp", 2]      # resumed from checkpoint-1: bit for bit

    # rank 0 gathered and wrote exactly the weights the ranks held
    assert weights_checksum(weights(tmp_path / "fsdp" / "checkpoint-1")) == sums["fsdp", 1]
    assert weights_checksum(weights(tmp_path / "fsdp" / "final")) == sums["fsdp", 2]
    assert not list(tmp_path.glob("*/*.tmp"))
    st = torch.load(tmp_path / "fsdp" / "checkpoint-2" / "trainer_state.pt", weights_only=False)
    final = weights(tmp_path / "fsdp" / "final")
    assert st["optimizer_format"] == "name" and "model.embed_tokens.weight" in st["optimizer"]["state"]
    assert st["reference"].keys() == final.keys()    # refreshed after step 2: = the policy
    assert all(torch.equal(st["reference"][k], final[k]) for k in final)

    # FSDP's name-keyed optimizer state loads into an unsharded model (another strategy)
    from transformers import AutoModelForCausalLM
    plain = AutoModelForCausalLM.from_pretrained(model_dir)
    st1 = load_checkpoint(tmp_path / "fsdp" / "checkpoint-1", plain)
    opt = torch.optim.AdamW(plain.parameters())
    torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)     # as the trainer: initial_lr
    load_optimizer_state(plain, opt, st1.optimizer)
    saved = st1.optimizer["state"]["model.layers.0.mlp.up_proj.weight"]
    got = opt.state[plain.model.layers[0].mlp.up_proj.weight]
    assert torch.equal(got["exp_avg_sq"], saved["exp_avg_sq"]) and float(got["step"]) == 2.0
    assert weights_checksum(plain) == sums["fsdp", 1]

    # FSDP and DDP take the same step (reduce-scatter vs all-reduce: rounding only)
    w_ddp, w_fsdp = torch.load(tmp_path / "ddp_w2.pt"), torch.load(tmp_path / "fsdp_w2.pt")
    assert w_ddp.keys() == w_fsdp.keys()
    assert all(torch.allclose(w_ddp[k], w_fsdp[k], atol=1e-5, rtol=0) for k in w_ddp)
    assert sums["ddp", 2] != sums["ddp", 1]

    results = [json.loads((tmp_path / f"result{r}.json").read_text()) for r in (0, 1)]
    assert results[0] == results[1]                  # run ids broadcast from rank 0
    runs = results[0]
    assert {n: r["sharded"] for n, r in runs.items()} == {
        "ddp": False, "fsdp": True, "fsdp_b": True, "fsdp_b_resumed": True}
    assert runs["fsdp_b_resumed"]["run_id"] == runs["fsdp_b"]["run_id"]
    with RewardClient(addr) as c:
        listed = {r.run_id: r for r in c.list_runs()}
        assert listed[runs["fsdp"]["run_id"]].state == "finished"
        assert listed[runs["fsdp_b"]["run_id"]].last_step == 2
        recs = {name: c.query_scores(runs[name]["run_id"]) for name in ("ddp", "fsdp")}
    train_recs = {n: [r for r in rs if r.group_id.startswith("r")] for n, rs in recs.items()}
    groups = {(r.step, r.group_id) for r in train_recs["fsdp"]}
    # 4 prompts per step, 2 per rank, G = 3 each
    assert groups == {(s, f"r{k}-s{s}-g{j}") for s in (1, 2) for k in (0, 1) for j in (0, 1)}
    assert len({(r.group_id, r.sample_index) for r in train_recs["fsdp"]}) == 2 * 4 * 3
    # step 1 sampled the same completions under both strategies (one record per component)
    step1 = {n: sorted((r.group_id, r.sample_index, r.verifier, r.completion_sha256, r.reward)
                       for r in rs if r.step == 1) for n, rs in train_recs.items()}
    assert step1["ddp"] == step1["fsdp"] and len(step1["ddp"]) == 12 * 2
    # rank 1 joined rank 0's held-out generation (FSDP), rank 0 alone scored it
    assert {r.group_id for r in recs["fsdp"] if r.group_id.startswith("heldout")} == \
        {f"heldout-s{s}-{i}" for s in (0, 2) for i in (0, 1)}
