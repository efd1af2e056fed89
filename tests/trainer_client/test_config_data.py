"""Config validation names the field; the data split is disjoint and deterministic."""
from __future__ import annotations

import json

import pytest

from trainer_client.cli import build_parser
from trainer_client.config import ConfigError, TrainConfig, load_config
from trainer_client.data import (Problem, chain_thought, sft_completion, train_heldout_split)


def test_defaults_validate():
    cfg = load_config(overrides={"model": "some/model"})
    assert isinstance(cfg, TrainConfig)
    assert cfg.grpo.group_size == 8 and cfg.reward.components[0].name == "math"


@pytest.mark.parametrize("overrides, field", [
    ({"grpo": {"group_size": 1}}, "grpo.group_size"),
    ({"grpo": {"loss_type": "ppo"}}, "grpo.loss_type"),
    ({"grpo": {"scale": "token"}}, "grpo.scale"),
    ({"sampling": {"top_p": 1.5}}, "sampling.top_p"),
    ({"sampling": {"temperature": 0}}, "sampling.temperature"),
    ({"reward": {"address": "nowhere"}}, "reward.address"),
    ({"device": "tpu"}, "device"),
    ({"grpo": {"learning_rat": 1e-5}}, "grpo.learning_rat"),
    ({"reward": {"accuracy_component": "code"}}, "reward.accuracy_component"),
])
def test_bad_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as e:
        load_config(overrides={"model": "m", **overrides})
    assert field in str(e.value)


def test_missing_model_is_named():
    with pytest.raises(ConfigError, match="model"):
        load_config(overrides={})


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": "m", "steps": 5, "grpo": {"beta": 0.1}}))
    cfg = load_config(path, {"grpo": {"group_size": 4}})
    assert (cfg.steps, cfg.grpo.beta, cfg.grpo.group_size) == (5, 0.1, 4)
    toml = tmp_path / "c.toml"
    toml.write_text('model = "m"\n[sampling]\ntop_k = 5\n')
    assert load_config(toml).sampling.top_k == 5


def test_cli_parses_train_flags():
    args = build_parser().parse_args(["train", "--model", "m", "--beta", "0.04", "--loss-type",
                                      "dr_grpo", "--num-iterations", "2", "--top-p", "0.9"])
    assert (args.model, args.beta, args.loss_type, args.num_iterations, args.top_p) == \
        ("m", 0.04, "dr_grpo", 2, 0.9)


def test_chain_thought_table():
    assert chain_thought("8 + 2 - 7") == "8+2=10,10-7=3"
    assert chain_thought("4 - 9") == "4-9=-5"
    assert chain_thought("( 3 + 4 ) * 2") is None
    p = Problem("Calculate 8 + 2 - 7.", "3", {"expression": "8 + 2 - 7"})
    assert sft_completion(p) == "<think>8+2=10,10-7=3</think><answer>3</answer>"


def test_split_is_disjoint_and_deterministic():
    kw = dict(min_terms=2, max_terms=3, min_digits=1, max_digits=1, operators=["+", "-"],
              allow_parentheses=False, allow_negation=False)
    train, held = train_heldout_split("basic_arithmetic", 300, 50, 0, **kw)
    assert len(train) == 300 and len(held) == 50
    assert not {p.question for p in train} & {p.question for p in held}
    again = train_heldout_split("basic_arithmetic", 300, 50, 0, **kw)
    assert [p.question for p in again[1]] == [p.question for p in held]
    # every gold answer agrees with the expression the SFT thought is built from
    for p in train[:50] + held:
        assert str(eval(p.metadata["expression"])) == p.answer
