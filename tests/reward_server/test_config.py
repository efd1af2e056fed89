from __future__ import annotations

import pytest

from reward_server.config import ConfigError, load_config


def test_toml_then_env_then_flags(tmp_path, monkeypatch):
    cfg = tmp_path / "server.toml"
    cfg.write_text('port = 6000\nworkers = 3\ndatabase_url = "sqlite:///x.db"\n')
    monkeypatch.setenv("REWARD_SERVER_WORKERS", "5")
    c = load_config(cfg, port=None)
    assert (c.port, c.workers, c.database_url) == (6000, 5, "sqlite:///x.db")
    assert load_config(cfg, port=7).port == 7


def test_defaults_are_the_embedded_single_user_setup(monkeypatch):
    for k in ("REWARD_SERVER_PORT", "REWARD_SERVER_DATABASE_URL", "REWARD_SERVER_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    c = load_config()
    assert c.port == 50051 and c.database_url == "sqlite:///rewards.db"


@pytest.mark.parametrize("text, field", [("prot = 1\n", "prot"), ("port = -4\n", "port"),
                                         ('database_url = "rewards.db"\n', "database_url")])
def test_bad_config_names_the_field(tmp_path, text, field):
    cfg = tmp_path / "server.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=field):
        load_config(cfg)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
