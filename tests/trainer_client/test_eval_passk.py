"""The unbiased pass@k estimator (Chen et al. 2021, eq. 1), against hand-computed values."""
from __future__ import annotations

import math

import pytest

from trainer_client.passk import PassAtKResult, mean_pass_at_k, pass_at_k


def test_hand_computed_values():
    # n=5, c=2, k=1: 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4 (= c/n)
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252 = 0.91666...
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)
    # n - c < k: every k-subset holds a correct sample
    assert pass_at_k(4, 2, 3) == 1.0
    assert pass_at_k(4, 0, 2) == 0.0
    assert pass_at_k(4, 4, 1) == 1.0


def test_stable_for_large_n():
    # C(1000, 500) overflows a float; the product form does not.
    # n=1000, c=1, k=500: 1 - C(999,500)/C(1000,500) = 1 - 500/1000 = 0.5
    assert pass_at_k(1000, 1, 500) == pytest.approx(0.5)
    assert 0.0 <= pass_at_k(2000, 7, 1000) <= 1.0
    assert pass_at_k(2000, 7, 1000) == pytest.approx(
        1 - math.comb(1993, 1000) / math.comb(2000, 1000))


def test_mean_and_metrics():
    counts = [(5, 2), (5, 0)]
    # (0.7 + 0) / 2
    assert mean_pass_at_k(counts, 2) == pytest.approx(0.35)
    r = PassAtKResult({1: 0.2, 2: 0.35}, 5, 2, 1, tuple(counts))
    assert r.metrics() == {"eval/pass@1": 0.2, "eval/pass@2": 0.35, "eval/non_ok": 1.0}
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_grpo_train_eval_cli_reports_pass_at_k_through_the_service(server, tmp_path, capsys):
    pytest.importorskip("transformers")
    pytest.importorskip("reasoning_gym")
    import json

    from trainer_client.cli import main
    from trainer_client.reward_client import RewardClient
    from trainer_client.tiny_model import TinyModelSpec, build_tiny_model

    model_dir = build_tiny_model(tmp_path / "tiny", TinyModelSpec(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    rc = main(["eval", "--model", str(model_dir), "--reward-address",
               f"127.0.0.1:{server.port}", "--device", "cpu", "--num-samples", "3", "--k", "1,3",
               "--train-size", "20", "--heldout-size", "4", "--max-new-tokens", "4",
               "--num-threads", "1"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["problems"] == 4 and out["num_samples"] == 3
    assert 0.0 <= out["eval/pass@1"] <= out["eval/pass@3"] <= 1.0
    with RewardClient(f"127.0.0.1:{server.port}") as c:
        run = {r.run_id: r for r in c.list_runs()}[out["run_id"]]
        assert run.state == "finished"
        assert len(c.query_scores(out["run_id"])) == 4 * 3     # one math row per sample
