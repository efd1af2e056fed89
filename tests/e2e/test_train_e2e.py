"""End to end: a real reward server on 127.0.0.1:0 and the GRPO trainer for 2 steps on a
tiny local model built by the test. Checks what the service stored against what the
trainer received."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from reward_server.app import start_server  # noqa: E402
from reward_server.config import ServerConfig  # noqa: E402
from trainer_client.config import load_config  # noqa: E402
from trainer_client.data import Problem  # noqa: E402
from trainer_client.reward_client import RewardClient  # noqa: E402
from trainer_client.tiny_model import TinyModelSpec, build_tiny_model  # noqa: E402
from trainer_client.trainer import train  # noqa: E402


def _problems(n: int, offset: int) -> list[Problem]:
    out = []
    for i in range(n):
        a, b = (i + offset) % 10, (3 * i + offset) % 10
        out.append(Problem(f"Calculate {a} + {b}.", str(a + b), {"expression": f"{a} + {b}"}))
    return out


@pytest.fixture
def server(tmp_path):
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, workers=2, grace_s=5,
                                    database_url=f"sqlite:///{tmp_path}/r.db"))
    yield srv
    srv.stop()


def test_two_grpo_steps_are_logged_and_every_score_is_stored(server, tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny", TinyModelSpec(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    cfg = load_config(overrides=dict(
        model=str(model_dir), output_dir=str(tmp_path / "out"), steps=2, save_every=1,
        device="cpu", seed=1,
        sampling=dict(max_new_tokens=8, temperature=1.0),
        grpo=dict(prompts_per_step=2, group_size=4, generation_chunk_prompts=1, beta=0.04,
                  num_iterations=2, learning_rate=1e-3, micro_batch_size=3),
        reward=dict(address=f"127.0.0.1:{server.port}", run_name="e2e", components=[
            dict(name="math", weight=1.0),
            dict(name="format", weight=0.0, params={"kind": "r1", "strict": True})]),
    ))
    train_set, heldout = _problems(6, 0), _problems(3, 5)
    result = train(cfg, problems=(train_set, heldout), progress=False, log=lambda m: None)

    # the trainer: 2 steps, metrics for each, checkpoints and held-out evals at 0 and 2
    assert result.steps == 2 and len(result.history) == 2
    for m in result.history:
        for key in ("reward_mean", "reward_std", "reward/math", "reward/format", "kl",
                    "clip_frac", "entropy", "completion_len_mean", "step_time_s",
                    "non_ok_samples", "zero_spread_frac"):
            assert key in m, key
    assert sorted(result.evals) == [0, 2]
    assert (tmp_path / "out" / "checkpoint-1" / "config.json").exists()
    assert (tmp_path / "out" / "final" / "tokenizer.json").exists()

    # scores returned to the trainer: 2 steps x 2 prompts x 4 + 2 evals x 3 held-out
    assert result.scores_returned == 2 * 2 * 4 + 2 * 3
    assert result.components_returned == 2 * result.scores_returned   # math + format

    with RewardClient(f"127.0.0.1:{server.port}") as client:
        runs = {r.run_id: r for r in client.list_runs()}
        run = runs[result.run_id]
        assert run.name == "e2e" and run.state == "finished" and run.last_step == 2
        records = client.query_scores(result.run_id)
    # one stored row per component of every returned sample, and nothing more
    assert len(records) == result.components_returned == run.score_count
    assert len({(r.group_id, r.sample_index) for r in records}) == result.scores_returned
    assert {r.step for r in records} == {0, 1, 2}
    assert {r.verifier for r in records} == {"math", "format"}


def test_trainer_scores_with_a_stored_spec_by_name(server, tmp_path):
    """A team's trainer names the server's spec (math-r1) instead of repeating its parts."""
    import grpc

    from rewards.v1 import rewards_pb2 as pb
    from rewards.v1 import rewards_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stored = pb_grpc.RewardServiceStub(ch).PutSpec(pb.PutSpecRequest(name="math-r1", spec=pb.RewardSpec(
            components=[pb.VerifierRef(name="format", weight=0.1), pb.VerifierRef(name="math", weight=1.0)])))
    model_dir = build_tiny_model(tmp_path / "tiny", TinyModelSpec(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    cfg = load_config(overrides=dict(
        model=str(model_dir), output_dir=str(tmp_path / "out"), steps=1, device="cpu", seed=1,
        sampling=dict(max_new_tokens=8), grpo=dict(prompts_per_step=2, group_size=2, beta=0.0),
        reward=dict(address=f"127.0.0.1:{server.port}", run_name="by-name", spec="math-r1")))
    result = train(cfg, problems=(_problems(4, 0), _problems(2, 5)), progress=False, log=lambda m: None)
    assert {"reward/math", "reward/format"} <= set(result.history[0])
    with RewardClient(f"127.0.0.1:{server.port}") as client:
        records = client.query_scores(result.run_id)
    assert records and {r.verifier for r in records} == {"math", "format"}
    assert {(r.spec_name, r.spec_version) for r in records} == {("math-r1", stored.version)}
