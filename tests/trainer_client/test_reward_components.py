"""The trainer config's reward components pin a verifier version and gate inline, and the
server scores with exactly that (real server on loopback)."""
from __future__ import annotations

import pytest

from rewards_client import RewardClient, make_sample, make_spec
from trainer_client.config import ConfigError, load_config


def test_version_gate_and_gate_min_from_the_config_reach_the_server(tmp_path, server):
    path = tmp_path / "train.toml"
    path.write_text('model = "m"\n[reward]\n'
                    'components = [\n'
                    '  {name = "format", weight = 0.0, gate = true, gate_min = 1.0},\n'
                    '  {name = "math", version = "2.0.0"},\n'
                    ']\n')
    cfg = load_config(path)
    fmt, math = cfg.reward.components
    assert (fmt.gate, fmt.gate_min, math.version, math.gate, math.gate_min) == (True, 1.0, "2.0.0", False, None)
    spec = make_spec(cfg.reward.components, cfg.reward.routes)       # what train() sends
    with RewardClient(server.address) as client:
        ok, ungated = client.score([make_sample("0", "<think>2+2</think><answer>4</answer>", reference="4"),
                                    make_sample("1", "\\boxed{4}", reference="4")], spec)
    assert ok.reward == 1.0 and ok.component("math").version == "2.0.0"
    assert ungated.component("math").reward == 1.0 and ungated.reward == 0.0    # the format gate is shut


def test_gate_min_without_gate_is_a_config_error():
    with pytest.raises(ConfigError, match=r"reward.components.0.*gate_min is set but gate is false"):
        load_config(overrides={"model": "m", "reward": {"components": [{"name": "math", "gate_min": 0.5}]}})
