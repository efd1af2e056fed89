"""The variants wired into the real loop: a reward server on 127.0.0.1:0, 2 steps on a
tiny model with DAPO dynamic sampling + overlong filtering/punishment, GSPO's sequence
ratio, LoRA with an adapters-off reference refreshed every step, and checkpointing."""
from __future__ import annotations

import pytest

pytest.importorskip("peft")

from reward_server.app import start_server  # noqa: E402
from reward_server.config import ServerConfig  # noqa: E402
from trainer_client.config import ConfigError, load_config  # noqa: E402
from trainer_client.data import Problem  # noqa: E402
from trainer_client.tiny_model import TinyModelSpec, build_tiny_model  # noqa: E402
from trainer_client.trainer import train  # noqa: E402


def _problems(n: int) -> list[Problem]:
    return [Problem(f"Calculate {i % 10} + {(3 * i) % 10}.", str(i % 10 + (3 * i) % 10),
                    {"expression": f"{i % 10} + {(3 * i) % 10}"}) for i in range(n)]


def test_dapo_gspo_lora_steps(tmp_path):
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, workers=1, grace_s=5,
                                    database_url=f"sqlite:///{tmp_path}/r.db"))
    try:
        model_dir = build_tiny_model(tmp_path / "tiny", TinyModelSpec(
            hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
        logs: list[str] = []
        cfg = load_config(overrides=dict(
            model=str(model_dir), output_dir=str(tmp_path / "out"), steps=2, device="cpu",
            seed=1, sampling=dict(max_new_tokens=6),
            grpo=dict(prompts_per_step=2, group_size=4, beta=0.04, learning_rate=1e-3,
                      loss_type="grpo", importance_sampling_level="sequence",
                      clip_eps_low=3e-4, clip_eps_high=4e-4, dynamic_sampling=True,
                      max_extra_draws=1, mask_truncated_completions=True,
                      overlong_cache_len=3, lora_r=4, ref_refresh_every=1,
                      gradient_checkpointing=True, lora_save_merged=False),
            reward=dict(address=f"127.0.0.1:{srv.port}", run_name="variants", components=[
                dict(name="math", weight=1.0)]),
        ))
        result = train(cfg, problems=(_problems(12), []), progress=False, log=logs.append)
    finally:
        srv.stop()
    assert result.steps == 2
    for m in result.history:
        for key in ("groups_dropped", "extra_draws", "groups_kept", "kl", "clip_frac"):
            assert key in m, key
        assert m["extra_draws"] <= 1
    assert any(line.startswith("memory estimate") and "reference 0 B" in line for line in logs)
    assert (tmp_path / "out" / "final" / "adapter_config.json").exists()


def test_overlong_cache_longer_than_generation_is_rejected():
    with pytest.raises(ConfigError, match="overlong_cache_len"):
        load_config(overrides=dict(model="m", sampling=dict(max_new_tokens=4),
                                   grpo=dict(overlong_cache_len=5)))
